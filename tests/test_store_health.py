"""A read-only or full disk is reported, refused loudly and healed (issue #13, item 9).

The disks are real: a child process gets its own mount namespace (``unshare``) with a small
tmpfs as the model directory, which it remounts read-only or fills up while the app serves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from prelabel.testing.reference import REFERENCE_CONFIG


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not _namespaces_work(),
    reason="needs unprivileged user and mount namespaces (unshare) for a real read-only disk",
)

PRELUDE = """
import gc, json, os, subprocess, sys
from prelabel._server import create_app
from prelabel.settings import CoreSettings
from prelabel.testing.reference import ReferenceBackend

MNT = sys.argv[1]
def mount(*options):
    if "ro" in options:
        # The kernel remounts a failing disk read-only under open files; `mount` refuses
        # while files are open for writing, so this process closes its SQLite files first.
        from prelabel.database import Database
        for obj in gc.get_objects():
            if isinstance(obj, Database):
                obj.close()
        gc.collect()
    subprocess.run(["mount", "-o", ",".join(("remount",) + options), MNT], check=True)

def event(i):
    return {"action": "ANNOTATION_CREATED",
            "project": {"id": 3, "created_at": "2026-11-27T19:23:47Z", "label_config": CONFIG},
            "task": {"id": i, "data": {"text": f"text {i}"}},
            "annotation": {"id": i, "task": i, "result": []}}

def summary(response):
    return [response.status_code, response.get_json()]
"""


def run_in_tmpfs(tmp_path: Path, script: str, size: str = "64m") -> Any:
    """Run ``script`` (after PRELUDE) with a fresh tmpfs of ``size`` at argv[1]; its JSON."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    code = f"CONFIG = {REFERENCE_CONFIG!r}\n" + textwrap.dedent(PRELUDE) + textwrap.dedent(script)
    (tmp_path / "script.py").write_text(code)
    shell = (
        f'mount -t tmpfs -o size={size} tmpfs "$1" && '
        f'exec "{sys.executable}" "{tmp_path / "script.py"}" "$1"'
    )
    out = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", shell, "sh", str(mnt)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_mounts
def test_a_read_only_disk_is_reported_and_refused_then_heals(tmp_path):
    result = run_in_tmpfs(
        tmp_path,
        """
        app = create_app(ReferenceBackend(), CoreSettings(model_dir=MNT + "/models",
                         label_studio_url=None, label_studio_api_key=None), start_jobs=False)
        client = app.test_client()
        out = {"before": summary(client.post("/webhook", json=event(1)))}
        mount("ro")
        out["webhook"] = summary(client.post("/webhook", json=event(2)))
        out["health"] = summary(client.get("/health"))
        mount("rw")
        out["after"] = summary(client.post("/webhook", json=event(3)))
        out["health_after"] = summary(client.get("/health"))
        print(json.dumps(out))
        """,
    )
    assert result["before"][0] == 200
    status, body = result["webhook"]
    assert status == 503 and body["error"] == "StoreUnavailable"
    assert "Nothing was stored" in body["message"] and "is not writable" in body["message"]
    status, health = result["health"]
    assert status == 503 and health["status"] == "DOWN"
    assert health["store"]["writable"] is False and "not writable" in health["store"]["problem"]
    assert result["after"][0] == 200
    assert result["health_after"][0] == 200 and result["health_after"][1]["store"] == {
        "writable": True
    }


@needs_mounts
def test_a_full_disk_is_reported(tmp_path):
    result = run_in_tmpfs(
        tmp_path,
        """
        app = create_app(ReferenceBackend(), CoreSettings(model_dir=MNT + "/models",
                         label_studio_url=None, label_studio_api_key=None), start_jobs=False)
        client = app.test_client()
        out = {"health": summary(client.get("/health"))}
        with open(MNT + "/ballast", "wb") as f:
            try:
                while True:
                    f.write(b"x" * 1024 * 1024)
            except OSError:
                pass
        out["full"] = summary(client.get("/health"))
        out["webhook"] = summary(client.post("/webhook", json=event(1)))
        os.remove(MNT + "/ballast")
        out["stored"] = summary(client.post("/webhook", json=event(2)))
        out["freed"] = summary(client.get("/health"))
        print(json.dumps(out))
        """,
    )
    assert result["health"][0] == 200
    status, health = result["full"]
    assert status == 503 and "is full" in health["store"]["problem"]
    assert result["webhook"][0] in (200, 503)  # SQLite may still fit one page; never a 500
    assert result["stored"][0] == 200
    assert result["freed"][0] == 200  # reported until a write succeeds again


@needs_mounts
def test_starting_on_a_read_only_model_dir_fails_with_a_clear_message(tmp_path):
    result = run_in_tmpfs(
        tmp_path,
        """
        from prelabel.errors import ConfigError
        os.makedirs(MNT + "/models")
        mount("ro")
        try:
            create_app(ReferenceBackend(), CoreSettings(model_dir=MNT + "/models"))
            print(json.dumps("started"))
        except ConfigError as exc:
            print(json.dumps(str(exc)))
        """,
    )
    assert "/models is not writable (Read-only file system)" in result
    assert "PRELABEL_MODEL_DIR" in result and "Mount it read-write" in result


@needs_mounts
@pytest.mark.parametrize("command", [["serve", "textcls", "--port", "9"], ["worker", "textcls"]])
def test_serve_and_worker_refuse_a_read_only_model_dir_before_starting(tmp_path, command):
    result = run_in_tmpfs(
        tmp_path,
        f"""
        os.makedirs(MNT + "/models")
        mount("ro")
        env = {{**os.environ, "PRELABEL_MODEL_DIR": MNT + "/models"}}
        env = {{k: v for k, v in env.items() if k != "PRELABEL_BACKEND"}}
        out = subprocess.run([sys.executable, "-m", "prelabel", *{command!r}], env=env,
                             capture_output=True, text=True, timeout=60)
        print(json.dumps([out.returncode, out.stderr[-2000:]]))
        """,
    )
    code, stderr = result
    assert code == 2, stderr
    assert "Error: PRELABEL_MODEL_DIR" in stderr and "is not writable (Read-only" in stderr


def test_start_training_heals_a_gap_from_label_studios_export(
    make_app, annotation_webhook, ls_request, loopback, wait_job
):
    """An annotation the backend never stored (its webhook came while the disk was full, and
    LS never resends) is in LS's export: Start Training pulls it in."""
    exported = [
        {
            "id": i,
            "data": {"text": f"text number {i}"},
            "annotations": [
                {"id": 100 + i, "result": annotation_webhook(
                    task_id=i, annotation_id=100 + i, text="", label=label
                )["annotation"]["result"]}
            ],
        }
        for i, label in ((1, "Positive"), (2, "Negative"))
    ]  # fmt: skip

    def ls(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(exported).encode()]

    app = make_app(start_jobs=True, label_studio_url=loopback(ls), label_studio_api_key="0" * 40)
    client = app.test_client()
    assert client.post("/setup", json=ls_request("setup")).status_code == 200
    # Only task 1 arrived by webhook; task 2's webhook was lost.
    first = annotation_webhook(task_id=1, annotation_id=101, text="text number 1", label="Positive")
    assert client.post("/webhook", json=first).status_code == 200
    start = ls_request("webhook_START_TRAINING")
    start["project"] = first["project"]
    job = client.post("/webhook", json=start).get_json()["job"]
    done = wait_job(client, job)
    assert done["status"] == "succeeded", done
    assert done["result"]["metrics"]["train_tasks"] == 2.0  # the lost annotation is back
