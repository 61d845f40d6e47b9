"""`prelabel serve` for real: gunicorn with two workers plus the training worker process.

A version promoted by the training process must be what every serving worker reports at once.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from prelabel._engine.liveness import pid_alive
from prelabel.threads import cpu_cores

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices></View>"""
PROJECT = "4.1795807427"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """Pids and command lines of ``pid``'s child processes (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found[int(entry.name)] = cmdline
    return found


def training_workers(pid):
    return [p for p, cmd in children(pid).items() if "prelabel worker" in cmd]


@pytest.fixture
def serve(tmp_path):
    """Start `prelabel serve NAME`; yields (client, process)."""
    started = []

    def start(name="textcls"):
        port = free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO_"))
        }
        env.update(PRELABEL_MODEL_DIR=str(tmp_path / name), PRELABEL_LOG_LEVEL="WARNING")
        log = (tmp_path / f"{name}.log").open("w")
        command = [sys.executable, "-m", "prelabel", "serve", name, "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", "2", "--threads", "2"]
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started.append((proc, log))
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            assert time.monotonic() < deadline, "server did not start in 60 s"
            time.sleep(0.2)
        return client, proc

    yield start
    for proc, log in started:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def server(serve):
    return serve()[0]


def annotated(i, text, label):
    result = [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]
    return {"id": i, "data": {"text": text}, "annotations": [{"id": i, "result": result}]}


def test_promoted_version_is_served_by_every_worker(server):
    setup = {
        "project": PROJECT,
        "schema": CONFIG,
        "hostname": "",
        "access_token": "",
        "extra_params": None,
    }
    assert server.post("/setup", json=setup).json()["model_version"] == "textcls-0.1.0"
    tasks = [annotated(i, f"love it great {i}", "Positive") for i in range(6)]
    tasks += [annotated(100 + i, f"hate it awful {i}", "Negative") for i in range(6)]
    job = server.post(
        "/train", json={"annotations": tasks, "project": PROJECT, "label_config": CONFIG}
    ).json()["job"]
    deadline = time.monotonic() + 60
    while (state := server.get(f"/jobs/{job}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["status"] == "succeeded", state
    assert state["result"]["promoted"] is True
    versions = {server.post("/setup", json=setup).json()["model_version"] for _ in range(30)}
    assert versions == {"textcls-1"}
    body = {
        "tasks": [{"id": 1, "data": {"text": "I love it, great"}}],
        "project": PROJECT,
        "label_config": CONFIG,
        "params": {"context": None},
    }
    (prediction,) = server.post("/predict", json=body).json()["results"]
    assert prediction["model_version"] == "textcls-1"
    assert prediction["result"][0]["value"]["choices"] == ["Positive"]
    # Metrics are aggregated over both workers (multiprocess mode), not one worker's share.
    metrics = server.get("/metrics").text
    setups = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("prelabel_requests_total{") and 'endpoint="/setup"' in line
    )
    assert setups >= 31


def test_serve_sets_the_thread_policy_of_every_process_it_starts(serve):
    client, proc = serve("textcls")
    # --workers 2: each serving worker gets half the cores (whichever answers).
    assert {client.get("/health").json()["threads"] for _ in range(6)} == {max(1, cpu_cores() // 2)}
    (worker,) = training_workers(proc.pid)
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    assert b"OMP_WAIT_POLICY=PASSIVE" in environ  # and the job processes it starts inherit it


def test_the_training_worker_is_supervised_and_reported_in_health(serve):
    client, proc = serve("textcls")
    (worker,) = training_workers(proc.pid)
    deadline = time.monotonic() + 30
    while client.get("/health").json()["training"]["workers"] != 1:
        assert time.monotonic() < deadline, client.get("/health").json()
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not [p for p in training_workers(proc.pid) if p != worker]:
        assert time.monotonic() < deadline, "the worker was not restarted"
        time.sleep(0.2)
    while (training := client.get("/health").json()["training"])["workers"] != 1:
        assert time.monotonic() < deadline, training  # the new worker reports itself
        time.sleep(0.2)
    assert "problem" not in training
    (gauge,) = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("prelabel_training_workers ")
    ]
    assert float(gauge.rsplit(" ", 1)[1]) == 1.0


def test_a_backend_that_does_not_train_gets_no_training_process(serve):
    client, proc = serve("llm")
    assert client.get("/health").json()["training"] == {"trains": False}
    assert training_workers(proc.pid) == []
    assert len(children(proc.pid)) == 2  # the two gunicorn workers, nothing else


def test_kill_9_of_the_server_takes_every_child_with_it(serve):
    _, proc = serve("textcls")
    deadline = time.monotonic() + 30
    while len(kids := children(proc.pid)) < 3:  # two gunicorn workers and the training worker
        assert time.monotonic() < deadline, kids
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up runs in the master
    proc.wait()
    deadline = time.monotonic() + 30
    while alive := [pid for pid in kids if pid_alive(pid)]:
        assert time.monotonic() < deadline, f"orphans outlived the server: {alive}"
        time.sleep(0.2)
