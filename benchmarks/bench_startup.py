"""What `prelabel serve`'s checks before gunicorn cost, and how fast a mistake is reported.

Time from spawning the command to the first 200 from ``/health``, alternating round by round:

* ``prelabel serve NAME`` (settings, backend, port and ``load()`` in a child, then gunicorn);
* the same app under gunicorn without those checks (``run_gunicorn`` called directly).

And the time until each mistake's one line and exit status 2. Backends: textcls, and yolo
with a random-weight yolov8n built offline (``yolov8n.yaml``).

    .venv/bin/python benchmarks/bench_startup.py     # prints figures, writes results/startup.json
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _serving import free_port

HERE = Path(__file__).parent
ROUNDS = 3
#: Training in a thread for both: the training worker process `serve` starts by default would
#: compete for the CPU with the server's load and blur what the checks cost.
ENV = {
    "YOLO_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "PRELABEL_LOG_LEVEL": "WARNING",
    "PRELABEL_JOB_RUNNER": "thread",
}
BACKEND_ENV = {"textcls": {}, "yolo": {"PRELABEL_YOLO_DETECT_MODEL": "yolov8n.yaml"}}
BARE = (
    "import sys; from prelabel._server.gunicorn import run_gunicorn; "
    "run_gunicorn(bind=sys.argv[1], workers=1, threads=8, timeout=300)"
)


def environment(name: str, model_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELABEL_")}
    return {
        **env,
        **ENV,
        **BACKEND_ENV.get(name, {}),
        "PRELABEL_BACKEND": name,
        "PRELABEL_MODEL_DIR": str(model_dir),
        "YOLO_CONFIG_DIR": str(model_dir / "ultralytics"),
        **extra,
    }


def time_to_health(argv: list[str], env: dict[str, str], port: int) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while time.perf_counter() - started < 300:
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv} exited with {proc.returncode}")
                try:
                    if client.get("/health").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"{argv} not healthy in 300 s")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def time_to_error(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    return elapsed, proc.stderr.splitlines()[0]


def startup(name: str, root: Path) -> dict[str, float]:
    serve: list[float] = []
    bare: list[float] = []
    for i in range(ROUNDS):
        model_dir = root / f"{name}-{i}"
        env = environment(name, model_dir)
        port = free_port()
        bind = f"127.0.0.1:{port}"
        command = [sys.executable, "-m", "prelabel", "serve", name, "--host", "127.0.0.1"]
        # Alternate which goes first, so a warming disk cache favours neither.
        runs = [
            (serve, [*command, "--port", str(port)]),
            (bare, [sys.executable, "-c", BARE, bind]),
        ]
        for samples, argv in runs if i % 2 == 0 else runs[::-1]:
            samples.append(time_to_health(argv, env, port))
    return {
        "serve_s": statistics.median(serve),
        "bare_gunicorn_s": statistics.median(bare),
        "ratio": statistics.median(s / b for s, b in zip(serve, bare, strict=True)),
    }


def mistakes(root: Path) -> dict[str, dict[str, object]]:
    command = [sys.executable, "-m", "prelabel", "serve"]
    out: dict[str, dict[str, object]] = {}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        cases = {
            "unknown backend": (["textcl"], environment("textcl", root / "e1")),
            "misspelled variable": (
                ["textcls"],
                environment("textcls", root / "e2", PRELABEL_MODEL_DIRR="x"),
            ),
            "port in use": (
                ["textcls", "--host", "127.0.0.1", "--port", busy],
                environment("textcls", root / "e3"),
            ),
            "missing weights (yolo)": (
                ["yolo", "--port", "0"],
                environment("yolo", root / "e4", PRELABEL_YOLO_DETECT_MODEL="missing/best.pt"),
            ),
        }
        for case, (args, env) in cases.items():
            env.pop("PRELABEL_BACKEND")
            seconds, line = time_to_error([*command, *args], env)
            out[case] = {"seconds": seconds, "first_line": line}
    return out


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="prelabel-bench-startup-"))
    starts = {name: startup(name, root) for name in ("textcls", "yolo")}
    errors = mistakes(root)
    for name, row in starts.items():
        print(
            f"{name}: healthy after {row['serve_s']:.1f} s with the checks vs "
            f"{row['bare_gunicorn_s']:.1f} s without (ratio {row['ratio']:.2f})"
        )
    for case, found in errors.items():
        print(f"{case}: {found['seconds']:.1f} s to: {found['first_line']}")
    figures = {"rounds": ROUNDS, "startup": starts, "mistakes": errors}
    (HERE / "results" / "startup.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
