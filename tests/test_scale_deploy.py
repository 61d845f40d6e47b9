"""Deployment files of the scale-out mode, checked offline: the Kubernetes manifests against
the Kubernetes schemas (kubernetes-validate's bundled copy), .env.example against every
variable prelabel and its compose files read, and the names those files set against the
settings that exist (a typo there would be silently ignored by Kubernetes or Compose)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prelabel.registry import discover, load_backend
from prelabel.settings import CoreSettings

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted(p for p in (ROOT / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
#: Variables read by libraries rather than by prelabel's settings.
LIBRARY_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
}


def core_setting_names() -> set[str]:
    names = set()
    for name, field in CoreSettings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.choices[0] if alias is not None else f"PRELABEL_{name.upper()}")  # type: ignore[attr-defined]
    return names


def setting_names() -> set[str]:
    names = core_setting_names()
    for backend in discover():
        cls = load_backend(backend)
        if cls.__module__.startswith("prelabel_"):  # installed plugins, not tests' throwaways
            names |= {f"{cls.env_prefix()}{field.upper()}" for field in cls.Settings.model_fields}
    return names


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, re.M))


def compose_variables() -> set[str]:
    found: set[str] = set()
    for path in [ROOT / "compose.yaml", *(ROOT / "compose").glob("*.yaml")]:
        text = path.read_text()
        found |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
        found |= set(re.findall(r"^\s+- ([A-Z][A-Z0-9_]+)\s*$", text, re.M))  # passed through
    return found


def manifests() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text())]


def test_manifests_follow_the_kubernetes_schemas():
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", *map(str, MANIFESTS)]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kustomization = yaml.safe_load((ROOT / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


def test_manifests_wire_replicas_workers_and_probes():
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in manifests()}
    replicas = by_kind[("Deployment", "prelabel-replica")]["spec"]
    workers = by_kind[("Deployment", "prelabel-worker")]["spec"]
    service = by_kind[("Service", "prelabel")]["spec"]
    assert service["selector"] == replicas["template"]["metadata"]["labels"]
    assert service["selector"] != workers["template"]["metadata"]["labels"]
    [server] = replicas["template"]["spec"]["containers"]
    [worker] = workers["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["args"][:2] == ["prelabel", "serve"] and worker["args"] == ["prelabel", "worker"]
    for spec in (replicas, workers):
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        sources = {
            next(iter(s.values()))["name"]
            for s in spec["template"]["spec"]["containers"][0]["envFrom"]
        }
        assert sources == {"prelabel"}


def test_the_manifests_and_compose_files_set_only_settings_that_exist():
    known = setting_names() | LIBRARY_VARIABLES
    config = {
        k
        for d in manifests()
        if d["kind"] in ("ConfigMap", "Secret")
        for k in d.get("data", d.get("stringData", {}))
    }
    scale = yaml.safe_load((ROOT / "compose" / "scale.yaml").read_text())
    compose = set(scale["x-scale-environment"])
    passed = {name for name in compose_variables() if name.startswith("PRELABEL_")}
    assert config - known == set() and compose - known == set()
    assert passed - known == set(), "compose passes through settings that no longer exist"
    assert {
        "PRELABEL_DATABASE_URL",
        "PRELABEL_REDIS_URL",
        "PRELABEL_ARTIFACTS_URL",
    } <= config & compose


def test_scale_replicas_and_workers_get_every_core_setting():
    scale = yaml.safe_load((ROOT / "compose" / "scale.yaml").read_text())
    # PRELABEL_MODEL_DIR is the image's (/data): each container's own cache.
    assert set(scale["x-scale-environment"]) == core_setting_names() - {"PRELABEL_MODEL_DIR"}
    for service in ("replica", "worker"):
        assert scale["services"][service]["environment"] == scale["x-scale-environment"]


@pytest.mark.parametrize("source", ["settings", "compose"])
def test_env_example_lists_every_variable(source):
    wanted = setting_names() if source == "settings" else compose_variables()
    missing = sorted(wanted - documented())
    assert not missing, f"add to .env.example: {', '.join(missing)}"
