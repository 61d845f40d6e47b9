"""The distributions: built as scripts/build builds them, valid metadata, installable as documented.

Every wheel is built from its sdist (``python -m build``'s default), so a file missing from an
sdist fails here too. The fresh venv gets its dependencies from the package index, as a user's
``pip install`` does (pinned by constraints.txt); everything else stays on this machine.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.metadata import Metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
BACKENDS = sorted(
    p for p in (ROOT / "backends").iterdir() if (p / "pyproject.toml").exists() and p.name[0] != "_"
)
PROJECTS = [ROOT / "core", *BACKENDS]


def project(path: Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text())["project"]


def artifact(dist: Path, path: Path, suffix: str) -> Path:
    stem = f"{project(path)['name'].replace('-', '_')}-{project(path)['version']}"
    found = dist / f"{stem}{suffix}"
    assert found.exists(), (
        f"{found.name} not built; built: {sorted(p.name for p in dist.iterdir())}"
    )
    return found


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [ROOT / "scripts" / "build", out], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("path", PROJECTS, ids=lambda p: p.name)
def test_wheel_metadata_is_valid_and_matches_the_pyproject(dist: Path, path: Path) -> None:
    declared = project(path)
    with zipfile.ZipFile(artifact(dist, path, "-py3-none-any.whl")) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        raw = wheel.read(name).decode()
        entry_points = next(
            (wheel.read(n).decode() for n in wheel.namelist() if n.endswith("entry_points.txt")),
            "",
        )
    meta = Metadata.from_email(raw, validate=True)  # raises on any invalid field
    assert canonicalize_name(meta.name) == canonicalize_name(declared["name"])
    assert str(meta.version) == declared["version"]
    assert meta.requires_python is not None and meta.requires_python.contains("3.11")
    assert {canonicalize_name(r.name) for r in meta.requires_dist or []} >= {
        canonicalize_name(Requirement(d).name) for d in declared["dependencies"]
    }
    if "readme" in declared:
        assert meta.description_content_type == "text/markdown"
        assert (path / declared["readme"]).read_text().strip() in (meta.description or "")
    for group, items in declared.get("entry-points", {}).items():
        for key, target in items.items():
            assert f"[{group}]" in entry_points and f"{key} = {target}" in entry_points


@pytest.mark.parametrize("path", PROJECTS, ids=lambda p: p.name)
def test_sdist_holds_the_sources_and_the_pyproject(dist: Path, path: Path) -> None:
    with tarfile.open(artifact(dist, path, ".tar.gz")) as sdist:
        names = sdist.getnames()
        info = next(
            sdist.extractfile(n) for n in names if n.count("/") == 1 and n.endswith("/PKG-INFO")
        )
        assert info is not None
        pkg_info = Parser().parsestr(info.read().decode())
    assert pkg_info["Name"] == project(path)["name"]
    assert any(n.endswith("/pyproject.toml") for n in names)
    sources = {p.relative_to(path).as_posix() for p in (path / "src").rglob("*.py")}
    packed = {n.split("/", 1)[1] for n in names if "/" in n}
    assert sources <= packed, sorted(sources - packed)


def test_a_fresh_venv_installs_the_wheels_and_lists_every_backend(
    dist: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check"]
    # core and textcls with their dependencies, by the README's command; the other backends
    # without theirs (torch alone is GBs): `prelabel list` reads metadata only.
    for args in (
        ["-c", ROOT / "constraints.txt", "--find-links", dist, "prelabel", "prelabel-textcls"],
        ["--no-deps", *(artifact(dist, p, "-py3-none-any.whl") for p in BACKENDS)],
    ):
        proc = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    prelabel = venv / "bin" / "prelabel"
    listed = subprocess.run([prelabel, "list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    for path in BACKENDS:
        assert f"{path.name} " in listed.stdout and project(path)["name"] in listed.stdout
    # The kit from the wheel, its recorded requests (package data) included, serves textcls
    # through gunicorn's dependencies installed by default.
    checked = subprocess.run(
        [prelabel, "check", "textcls"], capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "textcls: all checks passed" in checked.stdout
    gunicorn = subprocess.run([venv / "bin" / "python", "-c", "import gunicorn"], timeout=60)
    assert gunicorn.returncode == 0
