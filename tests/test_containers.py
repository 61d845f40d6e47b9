"""Container files: lint the Dockerfile, validate compose files, one service per backend.

No Docker engine runs on the CI machines, so images are validated statically (hadolint and
the compose-spec JSON schema), the way environment.md recommends.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def tool(name):
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


def test_dockerfile_passes_hadolint():
    proc = subprocess.run(
        [tool("hadolint"), str(ROOT / "compose" / "Dockerfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_files_follow_the_compose_spec():
    files = [ROOT / "compose.yaml", *sorted((ROOT / "compose").glob("*.yaml"))]
    proc = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "backend",
    sorted(
        p.name for p in (ROOT / "backends").iterdir() if p.is_dir() and not p.name.startswith("_")
    ),
)
def test_every_backend_has_a_compose_service(backend):
    fragment = ROOT / "compose" / f"{backend}.yaml"
    assert fragment.exists(), f"add {fragment.relative_to(ROOT)} (copy compose/textcls.yaml)"
    assert f"compose/{backend}.yaml" in (ROOT / "compose.yaml").read_text()
    text = fragment.read_text()
    assert f"BACKEND: {backend}" in text and f"  {backend}:" in text
