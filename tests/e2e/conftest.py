"""End-to-end fixtures: a real, unmodified Label Studio and prelabel backends on 127.0.0.1.

One Label Studio serves the whole session. It is installed into ``.venv-ls`` by
``scripts/install-label-studio`` (nothing to do when present) and started on a free port with
a fresh copy of a pre-migrated data directory (``.cache/ls-template-<version>``, made by one
start on the first run: migrations take 20-60 s, a start from the copy a few seconds).
Backends are started on demand (``backends.get(name)``), each as ``prelabel serve`` with its
own model directory and log file. Every process runs in its own process group, stopped at
the end of the session (also after failures), at interpreter exit if the finalizers did not
run, and by the kernel (PR_SET_PDEATHSIG) if pytest itself is killed.

Tests assert what Label Studio stored (through its REST API); the backend's side is read only
through its own HTTP endpoints (``/jobs``, ``/metrics``, ``/projects/<key>/versions``) and log.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import http.cookiejar
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LS_VERSION = "1.23.2"
INSTALL_SCRIPT = ROOT / "scripts" / "install-label-studio"
TEMPLATE = ROOT / ".cache" / f"ls-template-{LS_VERSION}"

LS_USER = "e2e@prelabel.test"
LS_PASSWORD = "e2e-password-1"
#: The legacy token LS gives the user it creates at the first start (kept in the template).
LS_TOKEN = "e2e0prelabel0legacy0token000000000000000"

LS_START_TIMEOUT = 180.0  # the first start migrates a fresh database: 20-60 s on 2 cores
BACKEND_START_TIMEOUT = 90.0
JOB_TIMEOUT = 60.0

SENTIMENT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/>
  </Choices>
</View>"""

#: The same, with the task's ``text`` being the URL of a text file (an upload, a local file).
URL_SENTIMENT_CONFIG = SENTIMENT_CONFIG.replace(
    'value="$text"/>', 'value="$text" valueType="url"/>'
)

LABELS = ("Positive", "Negative")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIVE: list[Process] = []


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when pytest dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


@dataclass
class Process:
    """A child started in its own process group, with stdout and stderr in ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls, name: str, argv: Sequence[str], *, env: dict[str, str], log: Path, cwd: Path
    ) -> Process:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches every child
                preexec_fn=_die_with_parent,
            )
        proc = cls(name, popen, log)
        _LIVE.append(proc)
        return proc

    @property
    def pgid(self) -> int:
        return self.popen.pid  # a session leader's pgid is its pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def group_pids(self) -> list[int]:
        """Live processes of this process group (gunicorn workers, the training worker…)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp …; comm may contain spaces, so split after ')'.
            fields = stat.rpartition(")")[2].split()
            if int(fields[2]) == self.pgid and fields[0] != "Z":  # zombies are gone already
                pids.append(int(entry.name))
        return pids

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the whole group, SIGKILL what is left after ``timeout``."""
        if self in _LIVE:
            _LIVE.remove(self)
        for sig, wait in ((signal.SIGCONT, 0.0), (signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and (self.alive() or self.group_pids()):
                time.sleep(0.05)
            if not self.alive() and not self.group_pids():
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1)


@atexit.register
def _stop_everything() -> None:
    # Normally the session finalizers have stopped everything; this covers an aborted run.
    for proc in list(_LIVE):
        proc.stop(timeout=5)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without prelabel's, LS's or HOST settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PRELABEL_", "LABEL_STUDIO_", "ML_", "SSRF_"))
        and k not in {"HOST", "LOCAL_FILES_DOCUMENT_ROOT", "PROMETHEUS_MULTIPROC_DIR"}
    }
    # Everything is on 127.0.0.1: never through a proxy (LS's requests and httpx read these).
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    env.update(extra)
    return env


def wait_http(
    url: str, proc: Process, timeout: float, *, headers: dict[str, str] | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail with the process's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(
                f"{proc.name} exited with status {proc.popen.returncode} before answering {url}.\n"
                f"Last lines of {proc.log}:\n{proc.log_tail()}",
                pytrace=False,
            )
        try:
            response = httpx.get(url, headers=headers, timeout=2, trust_env=False)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    pytest.fail(
        f"{proc.name} did not answer {url} within {timeout:.0f} s ({last}).\n"
        f"Last lines of {proc.log}:\n{proc.log_tail()}",
        pytrace=False,
    )


# --------------------------------------------------------------------------- Label Studio


def _no_cookies() -> httpx.Cookies:
    # LS sets a session cookie on API answers; sent back, it would switch DRF to session
    # auth and its CSRF checks. Token auth only.
    policy = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    return httpx.Cookies(http.cookiejar.CookieJar(policy=policy))


def project_key(project: dict[str, Any]) -> str:
    """``"<id>.<created_at epoch>"``: how LS names the project to backends (protocol §4.1)."""
    created = datetime.fromisoformat(project["created_at"].replace("Z", "+00:00"))
    return f"{project['id']}.{int(created.timestamp())}"


def choice(
    label: str, *, from_name: str = "sentiment", to_name: str = "text"
) -> list[dict[str, Any]]:
    """An annotation result choosing ``label``."""
    return [
        {
            "from_name": from_name,
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def chosen(result: Sequence[dict[str, Any]]) -> str | None:
    """The single choice in a prediction's result, ``None`` when it has none."""
    labels = [
        c for item in result if item.get("type") == "choices" for c in item["value"]["choices"]
    ]
    return labels[0] if len(labels) == 1 else None


@dataclass
class Project:
    """A project in LS and the ML backend connected to it."""

    id: int
    key: str
    ml_id: int | None = None
    backend: Backend | None = None


class LabelStudioAPI:
    """A small client of LS's REST API (legacy token auth); every call checks its status."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Token {token}"},
            timeout=120,  # "Retrieve predictions" waits for the backend's /predict
            cookies=_no_cookies(),
            trust_env=False,  # no proxies: LS is on 127.0.0.1
        )

    def call(
        self, method: str, path: str, *, expect: Sequence[int] = (200, 201, 204), **kwargs: Any
    ) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise AssertionError(
                f"LS answered {method} {path} with HTTP {response.status_code} (expected "
                f"{'/'.join(map(str, expect))}): {response.text[:1000]}"
            )
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        return response.json() if response.content else None

    # projects and tasks

    def create_project(self, title: str, label_config: str = SENTIMENT_CONFIG) -> Project:
        body = self.json(
            "POST", "/api/projects", json={"title": title[:50], "label_config": label_config}
        )
        return Project(id=body["id"], key=project_key(body))

    def import_tasks(self, project: Project, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """Import task JSONs (``{"data": …}`` plus optional ``annotations``); their ids, in order."""
        body = self.json(
            "POST",
            f"/api/projects/{project.id}/import",
            params={"return_task_ids": "true"},
            json=list(tasks),
        )
        ids: list[int] = body["task_ids"]
        assert len(ids) == len(tasks), body
        return ids

    def import_texts(self, project: Project, texts: Sequence[str]) -> list[int]:
        return self.import_tasks(project, [{"data": {"text": t}} for t in texts])

    def upload_images(self, project: Project, files: dict[str, bytes]) -> dict[str, int]:
        """Upload PNG files, one task each (``data.image = "/data/upload/<project>/…-<name>"``);
        the new tasks' ids by file name."""
        self.call(
            "POST",
            f"/api/projects/{project.id}/import",
            files={f"file{i}": (n, d, "image/png") for i, (n, d) in enumerate(files.items())},
        )
        by_name = {}
        for task in self.tasks(project):
            url = task["data"]["image"]
            assert url.startswith(f"/data/upload/{project.id}/"), task["data"]
            by_name[next(n for n in files if url.endswith(f"-{n}"))] = task["id"]
        assert sorted(by_name) == sorted(files)
        return by_name

    def upload_text_files(self, project: Project, files: dict[str, str]) -> list[int]:
        """Upload text files as whole-file tasks (``data.text = "/data/upload/<project>/<file>"``).

        As LS's import dialog does for .txt with "treat as whole text file": upload without
        committing, then re-import the uploads with ``files_as_tasks_list=false``.
        """
        before = set(self.task_ids(project))
        uploads = {
            f"file{i}": (name, text.encode(), "text/plain")
            for i, (name, text) in enumerate(files.items())
        }
        body = self.json(
            "POST",
            f"/api/projects/{project.id}/import",
            params={"commit_to_project": "false"},
            files=uploads,
        )
        self.json(
            "POST",
            f"/api/projects/{project.id}/reimport",
            json={"file_upload_ids": body["file_upload_ids"], "files_as_tasks_list": False},
        )
        tasks = {t["id"]: t for t in self.tasks(project) if t["id"] not in before}
        assert len(tasks) == len(files), tasks
        by_name = {}
        for task_id, task in tasks.items():
            url = task["data"]["text"]
            assert url.startswith(f"/data/upload/{project.id}/"), task["data"]
            name = next(n for n in files if url.endswith(f"-{n}"))
            by_name[name] = task_id
        return [by_name[n] for n in files]

    def tasks(self, project: Project) -> list[dict[str, Any]]:
        body = self.json("GET", "/api/tasks", params={"project": project.id, "page_size": 1000})
        tasks: list[dict[str, Any]] = body["tasks"]
        return tasks

    def task_ids(self, project: Project) -> list[int]:
        return [t["id"] for t in self.tasks(project)]

    def annotate(self, task_id: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        """Submit an annotation as an annotator would (LS then posts ANNOTATION_CREATED)."""
        body: dict[str, Any] = self.json(
            "POST", f"/api/tasks/{task_id}/annotations", json={"result": result}
        )
        return body

    # ML backends and predictions

    def connect(self, project: Project, backend: Backend, **fields: Any) -> dict[str, Any]:
        """``POST /api/ml``: LS calls /health and /setup and creates the project's webhook."""
        body: dict[str, Any] = self.json(
            "POST",
            "/api/ml",
            json={"url": backend.url, "project": project.id, "title": backend.name, **fields},
        )
        project.ml_id, project.backend = body["id"], backend
        return body

    def refused_connection(self, project: Project, backend: Backend, **fields: Any) -> str:
        """``POST /api/ml`` that LS must refuse (400): the message it shows at Connect Model."""
        response = self.call(
            "POST",
            "/api/ml",
            json={"url": backend.url, "project": project.id, "title": backend.name, **fields},
            expect=(400,),
        )
        return response.text

    def ml(self, ml_id: int) -> dict[str, Any]:
        """``GET /api/ml/{id}``: LS refreshes the state with /health and /setup first."""
        body: dict[str, Any] = self.json("GET", f"/api/ml/{ml_id}")
        return body

    def retrieve_predictions(
        self, project: Project, task_ids: Sequence[int] | None = None
    ) -> dict[str, Any]:
        """The Data Manager action "Retrieve Predictions" on the given tasks (default: all)."""
        selected: dict[str, Any] = (
            {"all": True, "excluded": []}
            if task_ids is None
            else {"all": False, "included": list(task_ids)}
        )
        body: dict[str, Any] = self.json(
            "POST",
            "/api/dm/actions",
            params={"id": "retrieve_tasks_predictions", "project": project.id},
            json={"selectedItems": selected},
        )
        return body

    def predictions(self, task_id: int) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = self.json("GET", "/api/predictions", params={"task": task_id})
        return body

    def only_prediction(self, task_id: int) -> dict[str, Any]:
        found = self.predictions(task_id)
        assert len(found) == 1, f"task {task_id} has {len(found)} predictions: {found}"
        return found[0]

    def train(self, project: Project) -> None:
        """*Start Training*: LS posts START_TRAINING to the backend's /webhook."""
        self.call("POST", f"/api/ml/{project.ml_id}/train")

    def add_local_storage(self, project: Project, path: Path, regex: str = r".*\.txt") -> list[int]:
        """A "Local files" import storage on ``path`` (under LS's document root), synced: the
        new tasks' ids (``data.text = "/data/local-files/?d=<relative path>"``)."""
        before = set(self.task_ids(project))
        storage = self.json(
            "POST",
            "/api/storages/localfiles",
            json={
                "project": project.id,
                "path": str(path),
                "regex_filter": regex,
                "use_blob_urls": True,
                "title": "texts",
            },
        )
        synced = self.json("POST", f"/api/storages/localfiles/{storage['id']}/sync")
        assert synced["status"] == "completed", synced
        return sorted(set(self.task_ids(project)) - before)

    def webhooks(self, project: Project) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = self.json(
            "GET", "/api/webhooks", params={"project": project.id}
        )
        return body

    def create_pat(self) -> str:
        """A new personal access token (a JWT refresh token) for the session's user."""
        token: str = self.json("POST", "/api/token/")["token"]
        return token


@dataclass
class LabelStudio:
    url: str
    token: str
    proc: Process
    files_root: Path
    api: LabelStudioAPI


def _ls_env(data_dir: Path, files_root: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        **extra,
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USERNAME=LS_USER,
        LABEL_STUDIO_PASSWORD=LS_PASSWORD,
        LABEL_STUDIO_USER_TOKEN=LS_TOKEN,
        # Backends on 127.0.0.1: both are needed (protocol §2).
        ML_BLOCK_LOCAL_IP="false",
        SSRF_PROTECTION_ENABLED="false",
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(files_root),
        # Nothing leaves this machine: no version check on PyPI, no Sentry, no analytics.
        LATEST_VERSION_CHECK="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        PYTHONUNBUFFERED="1",
    )


def start_ls(
    exe: Path, data_dir: Path, files_root: Path, log: Path, **env: str
) -> tuple[Process, str]:
    """Start Label Studio on ``data_dir`` (a copy of the template), with ``env`` added."""
    port = free_port()
    argv = [
        str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1",
        "--port", str(port), "--enable-legacy-api-token",
    ]  # fmt: skip
    proc = Process.start(
        "Label Studio", argv, env=_ls_env(data_dir, files_root, **env), log=log, cwd=data_dir
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_ls(proc: Process, url: str) -> None:
    """Wait until Label Studio answers and accepts the e2e user's token."""
    wait_http(f"{url}/health", proc, LS_START_TIMEOUT)
    # The user (and its token) exists once the server runs; check that the token is accepted.
    wait_http(
        f"{url}/api/current-user/whoami", proc, 30, headers={"Authorization": f"Token {LS_TOKEN}"}
    )


@pytest.fixture(scope="session")
def ls_executable() -> Path:
    """``.venv-ls/bin/label-studio``, installed by the project's script when missing."""
    try:
        done = subprocess.run(
            [str(INSTALL_SCRIPT)],
            cwd=ROOT,
            env={**os.environ, "LS_VERSION": LS_VERSION},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{INSTALL_SCRIPT} did not finish within 15 minutes", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"Cannot install Label Studio {LS_VERSION} for the end-to-end tests: {INSTALL_SCRIPT} "
            f"exited with {done.returncode}.\n{done.stderr[-3000:]}\nRun it by hand to see why "
            "(it needs PyPI or a wheel mirror); the e2e tests are part of the suite and do not skip.",
            pytrace=False,
        )
    exe = ROOT / done.stdout.strip().splitlines()[-1]
    assert exe.exists(), done.stdout
    return exe


@pytest.fixture(scope="session")
def ls_template(ls_executable: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated LS data dir with the e2e user; made by one LS start when missing."""
    marker = f"label-studio {LS_VERSION} {LS_USER} {LS_TOKEN}\n"
    done = TEMPLATE / ".complete"
    if done.exists() and done.read_text() == marker:
        return TEMPLATE
    shutil.rmtree(TEMPLATE, ignore_errors=True)
    partial = TEMPLATE.with_name(f"{TEMPLATE.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    files = tmp_path_factory.mktemp("template-files")
    proc, url = start_ls(
        ls_executable, partial, files, tmp_path_factory.mktemp("logs") / "ls-template.log"
    )
    try:
        wait_ls(proc, url)
    except BaseException:
        proc.stop()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    proc.stop()
    (partial / done.name).write_text(marker)
    try:
        partial.rename(TEMPLATE)
    except OSError:  # another run made it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return TEMPLATE


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every process of the session writes its log."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def label_studio(
    ls_executable: Path,
    ls_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    logs_dir: Path,
    backends: BackendPool,
) -> Iterator[LabelStudio]:
    """Label Studio on a free port of 127.0.0.1, with a fresh copy of the template data dir."""
    data_dir = tmp_path_factory.mktemp("ls") / "data"
    shutil.copytree(ls_template, data_dir)
    files_root = tmp_path_factory.mktemp("ls-files")
    proc, url = start_ls(ls_executable, data_dir, files_root, logs_dir / "label-studio.log")
    try:
        backends.ls_url = url
        backends.spawn("main")  # starts while LS does (both take seconds on 2 cores)
        wait_ls(proc, url)
        api = LabelStudioAPI(url, LS_TOKEN)
        yield LabelStudio(url=url, token=LS_TOKEN, proc=proc, files_root=files_root, api=api)
        api.http.close()
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def ls(label_studio: LabelStudio) -> LabelStudioAPI:
    """The REST client of the session's Label Studio."""
    return label_studio.api


#: The flag under which LS 1.23.2 validates predictions (label_studio_sdk's LabelInterface)
#: before storing them; off by default.
PREDICTION_VALIDATION_FLAG = "fflag_feat_utc_210_prediction_validation_15082025"


@contextlib.contextmanager
def another_ls(
    name: str,
    ls_executable: Path,
    ls_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    logs_dir: Path,
    **env: str,
) -> Iterator[str]:
    """One more Label Studio on a copy of the template, with ``env`` added; its URL."""
    data_dir = tmp_path_factory.mktemp(f"ls-{name}") / "data"
    shutil.copytree(ls_template, data_dir)
    files_root = tmp_path_factory.mktemp(f"ls-{name}-files")
    proc, url = start_ls(
        ls_executable, data_dir, files_root, logs_dir / f"label-studio-{name}.log", **env
    )
    try:
        wait_ls(proc, url)
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def validating_ls(
    ls_executable: Path, ls_template: Path, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
) -> Iterator[LabelStudioAPI]:
    """A second Label Studio, with prediction validation on: it refuses invalid predictions."""
    with another_ls(
        "validating", ls_executable, ls_template, tmp_path_factory, logs_dir,
        **{PREDICTION_VALIDATION_FLAG: "true"},
    ) as url:  # fmt: skip
        api = LabelStudioAPI(url, LS_TOKEN)
        yield api
        api.http.close()


@pytest.fixture(scope="session")
def legacy_off_ls(
    ls_executable: Path, ls_template: Path, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
) -> Iterator[SimpleNamespace]:
    """A Label Studio whose organization refuses legacy tokens, as LS 1.23 sets up a new one.

    The template's organization was created with ``--enable-legacy-api-token``, which only
    counts at creation; so the e2e user makes a personal access token, then turns legacy
    tokens off as an admin would (People → API Token Settings). ``url``, ``pat``.
    """
    with another_ls("legacy-off", ls_executable, ls_template, tmp_path_factory, logs_dir) as url:
        api = LabelStudioAPI(url, LS_TOKEN)
        pat = api.create_pat()
        api.json("POST", "/api/jwt/settings", json={"legacy_api_tokens_enabled": False})
        api.http.close()
        yield SimpleNamespace(url=url, pat=pat)


# --------------------------------------------------------------------------- backends


@dataclass
class Backend:
    """One backend server (a process group) and its HTTP endpoints."""

    name: str
    url: str
    proc: Process
    model_dir: Path
    auth: tuple[str, str] | None = None
    credentials: tuple[str, str, str] | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30, auth=self.auth, trust_env=False)

    @property
    def log(self) -> Path:
        return self.proc.log

    def log_text(self) -> str:
        return self.proc.log_text()

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.http.get(path, **kwargs)
        assert response.status_code == 200, (
            f"{self.name} {path}: HTTP {response.status_code} {response.text[:500]}"
        )
        return response.json()

    def jobs(self, project: Project) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.get("/jobs", params={"project": project.key})["jobs"]
        return jobs

    def wait_jobs(self, project: Project, timeout: float = JOB_TIMEOUT) -> list[dict[str, Any]]:
        """Wait until no job of the project is queued or running; all its jobs, newest first."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs(project)
            if all(j["status"] not in ("queued", "running") for j in jobs):
                return jobs
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{self.name}: jobs still pending after {timeout:.0f} s: {jobs}\n{self.proc.log_tail()}"
                )
            time.sleep(0.1)

    def versions(self, project: Project) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = self.get(f"/projects/{project.key}/versions")["versions"]
        return versions

    def metric(self, name: str, **labels: str) -> float:
        """The value of one Prometheus sample of ``GET /metrics`` (0 when absent)."""
        response = self.http.get("/metrics")
        assert response.status_code == 200, response.text
        want = {k: str(v) for k, v in labels.items()}
        for line in response.text.splitlines():
            match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
            if match is None or match[1] != name:
                continue
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
            if all(found.get(k) == v for k, v in want.items()):
                return float(match[3])
        return 0.0

    def worker_pids(self) -> list[int]:
        """The training worker process(es) that ``prelabel serve`` started."""
        pids = []
        for pid in self.proc.group_pids():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"worker" in argv and b"prelabel" in argv:
                    pids.append(pid)
        return pids


@dataclass
class BackendSpec:
    env: dict[str, str] = field(default_factory=dict)
    #: Default: ``prelabel serve textcls``; ``{port}`` and ``{model_dir}`` are filled in.
    argv: list[str] | None = None
    auth: tuple[str, str] | None = None

    @classmethod
    def serve(cls, name: str, env: dict[str, str]) -> BackendSpec:
        """``prelabel serve NAME`` (gunicorn) on the pool's port, ``env`` over the pool's."""
        prelabel = str(Path(sys.executable).with_name("prelabel"))
        argv = [prelabel, "serve", name, "--host", "127.0.0.1", "--port", "{port}"]
        return cls(env=env, argv=argv)


class BackendPool:
    """Backends by name, started on first use and stopped at the end of the session.

    ``main``: textcls with LS's URL and the legacy token (training on annotation events).
    Others are registered by the fixtures that need them (``register`` then ``get``).
    """

    def __init__(self, root: Path, logs: Path) -> None:
        self.root = root
        self.logs = logs
        self.ls_url: str | None = None
        self.specs: dict[str, BackendSpec | Callable[[], BackendSpec]] = {}
        self.started: dict[str, Backend] = {}

    def register(self, name: str, spec: BackendSpec | Callable[[], BackendSpec]) -> None:
        self.specs.setdefault(name, spec)

    def spawn(self, name: str) -> Backend:
        """Start a backend without waiting for it (see :meth:`get`)."""
        if name in self.started:
            return self.started[name]
        spec = self.specs[name]
        spec = spec() if callable(spec) else spec
        assert self.ls_url, "Label Studio must be started first"
        port = free_port()
        model_dir = self.root / name / "model"
        model_dir.mkdir(parents=True)
        env = clean_env(
            PRELABEL_MODEL_DIR=str(model_dir),
            LABEL_STUDIO_URL=self.ls_url,
            LABEL_STUDIO_API_KEY=LS_TOKEN,
            PYTHONUNBUFFERED="1",
            # The scenarios train on every annotation and count predictions themselves;
            # tests/e2e/test_learning_loop.py runs the defaults (every N, re-predict).
            PRELABEL_TRAIN_EVERY="1",
            PRELABEL_TRAIN_MIN_ANNOTATIONS="1",
            PRELABEL_REPREDICT="false",
        )
        env.update(spec.env)
        argv = spec.argv or [
            sys.executable, "-m", "prelabel", "serve", "textcls",
            "--host", "127.0.0.1", "--port", str(port), "--threads", "4",
        ]  # fmt: skip
        argv = [a.replace("{port}", str(port)).replace("{model_dir}", str(model_dir)) for a in argv]
        proc = Process.start(
            f"backend {name}", argv, env=env, log=self.logs / f"backend-{name}.log", cwd=self.root
        )
        backend = Backend(name, f"http://127.0.0.1:{port}", proc, model_dir, auth=spec.auth)
        self.started[name] = backend
        return backend

    def get(self, name: str) -> Backend:
        """The running backend ``name``, started and waited for if needed."""
        backend = self.spawn(name)
        wait_http(f"{backend.url}/health", backend.proc, BACKEND_START_TIMEOUT)
        return backend

    def stop_all(self) -> None:
        for backend in self.started.values():
            backend.http.close()
            backend.proc.stop()


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory, logs_dir: Path) -> Iterator[BackendPool]:
    """Backend servers by name; ``main`` is registered (and started with Label Studio)."""
    pool = BackendPool(tmp_path_factory.mktemp("backends"), logs_dir)
    pool.register("main", BackendSpec())
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def backend(label_studio: LabelStudio, backends: BackendPool) -> Backend:
    """The session's textcls backend (legacy token, trains on annotation events)."""
    return backends.get("main")


@pytest.fixture(scope="session")
def pat(label_studio: LabelStudio) -> str:
    """A personal access token of the session's user (one per user, so one per session)."""
    return label_studio.api.create_pat()


@pytest.fixture(scope="session")
def trainer(backends: BackendPool, pat: str) -> Backend:
    """A textcls backend with a personal access token that trains only on *Start Training*."""
    backends.register(
        "trainer",
        BackendSpec(env={"LABEL_STUDIO_API_KEY": pat, "PRELABEL_TRAIN_TRIGGER": "start_training"}),
    )
    return backends.get("trainer")


@pytest.fixture(scope="session")
def bad_token_backend(backends: BackendPool) -> Backend:
    """A textcls backend whose LABEL_STUDIO_API_KEY LS rejects (a well-formed legacy token)."""
    backends.register("bad-token", BackendSpec(env={"LABEL_STUDIO_API_KEY": "0" * 40}))
    return backends.get("bad-token")


AUTH_USER, AUTH_PASS, AUTH_TOKEN = "labelstudio", "e2e-basic-pass", "e2e-webhook-token"


@pytest.fixture(scope="session")
def auth_backend(backends: BackendPool) -> Backend:
    """A textcls backend requiring basic auth (LS's ML form) or a bearer token (webhooks).

    ``backend.credentials`` = ``(user, password, bearer token)``; its own client sends basic auth.
    """
    env = {
        "PRELABEL_BASIC_AUTH_USER": AUTH_USER,
        "PRELABEL_BASIC_AUTH_PASS": AUTH_PASS,
        "PRELABEL_API_TOKEN": AUTH_TOKEN,
    }
    backends.register("auth", BackendSpec(env=env, auth=(AUTH_USER, AUTH_PASS)))
    backend = backends.get("auth")
    backend.credentials = (AUTH_USER, AUTH_PASS, AUTH_TOKEN)
    return backend


@pytest.fixture(scope="session")
def interactive_backend(backends: BackendPool) -> Backend:
    """``interactive_backend.py``: a tiny interactive backend on prelabel's app factory."""
    script = Path(__file__).with_name("interactive_backend.py")
    backends.register(
        "interactive", BackendSpec(argv=[sys.executable, str(script), "{port}", "{model_dir}"])
    )
    return backends.get("interactive")


@pytest.fixture
def new_project(ls: LabelStudioAPI, request: pytest.FixtureRequest) -> Callable[..., Project]:
    """``new_project(config=SENTIMENT_CONFIG, backend=None, **ml_fields)``: a project named
    after the test, connected to ``backend`` when given."""
    count = 0

    def make(
        label_config: str = SENTIMENT_CONFIG, backend: Backend | None = None, **ml_fields: Any
    ) -> Project:
        nonlocal count
        count += 1
        project = ls.create_project(f"{request.node.name} {count}", label_config)
        if backend is not None:
            ls.connect(project, backend, **ml_fields)
        return project

    return make


# --------------------------------------------------------------------------- data

POSITIVE_WORDS = ("love", "great", "wonderful")
NEGATIVE_WORDS = ("hate", "awful", "terrible")
FILLER_WORDS = (
    "the", "movie", "product", "was", "really", "today", "I", "it", "this", "delivery",
    "service", "phone", "book", "quite", "very", "and", "my", "our", "store", "again",
)  # fmt: skip


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def make_corpus(n: int, seed: int) -> list[Example]:
    """``n`` synthetic reviews, alternating Positive/Negative: two sentiment words, three fillers.

    Easy on purpose: with the default hold-out gate a few of 20+ annotations may be held out,
    and what is left must still learn every sentiment word.
    """
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        label = LABELS[i % 2]
        words = rnd.sample(POSITIVE_WORDS if label == "Positive" else NEGATIVE_WORDS, 2)
        words += rnd.sample(FILLER_WORDS, 3)
        rnd.shuffle(words)
        out.append(Example(" ".join(words), label))
    return out


def data_uri(text: str) -> str:
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="session")
def e2e() -> SimpleNamespace:
    """Constants and helpers for the test modules, which cannot import this conftest."""
    return SimpleNamespace(
        SENTIMENT_CONFIG=SENTIMENT_CONFIG,
        URL_SENTIMENT_CONFIG=URL_SENTIMENT_CONFIG,
        LABELS=LABELS,
        Example=Example,
        corpus=make_corpus,
        choice=choice,
        chosen=chosen,
        data_uri=data_uri,
        BackendSpec=BackendSpec,
        free_port=free_port,
        clean_env=clean_env,
        ROOT=ROOT,
    )


@pytest.fixture
def train_on(ls: LabelStudioAPI) -> Callable[..., list[int]]:
    """``train_on(project, examples, via="import")``: labelled tasks, a trained model, ids.

    ``via="import"`` imports the tasks with their annotations and presses *Start Training*
    (the backend pulls them from LS's export); ``via="api"`` imports bare tasks and
    annotates each through the API (LS posts ANNOTATION_CREATED per annotation).
    """

    def train(
        project: Project,
        examples: Sequence[Example],
        *,
        via: str = "import",
        start_training: bool = True,
    ) -> list[int]:
        assert project.backend is not None
        if via == "import":
            ids = ls.import_tasks(
                project,
                [
                    {"data": {"text": e.text}, "annotations": [{"result": choice(e.label)}]}
                    for e in examples
                ],
            )
        else:
            ids = ls.import_texts(project, [e.text for e in examples])
            for task_id, example in zip(ids, examples, strict=True):
                ls.annotate(task_id, choice(example.label))
        if start_training:
            ls.train(project)
        jobs = project.backend.wait_jobs(project)
        # A promotion queues a predict job (re-predicting unlabeled tasks): it must succeed too.
        latest = next((j for j in jobs if j["kind"] == "train"), None)
        assert latest and latest["status"] == "succeeded" and latest["result"].get("trained"), jobs
        assert all(j["status"] == "succeeded" for j in jobs if j["kind"] == "predict"), jobs
        return ids

    return train


def wait_sqlite_writable(db: Path, timeout: float = 5.0) -> None:
    """Wait until no process holds a write transaction on ``db``."""
    deadline = time.monotonic() + timeout
    while True:
        conn = sqlite3.connect(db, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
        finally:
            conn.close()
        time.sleep(0.02)


@pytest.fixture
def paused_worker(backend: Backend) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """``with paused_worker(): …`` stops the main backend's training worker (SIGSTOP), so
    nothing can train meanwhile; it resumes on exit, also when the test fails."""

    @contextlib.contextmanager
    def pause() -> Iterator[None]:
        pids = backend.worker_pids()
        assert pids, f"no training worker in {backend.name}'s process group"
        db = backend.model_dir / "prelabel.db"
        try:
            for _ in range(50):
                for pid in pids:
                    os.kill(pid, signal.SIGSTOP)
                try:
                    # Stopped inside a write transaction, it would block the server's writes.
                    wait_sqlite_writable(db, timeout=0.1)
                    break
                except sqlite3.OperationalError:
                    for pid in pids:
                        os.kill(pid, signal.SIGCONT)
                    time.sleep(0.05)
            else:
                pytest.fail(f"could not stop {backend.name}'s worker outside a write to {db}")
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    return pause


# --------------------------------------------------------------------------- reports


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failure, attach the tails of the session's process logs to the report."""
    report = yield
    if report.failed and item.get_closest_marker("e2e") is not None:
        for proc in _LIVE:
            report.sections.append((f"{proc.name} log (tail, {proc.log})", proc.log_tail(60)))
    return report
