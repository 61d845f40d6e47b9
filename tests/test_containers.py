"""Container files, checked statically: Dockerfiles, compose files, one service per backend.

The images themselves are built and run by scripts/test-images (podman), a separate command:
see the README's Docker section for why it is not part of this suite.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices

from prelabel.registry import load_backend
from prelabel.settings import CoreSettings

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
BACKENDS = sorted(
    p.name for p in (ROOT / "backends").iterdir() if p.is_dir() and not p.name.startswith("_")
)
DOCKERFILES = [
    ROOT / "compose" / "Dockerfile",
    ROOT / "core" / "src" / "prelabel" / "compat" / "_template" / "Dockerfile",
]
#: Set by the image itself (compose/Dockerfile), not passed through.
IMAGE_SETTINGS = {"PRELABEL_BACKEND", "PRELABEL_MODEL_DIR"}


def tool(name):
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


def compose(name):
    return yaml.safe_load((ROOT / "compose" / f"{name}.yaml").read_text())


def env_names(service):
    return {entry.split("=")[0] for entry in service.get("environment", [])}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    proc = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_base_image_is_pinned_by_digest(dockerfile):
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base[1])
    assert "FROM ${BASE_IMAGE}" in dockerfile.read_text()


def test_image_runs_unprivileged_with_a_healthcheck_that_allows_for_start_up():
    text = (ROOT / "compose" / "Dockerfile").read_text()
    assert re.search(r"^USER (?!0\b|root\b)\S+", text, re.MULTILINE)
    healthcheck = re.search(r"^HEALTHCHECK (.*)$", text, re.MULTILINE)
    assert healthcheck and "--start-period=" in healthcheck[1]
    assert "EXPOSE 9090" in text and '"--port", "9090"' in text


def test_build_context_leaves_out_everything_the_images_do_not_copy():
    lines = (ROOT / ".dockerignore").read_text().split("\n")
    assert "**" in lines  # an allowlist: .venv and .cache (GBs) never reach the build
    copied = re.findall(r"^COPY (\S+)", (ROOT / "compose" / "Dockerfile").read_text(), re.M)
    for source in copied:
        top = source.split("/")[0]
        assert f"!{top}" in lines or f"!{top}/" in lines, f"{source} is ignored"


def test_compose_files_follow_the_compose_spec():
    files = [ROOT / "compose.yaml", *sorted((ROOT / "compose").glob("*.yaml"))]
    proc = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_has_a_compose_service(backend):
    fragment = ROOT / "compose" / f"{backend}.yaml"
    assert fragment.exists(), f"add {fragment.relative_to(ROOT)} (copy compose/textcls.yaml)"
    assert f"compose/{backend}.yaml" in (ROOT / "compose.yaml").read_text()
    service = compose(backend)["services"][backend]
    assert service["extends"] == {"file": "base.yaml", "service": "prelabel"}
    assert service["build"]["args"]["BACKEND"] == backend
    assert service["volumes"] == [f"{backend}-data:/data"]
    (port,) = service["ports"]
    assert re.fullmatch(rf"\$\{{{backend.upper()}_PORT:-\d+\}}:9090", port)


def test_every_core_setting_passes_through_compose():
    names = set()
    for name, field in CoreSettings.model_fields.items():
        alias = field.validation_alias
        names.add(
            alias.choices[0] if isinstance(alias, AliasChoices) else f"PRELABEL_{name.upper()}"
        )
    assert env_names(compose("base")["services"]["prelabel"]) == names - IMAGE_SETTINGS


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_setting_passes_through_compose(backend):
    cls = load_backend(backend)
    wanted = {cls.env_prefix() + field.upper() for field in cls.Settings.model_fields}
    passed = env_names(compose(backend)["services"][backend])
    assert wanted <= passed, sorted(wanted - passed)


def test_host_ports_differ_and_the_readme_names_them():
    readme = (ROOT / "README.md").read_text()
    ports = {}
    for backend in BACKENDS:
        (mapping,) = compose(backend)["services"][backend]["ports"]
        ports[backend] = re.search(r":-(\d+)\}", mapping)[1]
        assert f"`{backend}` on {ports[backend]}" in readme
    assert len(set(ports.values())) == len(ports), ports


def test_gpu_services_build_cuda_torch_and_reserve_a_gpu():
    gpu = {
        name: service
        for backend in BACKENDS
        for name, service in compose(backend)["services"].items()
        if name.endswith("-gpu")
    }
    assert gpu, "no GPU service"
    for name, service in gpu.items():
        assert service["build"]["args"]["TORCH_INDEX_URL"] == "", name
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name
        assert service["profiles"] == ["gpu"], name  # `docker compose up` alone starts CPU ones
