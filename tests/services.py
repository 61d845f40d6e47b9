"""Real PostgreSQL, Redis and S3-compatible servers for the scale-out tests, on loopback.

(And the ``slowfit`` test plugin's project seed, shared by the worker tests.)

The binaries come from Debian's ``postgresql`` and ``redis-server`` packages
(``scripts/install-services``, run by ``scripts/setup``) and from ``moto[server]`` (PyPI).
Each server runs in a temporary directory on a free port of 127.0.0.1 and can be stopped and
started again on the same port and data (for the outage tests).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "PostgresServer",
    "Process",
    "RedisServer",
    "Replica",
    "S3Server",
    "free_port",
    "missing_services",
    "seed_slowfit_project",
    "stop_all",
    "wait_until",
]

SLOWFIT_CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="c" toName="text"><Choice value="A"/><Choice value="B"/></Choices></View>"""


def wait_until(what: Callable[[], object], timeout: float = 60.0) -> object:
    """Poll ``what`` every 0.1 s until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def seed_slowfit_project(store: Any, key: Any) -> None:
    """Give ``key`` a labeling config and six annotated tasks: a job of ``slowfit`` trains."""
    store.remember_setup(
        key, extra_params={}, hostname=None, access_token=None, label_config=SLOWFIT_CONFIG
    )
    tasks = [
        {"id": i, "data": {"text": f"{word} {i}"}, "annotations": [{"id": i, "result": [
            {"from_name": "c", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
        ]}]}
        for i, (word, label) in enumerate([("good", "A"), ("bad", "B")] * 3)
    ]  # fmt: skip
    store.replace_annotations(key, tasks)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    return found[-1] if found else shutil.which(name)


def _version_key(path: str) -> int:
    part = path.split("/")[4]
    return int(part) if part.isdigit() else 0


def missing_services() -> list[str]:
    """The server programs this machine lacks (``scripts/install-services`` installs them)."""
    missing = [] if _pg_bin("pg_ctl") and _pg_bin("initdb") else ["postgresql"]
    return missing + ([] if shutil.which("redis-server") else ["redis-server"])


class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth, no fsync) on a free loopback port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prelabel-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: its files and processes belong to `postgres`.
            shutil.chown(self.dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            _pg_bin("initdb"), "-D", self.data, "-U", "prelabel", "--auth=trust", "-E", "UTF8"
        )
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://prelabel@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            _pg_bin("pg_ctl"), "-D", self.data, "-o", options, "-l", self.dir / "log", "-w", "start"
        )
        _wait_port(self.port, None, "PostgreSQL", 30)

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"t{uuid.uuid4().hex[:12]}"
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, *argv: object) -> None:
        proc = subprocess.run(
            [*self._as, *map(str, argv)], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {proc.stdout}{proc.stderr}")


class RedisServer:
    """A redis-server with an append-only file (restarts keep the queue) on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prelabel-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
        ]
        argv += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self._proc, "redis-server", 20)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(20)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class S3Server:
    """moto's S3-compatible server (``moto_server``) with one bucket."""

    def __init__(self, bucket: str = "prelabel") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, self._proc, "moto_server", 30)
        httpx.put(f"{self.endpoint}/{bucket}").raise_for_status()

    #: What a replica needs in its environment to use this server.
    def environ(self, prefix: str = "artifacts") -> dict[str, str]:
        return {
            "PRELABEL_ARTIFACTS_URL": f"s3://{self.bucket}/{prefix}",
            "PRELABEL_ARTIFACTS_OPTIONS": f'{{"endpoint_url": "{self.endpoint}"}}',
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(20)


class Process:
    """A ``prelabel`` command running in its own process group, logging to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prelabel", *argv],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """SIGTERM to the group (gunicorn's workers, RQ's work-horses), SIGKILL after 30 s."""
        self.terminate()
        self.wait()

    def terminate(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)

    def wait(self) -> None:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Replica(Process):
    """``prelabel serve NAME`` on a free loopback port (:meth:`healthy` waits for it)."""

    def __init__(self, name: str, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = free_port()
        argv = ["serve", name, "--host", "127.0.0.1", "--port", str(self.port), *args]
        super().__init__(argv, env, log)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120)

    def healthy(self, timeout: float = 120) -> Replica:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client.get("/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prelabel serve did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def terminate(self) -> None:
        self.client.close()
        super().terminate()


def stop_all(processes: list[Process]) -> None:
    """Stop several processes at once."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()
