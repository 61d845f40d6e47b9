"""Model versions in shared storage: S3 (moto's server on loopback) or a shared directory.

Two stores on different model directories and one PostgreSQL database stand for two
machines: what one promotes, the other serves from its own copy, fetched on first use.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prelabel._engine.artifacts import ArtifactStore
from prelabel._engine.store import ProjectStore
from prelabel.errors import ServiceUnavailable
from prelabel.project import ProjectKey

KEY = ProjectKey("7", 1700000000)


@pytest.fixture(params=["s3", "directory"])
def storage(request, tmp_path) -> tuple[str, dict[str, str]]:
    """(PRELABEL_ARTIFACTS_URL, PRELABEL_ARTIFACTS_OPTIONS) of a fresh prefix."""
    if request.param == "directory":
        return str(tmp_path / "shared-volume"), {}
    server = request.getfixturevalue("s3_server")
    env = server.environ(prefix=tmp_path.name)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        request.getfixturevalue("monkeypatch").setenv(name, env[name])
    return env["PRELABEL_ARTIFACTS_URL"], {"endpoint_url": server.endpoint}


def machine(tmp_path: Path, name: str, pg_url: str, storage) -> ProjectStore:
    url, options = storage
    root = tmp_path / name
    return ProjectStore(root, database=pg_url, artifacts=ArtifactStore(url, options, root))


def promote(store: ProjectStore, content: str):
    with store.new_version_dir(KEY) as workdir:
        (workdir / "weights.txt").write_text(content)
        (workdir / "sub").mkdir()
        (workdir / "sub" / "vocab.json").write_text('{"a": 1}')
        return store.promote(KEY, workdir, name_prefix="m", metrics={"f1": 0.5})


def test_a_version_promoted_on_one_machine_is_served_by_another(tmp_path, pg_url, storage):
    trainer = machine(tmp_path, "trainer", pg_url, storage)
    replica = machine(tmp_path, "replica", pg_url, storage)
    v1 = promote(trainer, "one")
    assert trainer.local_path(v1).is_dir()  # the trainer keeps its files: nothing to fetch
    current = replica.current_version(KEY)
    assert current is not None and current.name == "m-1"
    assert not current.path.exists()  # not fetched until used
    local = replica.local_path(current)
    assert local.is_relative_to(replica.root)
    assert (local / "weights.txt").read_text() == "one"
    assert (local / "sub" / "vocab.json").read_text() == '{"a": 1}'
    promote(trainer, "two")  # the replica serves it from its next read, no restart
    newer = replica.current_version(KEY)
    assert newer is not None and (replica.local_path(newer) / "weights.txt").read_text() == "two"
    assert replica.rollback(KEY).name == "m-1"
    assert (trainer.local_path(trainer.current_version(KEY)) / "weights.txt").read_text() == "one"


def test_pruned_versions_leave_the_storage(tmp_path, pg_url, storage):
    trainer = machine(tmp_path, "trainer", pg_url, storage)
    versions = [promote(trainer, str(i)) for i in range(5)]
    trainer.prune(KEY, keep=2)
    artifacts = trainer.artifacts
    assert artifacts is not None
    remaining = {
        v.name
        for v in versions
        if artifacts.fs.exists(artifacts._remote(v.path.relative_to(trainer.root).as_posix()))
    }
    assert remaining == {"m-4", "m-5"}
    replica = machine(tmp_path, "replica", pg_url, storage)
    assert (replica.local_path(replica.current_version(KEY)) / "weights.txt").read_text() == "4"


def test_unreachable_storage_is_a_503_and_nothing_is_promoted(tmp_path, pg_url):
    root = tmp_path / "m"
    dead = ArtifactStore("s3://prelabel/x", {"endpoint_url": "http://127.0.0.1:9"}, root)
    store = ProjectStore(root, database=pg_url, artifacts=dead)
    with pytest.raises(ServiceUnavailable, match=r"model storage s3://prelabel/x"):
        promote(store, "lost")
    assert store.versions(KEY) == []
