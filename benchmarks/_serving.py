"""Start ``prelabel serve NAME`` (gunicorn) on a free loopback port for a benchmark."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"


def report(name: str, figures: object) -> None:
    """Print a benchmark's figures and write them to ``results/<name>.json``."""
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    print(f"written to {out}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(client: httpx.Client, process: subprocess.Popen[Any], name: str) -> None:
    """Poll ``/health`` until it answers 200, failing fast when ``process`` exits (60 s)."""
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not become healthy in 60 s")


@dataclass
class Server:
    client: httpx.Client
    pid: int


@contextmanager
def served(
    name: str, env: Mapping[str, str], *args: str, log: Path | None = None
) -> Iterator[Server]:
    """A running ``prelabel serve`` of backend ``name`` and its client, stopped on exit.

    Its output goes to ``log`` when given (set ``PRELABEL_LOG_LEVEL`` in ``env`` to see more
    than warnings), else nowhere.
    """
    port = free_port()
    out = log.open("ab") if log is not None else None
    server = subprocess.Popen(
        [sys.executable, "-m", "prelabel", "serve", name, "--host", "127.0.0.1",
         "--port", str(port), *args],
        env={**os.environ, "PRELABEL_LOG_LEVEL": "WARNING", **env},
        stdout=out or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
    try:
        wait_healthy(client, server, f"prelabel serve {name}")
        yield Server(client, server.pid)
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)
        if out is not None:
            out.close()
