"""Shared fixtures: app factory, LS fixtures, job polling, loopback HTTP servers."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from prelabel._server import create_app
from prelabel.backend import Backend
from prelabel.settings import CoreSettings
from prelabel.testing import fixture
from prelabel.testing.reference import ReferenceBackend

AppFactory = Callable[..., Flask]


@pytest.fixture
def ls_request() -> Callable[[str], dict[str, Any]]:
    """A deep copy of a recorded LS 1.23.2 request body (``fixtures/ls-1.23.2/<name>.json``)."""

    def load(name: str) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(fixture(name)["json"])
        return body

    return load


@pytest.fixture
def make_app(tmp_path) -> Iterator[AppFactory]:
    """Build apps around a backend with settings under ``tmp_path``; job runners are stopped.

    ``make_app(backend=None, start_jobs=False, **core_settings)``. LABEL_STUDIO_URL and the API
    key are forced to ``None`` unless given, so the host environment cannot leak in.
    """
    apps: list[Flask] = []

    def build(
        backend: Backend | None = None, *, start_jobs: bool = False, **overrides: Any
    ) -> Flask:
        overrides.setdefault("label_studio_url", None)
        overrides.setdefault("label_studio_api_key", None)
        settings = CoreSettings(model_dir=tmp_path / f"m{len(apps)}", **overrides)
        app = create_app(backend or ReferenceBackend(), settings, start_jobs=start_jobs)
        apps.append(app)
        return app

    yield build
    for app in apps:
        runner = app.extensions["prelabel"].job_runner
        if runner is not None:
            runner.stop(timeout=10)


@pytest.fixture
def client(make_app) -> FlaskClient:
    """A test client of a ReferenceBackend app without a job runner."""
    return make_app().test_client()


@pytest.fixture
def wait_job() -> Callable[[FlaskClient, str], dict[str, Any]]:
    """Poll ``GET /jobs/<id>`` until the job finished (succeeded/failed/cancelled), 20 s max."""

    def wait(client: FlaskClient, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = client.get(f"/jobs/{job_id}")
            assert response.status_code == 200, response.get_data(as_text=True)
            job: dict[str, Any] = response.get_json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} still {job['status']} after {timeout} s: {job}")
            time.sleep(0.05)

    return wait


def _annotation_event(
    base: dict[str, Any],
    *,
    task_id: int,
    annotation_id: int,
    text: str,
    label: str,
    action: str = "ANNOTATION_CREATED",
) -> dict[str, Any]:
    """The recorded ANNOTATION_CREATED body with another task, annotation, text and choice."""
    body = copy.deepcopy(base)
    body["action"] = action
    body["task"].update(id=task_id, data={"text": text})
    body["annotation"].update(
        id=annotation_id,
        task=task_id,
        result=[
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [label]},
            }
        ],
    )
    return body


@pytest.fixture
def annotation_webhook(ls_request) -> Callable[..., dict[str, Any]]:
    """``annotation_webhook(task_id=, annotation_id=, text=, label=)``: an adapted E7 body."""
    base = ls_request("webhook_ANNOTATION_CREATED")

    def make(**kwargs: Any) -> dict[str, Any]:
        return _annotation_event(base, **kwargs)

    return make


@pytest.fixture
def text_predict(ls_request) -> Callable[..., dict[str, Any]]:
    """``text_predict([(task_id, text), ...])``: the recorded batch predict with other tasks."""
    base = ls_request("predict_batch_text")

    def make(tasks: list[tuple[int, str]], **params: Any) -> dict[str, Any]:
        body = copy.deepcopy(base)
        template = body["tasks"][0]
        body["tasks"] = [
            {**copy.deepcopy(template), "id": i, "data": {"text": t}} for i, t in tasks
        ]
        if params:
            body["params"] = {**body["params"], **params}
        return body

    return make


@pytest.fixture
def choice_of() -> Callable[[dict[str, Any]], list[str] | None]:
    """``choice_of(entry)``: the choices of a /predict entry's one sentiment region, or None."""

    def read(entry: dict[str, Any]) -> list[str] | None:
        if not entry["result"]:
            return None
        (region,) = entry["result"]
        assert (region["from_name"], region["to_name"], region["type"]) == (
            "sentiment",
            "text",
            "choices",
        )
        return list(region["value"]["choices"])

    return read


@pytest.fixture
def loopback() -> Iterator[Callable[[Any], str]]:
    """``loopback(wsgi_app)``: serve the app on 127.0.0.1 until the test ends; its base URL."""
    servers: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in reversed(servers):
        server.shutdown()
        thread.join(5)


@pytest.fixture
def closed_url() -> str:
    """A loopback URL on a port nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


PLUGIN = """
import json, os, time
from pathlib import Path
from prelabel.testing.reference import ReferenceBackend

class SlowBackend(ReferenceBackend):
    name = "slowfit"

    def fit(self, job):
        control = Path(os.environ["SLOWFIT_DIR"])
        seen = {"threads": self.threads, "nice": os.nice(0)}
        (control / f"seen-{os.getpid()}.json").write_text(json.dumps(seen))
        (control / f"pid-{os.getpid()}").touch()
        while (control / "hold").exists():
            time.sleep(0.05)
        return super().fit(job)
"""


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a process that sees the ``slowfit`` plugin and a fresh model dir.

    ``slowfit`` (a reference backend whose ``fit`` writes its pid, thread count and niceness to
    ``SLOWFIT_DIR`` and holds while ``SLOWFIT_DIR/hold`` exists) lets tests kill a job process
    or a worker mid-job.
    """
    site = tmp_path / "site"
    (site / "slowfit-0.1.dist-info").mkdir(parents=True)
    (site / "slowfit-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: slowfit\nVersion: 0.1\n"
    )
    (site / "slowfit-0.1.dist-info" / "entry_points.txt").write_text(
        "[prelabel.backends]\nslowfit = slowfit_plugin:SlowBackend\n"
    )
    (site / "slowfit_plugin.py").write_text(textwrap.dedent(PLUGIN))
    control = tmp_path / "control"
    control.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), env.get("PYTHONPATH", "")]),
        PRELABEL_MODEL_DIR=str(tmp_path / "models"),
        PRELABEL_LOG_LEVEL="INFO",
        SLOWFIT_DIR=str(control),
    )
    return env


@pytest.fixture
def start_worker(
    plugin_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start ``prelabel worker slowfit`` processes with ``plugin_env`` (as it is at the call);
    each logs to ``tmp_path/worker-<n>.log``. Stopped at the end, held jobs released first."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(started)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "prelabel", "worker", "slowfit"],
            env=plugin_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        return proc

    yield start
    (Path(plugin_env["SLOWFIT_DIR"]) / "hold").unlink(missing_ok=True)
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
    for proc in started:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- real servers for the scale-out tests (tests/services.py) ----------------------------------


def _service(factory: Callable[[], Any]) -> Iterator[Any]:
    from services import missing_services

    missing = missing_services()
    if missing:
        message = f"{', '.join(missing)} not installed: run scripts/install-services"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them (scripts/setup): never skip there
        pytest.skip(message)
    server = factory()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One PostgreSQL cluster for the session; tests take a fresh database each (``pg_url``)."""
    from services import PostgresServer

    yield from _service(PostgresServer)


@pytest.fixture
def pg_url(postgres_server) -> str:
    """The URL of a new, empty PostgreSQL database."""
    url: str = postgres_server.create_database()
    return url


@pytest.fixture
def redis_server() -> Iterator[Any]:
    """A redis-server of this test's own (tests stop and restart it)."""
    from services import RedisServer

    yield from _service(RedisServer)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's S3-compatible server with a ``prelabel`` bucket."""
    from services import S3Server

    server = S3Server()
    try:
        yield server
    finally:
        server.close()
