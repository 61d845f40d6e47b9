"""ProjectStore: setup data, versions (promotion, crash safety, rollback, prune), the cache.

Every test runs on both engines: the SQLite file and a real PostgreSQL server.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from prelabel._engine import versions as _versions
from prelabel._engine.store import ProjectState, ProjectStore
from prelabel.errors import BadRequest, NotFound
from prelabel.project import ProjectKey

KEY = ProjectKey("12", 1795807427)
OTHER = ProjectKey("12", 1800000000)  # same id after an LS database reset


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> ProjectStore:
    database = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return ProjectStore(tmp_path / "models", database=database)


def reopen(store: ProjectStore) -> ProjectStore:
    """Another process's view of the same store (same directory and database)."""
    return ProjectStore(store.root, database=_database(store))


def _database(store: ProjectStore) -> str | None:
    database = store.database
    return getattr(database, "url", None)


@pytest.fixture
def spawn(monkeypatch: pytest.MonkeyPatch) -> multiprocessing.context.SpawnContext:
    # Spawned children import this module by its pytest name (e.g. "tests.test_store").
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[__name__.count(".")]))
    return multiprocessing.get_context("spawn")


def promote(store: ProjectStore, key: ProjectKey = KEY, content: str = "w", prefix: str = "m"):
    with store.new_version_dir(key) as workdir:
        (workdir / "weights.txt").write_text(content)
        return store.promote(key, workdir, name_prefix=prefix, metrics={"f1": 0.5})


def served(store: ProjectStore, key: ProjectKey = KEY) -> str:
    current = store.current_version(key)
    assert current is not None
    return (current.path / "weights.txt").read_text()


def sql(store: ProjectStore, query: str) -> list[tuple]:
    return [tuple(row) for row in store.database.execute(query)]


# -- setup data ------------------------------------------------------------------------------


def test_unknown_project_has_defaults_and_creates_no_row(store):
    state = store.project(KEY)
    assert state == ProjectState(KEY)
    assert state.current is None and state.extra_params == {}
    assert sql(store, "SELECT COUNT(*) FROM projects") == [(0,)]


def test_remember_setup_round_trips_and_skips_unchanged_writes(store):
    args = {"extra_params": {"b": 1, "a": [1]}, "hostname": "http://ls:8080"}
    store.remember_setup(KEY, **args, access_token="tok", label_config="<View/>")
    state = store.project(KEY)
    assert (state.extra_params, state.hostname, state.access_token, state.label_config) == (
        {"a": [1], "b": 1},
        "http://ls:8080",
        "tok",
        "<View/>",
    )
    before = sql(store, "SELECT updated_at FROM projects")
    # Same values (keys in another order, config omitted): nothing is written.
    store.remember_setup(
        KEY,
        extra_params={"a": [1], "b": 1},
        hostname="http://ls:8080",
        access_token="tok",
        label_config=None,
    )
    assert sql(store, "SELECT updated_at FROM projects") == before
    store.remember_setup(KEY, extra_params={}, hostname=None, access_token=None, label_config=None)
    state = store.project(KEY)
    assert (state.extra_params, state.access_token, state.label_config) == ({}, None, "<View/>")
    assert store.project(OTHER) == ProjectState(OTHER)


def test_access_token_never_in_repr(store):
    store.remember_setup(
        KEY, extra_params={}, hostname="h", access_token="s3cr3t-token", label_config=None
    )
    assert "s3cr3t-token" not in repr(store.project(KEY))
    assert "s3cr3t-token" not in str(store.project(KEY))


def test_set_label_config(store):
    store.set_label_config(KEY, "<View>1</View>")
    store.set_label_config(KEY, "<View>2</View>")
    assert store.project(KEY).label_config == "<View>2</View>"


def test_counters(store):
    store.bump(KEY, "ANNOTATION_CREATED")
    store.bump(KEY, "ANNOTATION_CREATED", 2)
    store.bump(OTHER, "TASKS_DELETED")
    assert store.counters() == {
        str(KEY): {"ANNOTATION_CREATED": 3},
        str(OTHER): {"TASKS_DELETED": 1},
    }


def test_schema_version_recorded_and_reopen_is_idempotent(store):
    reopen(store)
    assert sql(store, "SELECT version FROM schema_versions WHERE component = 'store'") == [(1,)]
    if store.database.dialect == "sqlite":
        assert sql(store, "PRAGMA journal_mode") == [("wal",)]


# -- versions --------------------------------------------------------------------------------


def test_promote_renames_workdir_and_rotates_statuses(store):
    v1 = promote(store, content="one")
    assert (v1.name, v1.number, v1.status, v1.metrics) == ("m-1", 1, "current", {"f1": 0.5})
    assert v1.path == store.root / "projects" / KEY.slug / "versions" / "1"
    assert served(store) == "one"
    promote(store, content="two")
    promote(store, content="three")
    assert served(store) == "three"
    assert [(v.name, v.status) for v in store.versions(KEY)] == [
        ("m-3", "current"),
        ("m-2", "previous"),
        ("m-1", "retired"),
    ]
    assert store.project(KEY).current == store.current_version(KEY)
    assert store.current_version(OTHER) is None
    assert list((store.root / "tmp").iterdir()) == []


def test_a_promotion_is_served_by_every_worker_at_once(store):
    other_worker = reopen(store)
    assert other_worker.current_version(KEY) is None
    promote(store, content="one")
    assert served(other_worker) == "one"
    promote(other_worker, content="two")
    assert served(store) == "two"


def test_new_version_dir_is_empty_and_removed_unless_promoted(store):
    with pytest.raises(RuntimeError), store.new_version_dir(KEY) as workdir:
        assert workdir.parent == store.root / "tmp" and list(workdir.iterdir()) == []
        (workdir / "partial").write_text("x")
        raise RuntimeError("training crashed")
    assert not workdir.exists()
    assert store.current_version(KEY) is None


def test_promote_copies_a_workdir_from_another_file_system(store, tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "weights.txt").write_text("copied")
    monkeypatch.setattr(ProjectStore, "_same_fs", lambda self, path: False)
    store.promote(KEY, outside, name_prefix="m", metrics={})
    assert served(store) == "copied"
    assert (outside / "weights.txt").exists()
    assert list((store.root / "tmp").iterdir()) == []


def test_record_rejected_keeps_history_without_artifacts(store):
    promote(store)
    rejected = store.record_rejected(KEY, name_prefix="m", metrics={"f1": 0.1})
    assert (rejected.name, rejected.status, rejected.path.exists()) == ("m-2", "rejected", False)
    assert store.current_version(KEY).name == "m-1"
    assert promote(store).name == "m-3"
    assert [v.status for v in store.versions(KEY)] == ["current", "rejected", "previous"]
    assert store.all_version_names() == ["m-3", "m-1"]


def test_all_version_names_spans_projects_deduplicated(store):
    promote(store, KEY)
    promote(store, OTHER)
    promote(store, OTHER)
    assert sorted(store.all_version_names()) == ["m-1", "m-2"]


def test_rollback_steps_back_through_history(store):
    for content in ("one", "two", "three"):
        promote(store, content=content)
    assert store.rollback(KEY).name == "m-2"
    assert served(store) == "two"
    assert [v.status for v in store.versions(KEY)] == ["retired", "current", "previous"]
    assert store.rollback(KEY).name == "m-1"
    assert served(store) == "one"
    with pytest.raises(NotFound, match=r"12\.1795807427 has no previous version.*serves m-1"):
        store.rollback(KEY)
    assert store.current_version(KEY).name == "m-1"
    # A new promotion after rollbacks continues the numbering.
    assert promote(store).name == "m-4"


def test_rollback_to_a_named_version(store):
    for content in ("one", "two", "three", "four"):
        promote(store, content=content)
    assert store.rollback(KEY, to="m-1").name == "m-1"  # not m-3, the previous one
    assert served(store) == "one"
    # Nothing older is left to go back to; the versions it skipped stay retired.
    assert [v.status for v in store.versions(KEY)] == ["retired"] * 3 + ["current"]
    assert store.rollback(KEY, to="m-3").name == "m-3"  # forward again, by name
    assert served(store) == "three"
    assert store.rollback(KEY).name == "m-2"  # then back step by step
    assert store.rollback(KEY, to="m-2").name == "m-2"  # naming the current one: no change


def test_rollback_to_an_unservable_name_is_not_found_and_lists_the_servable(store):
    promote(store, content="one")
    store.record_rejected(KEY, name_prefix="m", metrics={})
    promote(store, content="three")
    for name in ("m-2", "m-9", "other"):
        with pytest.raises(NotFound, match=r"no version .* \(it serves m-3; .*: m-3, m-1\)"):
            store.rollback(KEY, to=name)
    assert served(store) == "three"


def test_work_dirs_of_killed_trainings_go_at_the_next_start(store, spawn):
    child = spawn.Process(target=_open_work_dir_and_die, args=(str(store.root),))
    child.start()
    child.join(30)
    assert child.exitcode == 4
    (orphan,) = (store.root / "tmp").iterdir()  # left by the killed process
    with store.new_version_dir(KEY) as mine:  # a training of a live process
        ProjectStore(store.root)  # a restart, or the next job process
        assert not orphan.exists()  # not after two days: its process is gone
        assert mine.is_dir()


def _open_work_dir_and_die(root: str) -> None:
    with ProjectStore(Path(root)).new_version_dir(KEY) as workdir:
        (workdir / "epoch-1.pt").write_text("half a model")
        os._exit(4)


def test_rollback_without_versions_is_not_found(store):
    with pytest.raises(NotFound, match="no trained version"):
        store.rollback(KEY)
    promote(store)
    with pytest.raises(NotFound, match="no previous version"):
        store.rollback(KEY)


def test_prune_keeps_newest_and_never_current_or_previous(store):
    versions = [promote(store, content=str(i)) for i in range(5)]
    store.prune(KEY, keep=3)
    assert [v.path.exists() for v in versions] == [False, False, True, True, True]
    store.prune(KEY, keep=0)
    assert [v.path.exists() for v in versions] == [False, False, False, True, True]
    assert served(store) == "4"
    # Pruned versions are not rollback targets: after one rollback nothing is left.
    store.rollback(KEY)
    with pytest.raises(NotFound):
        store.rollback(KEY)
    with pytest.raises(ValueError, match="keep"):
        store.prune(KEY, keep=-1)


def test_failure_after_rename_before_commit_keeps_served_version(store, monkeypatch):
    v1 = promote(store, content="served")
    real_insert = _versions.VersionStore._insert

    def failing_insert(self, conn, *args, **kwargs):
        real_insert(self, conn, *args, **kwargs)  # the row is written, then the commit never comes
        raise OSError("disk full")

    monkeypatch.setattr(_versions.VersionStore, "_insert", failing_insert)
    with store.new_version_dir(KEY) as workdir:
        (workdir / "weights.txt").write_text("challenger")
        with pytest.raises(OSError, match="disk full"):
            store.promote(KEY, workdir, name_prefix="m", metrics={})
        assert (workdir / "weights.txt").read_text() == "challenger"  # handed back
    monkeypatch.undo()
    assert store.current_version(KEY) == v1
    assert served(store) == "served"
    assert [v.name for v in store.versions(KEY)] == ["m-1"]
    assert not (v1.path.parent / "2").exists()
    assert list((store.root / "tmp").iterdir()) == []
    assert promote(store, content="next").name == "m-2"


def _promote_and_die(root: str, database: str | None) -> None:
    # Runs in a spawned child: the process dies right after the rename, before the commit.
    store = ProjectStore(Path(root), database=database)
    real_replace = os.replace

    def replace_then_die(src, dst):
        real_replace(src, dst)
        os._exit(3)

    _versions.os.replace = replace_then_die  # type: ignore[assignment]
    promote(store, content="half-promoted")


def test_process_crash_between_rename_and_commit(store, spawn):
    v1 = promote(store, content="served")
    child = spawn.Process(target=_promote_and_die, args=(str(store.root), _database(store)))
    child.start()
    child.join(30)
    assert child.exitcode == 3
    orphan = v1.path.parent / "2"
    assert (orphan / "weights.txt").read_text() == "half-promoted"  # renamed, never committed
    assert store.current_version(KEY) == v1 and served(store) == "served"
    # The next promotion of that number replaces the orphan ...
    assert promote(store, content="fresh").path == orphan
    assert served(store) == "fresh"
    # ... and a restart removes orphans nobody promotes over.
    (orphan.parent / "9").mkdir()
    reopen(store)
    assert sorted(p.name for p in orphan.parent.iterdir()) == ["1", "2"]


def _promote_many(root: str, database: str | None, worker: int, n: int) -> list[str]:
    # Its start-up cleanup races the others' promotions.
    store = ProjectStore(Path(root), database=database)
    return [promote(store, content=f"{worker}-{i}").name for i in range(n)]


def test_concurrent_promotions_across_processes(store, spawn):
    with spawn.Pool(4) as pool:
        args = [(str(store.root), _database(store), w, 5) for w in range(4)]
        results = pool.starmap(_promote_many, args)
    names = sorted(name for names in results for name in names)
    assert names == sorted(f"m-{i}" for i in range(1, 21))
    statuses = [v.status for v in store.versions(KEY)]
    assert statuses.count("current") == 1 and statuses.count("previous") == 1
    assert all(v.path.is_dir() for v in store.versions(KEY))
    assert served(store)  # the current version's files are all there


def test_threads_share_a_store(store):
    promote(store)

    def work() -> None:
        for _ in range(50):
            assert store.current_version(KEY).name == "m-1"
            store.bump(KEY, "hits")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.counters()[str(KEY)]["hits"] == 400


# -- training-data cache ---------------------------------------------------------------------


def task(task_id: int, text: str = "t") -> dict:
    return {"id": task_id, "data": {"text": text}, "project": 12}


def ann(ann_id: int, task_id: int, label: str = "pos", cancelled: bool = False) -> dict:
    return {"id": ann_id, "task": task_id, "result": [label], "was_cancelled": cancelled}


def cached(store: ProjectStore, key: ProjectKey = KEY) -> dict[int, list]:
    return {t["id"]: [a["result"] for a in t["annotations"]] for t in store.annotated_tasks(key)}


def test_upsert_update_and_cancel(store):
    store.upsert_annotation(KEY, task=task(2), annotation=ann(20, 2))
    store.upsert_annotation(KEY, task=task(1), annotation=ann(10, 1))
    store.upsert_annotation(KEY, task=task(1), annotation=ann(11, 1, "neg"))
    assert store.annotated_tasks(KEY) == [
        {"id": 1, "data": {"text": "t"}, "annotations": [ann(10, 1), ann(11, 1, "neg")]},
        {"id": 2, "data": {"text": "t"}, "annotations": [ann(20, 2)]},
    ]
    # An update replaces the annotation (and the task's data).
    store.upsert_annotation(KEY, task=task(1, "new"), annotation=ann(10, 1, "neg"))
    assert cached(store) == {1: [["neg"], ["neg"]], 2: [["pos"]]}
    assert store.annotated_tasks(KEY)[0]["data"] == {"text": "new"}
    # A cancelled (skipped) annotation counts as removed.
    store.upsert_annotation(KEY, task=task(2), annotation=ann(20, 2, cancelled=True))
    assert cached(store) == {1: [["neg"], ["neg"]]}
    assert store.annotation_count(KEY) == 2
    assert store.annotated_tasks(OTHER) == [] and store.annotation_count(OTHER) == 0


def test_task_without_data_keeps_stored_data(store):
    store.upsert_annotation(KEY, task=task(1), annotation=ann(10, 1))
    store.upsert_annotation(KEY, task={}, annotation=ann(11, 1))  # id from annotation["task"]
    assert cached(store) == {1: [["pos"], ["pos"]]}
    store.upsert_annotation(KEY, task={"id": 5}, annotation=ann(50, 5))  # data never seen
    assert list(cached(store)) == [1]


def test_malformed_events_are_bad_requests_and_store_nothing(store):
    with pytest.raises(BadRequest, match="annotation 'id'"):
        store.upsert_annotation(KEY, task=task(1), annotation={"result": []})
    with pytest.raises(BadRequest, match="task 'id'"):
        store.upsert_annotation(KEY, task={"data": {}}, annotation={"id": 1})
    with pytest.raises(BadRequest, match="'data' must be an object"):
        store.upsert_annotations(KEY, [(task(1), ann(1, 1)), ({"id": 2, "data": "x"}, ann(2, 2))])
    assert store.annotation_count(KEY) == 0


def test_delete_by_annotation_and_task_ids(store):
    store.upsert_annotations(
        KEY,
        [
            (task(1), ann(10, 1)),
            (task(1), ann(11, 1)),
            (task(2), ann(20, 2)),
            (task(3), ann(30, 3, cancelled=True)),
        ],
    )
    assert store.delete_annotations(KEY, [10, 999]) == 1
    assert store.delete_annotations(KEY, [30]) == 0  # only a tombstone went
    assert cached(store) == {1: [["pos"]], 2: [["pos"]]}
    assert store.delete_tasks(KEY, [1, 3]) == 1
    assert cached(store) == {2: [["pos"]]}
    assert store.delete_tasks(KEY, []) == 0
    # A re-created annotation on a deleted task needs its data again.
    store.upsert_annotation(KEY, task={"id": 1}, annotation=ann(12, 1))
    assert list(cached(store)) == [2]


def test_replace_from_export(store):
    store.upsert_annotation(KEY, task=task(1), annotation=ann(10, 1))
    store.upsert_annotation(OTHER, task=task(1), annotation=ann(10, 1))
    export = [
        {"id": 3, "data": {"text": "c"}, "annotations": [ann(31, 3), ann(30, 3, "neg")]},
        {"id": 2, "data": {"text": "b"}, "annotations": [ann(20, 2, cancelled=True)]},
        {"id": 4, "data": {"text": "d"}, "annotations": []},
    ]
    store.replace_annotations(KEY, export)
    assert cached(store) == {3: [["neg"], ["pos"]]}
    assert cached(store, OTHER) == {1: [["pos"]]}
    with pytest.raises(BadRequest):
        store.replace_annotations(KEY, [{"id": 1, "data": {}, "annotations": [{"x": 1}]}])
    assert cached(store) == {3: [["neg"], ["pos"]]}


def test_everything_survives_a_restart(store):
    store.remember_setup(
        KEY, extra_params={"lr": 0.1}, hostname="h", access_token="t", label_config="<View/>"
    )
    promote(store, content="one")
    promote(store, content="two")
    store.upsert_annotation(KEY, task=task(1), annotation=ann(10, 1))
    store.bump(KEY, "ANNOTATION_CREATED")
    reopened = reopen(store)
    assert reopened.project(KEY) == store.project(KEY)
    assert reopened.versions(KEY) == store.versions(KEY)
    assert served(reopened) == "two"
    assert reopened.annotated_tasks(KEY) == store.annotated_tasks(KEY)
    assert reopened.counters() == store.counters()
    assert reopened.rollback(KEY).name == "m-1"
