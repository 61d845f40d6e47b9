"""`prelabel create` (compat layout) and `prelabel start DIR`, as in Label Studio's tutorial."""

from __future__ import annotations

import base64
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from prelabel.cli import cli
from prelabel.testing import fixture

LAYOUT = {
    "model.py",
    "requirements.txt",
    "Dockerfile",
    "docker-compose.yml",
    "test_model.py",
    "README.md",
    ".dockerignore",
    "wheels",
}


def test_create_lays_out_a_compat_project_whose_own_test_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["create", "my_ml_backend"])
    assert result.exit_code == 0, result.output
    assert "prelabel start my_ml_backend -p 9090" in result.output
    project = tmp_path / "my_ml_backend"
    assert {p.name for p in project.iterdir()} == LAYOUT
    assert "from prelabel.compat import LabelStudioMLBase" in (project / "model.py").read_text()
    spec = importlib.util.spec_from_file_location("generated_test_model", project / "test_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_predict_answers_every_task(tmp_path / "state")
    again = CliRunner().invoke(cli, ["create", "my_ml_backend"])
    assert again.exit_code != 0 and "not empty" in str(again.exception)


def test_create_compat_refuses_directory_option(tmp_path):
    result = CliRunner().invoke(cli, ["create", "x", "--compat", "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "--directory is for --plugin" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def started(tmp_path):
    procs = []

    def start(directory: Path, *args: str) -> str:
        port = free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO_"))
        }
        env.pop("MODEL_DIR", None)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prelabel",
                "start",
                str(directory),
                "-p",
                str(port),
                "--host",
                "127.0.0.1",
                *args,
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/health", timeout=1)
                return url
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.2)
        pytest.fail("prelabel start did not answer /health in 30 s")

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_start_serves_model_py_with_basic_auth_and_keeps_state_in_the_project(tmp_path, started):
    project = tmp_path / "my_ml_backend"
    assert CliRunner().invoke(cli, ["create", str(project)]).exit_code == 0
    url = started(project, "--basic-auth-user", "u", "--basic-auth-pass", "p")
    setup = fixture("setup")["json"]
    assert httpx.post(f"{url}/setup", json=setup).status_code == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    answer = httpx.post(f"{url}/setup", json=setup, headers=auth)
    assert answer.status_code == 200 and answer.json() == {"model_version": "0.0.1"}
    body = fixture("predict_batch_text")["json"]
    results = httpx.post(f"{url}/predict", json=body, headers=auth).json()["results"]
    assert len(results) == len(body["tasks"])
    assert (project / "data" / "models" / "prelabel.db").is_file()
