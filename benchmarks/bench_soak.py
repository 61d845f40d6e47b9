"""Soak: many clients, slow clients and training at once, against `prelabel serve textcls`.

Two parts, both on loopback:

1. **Starvation** (what chose the serving remedy): connections that send their headers and
   half a body, then stall, against gunicorn's ``gthread`` worker as prelabel used to serve
   (8 threads), ``gthread`` with 64 threads, and prelabel's buffering worker; ``/health`` is
   then probed with a 2 s timeout (LS allows 1 s).
2. **Soak**: ``CLIENTS`` clients for ``SECONDS`` s, each looping over ``/predict`` (1-5 tasks),
   ``/webhook`` (annotation events: training runs all along in the worker process) and
   ``/health`` with a short pause between requests, plus ``SLOW`` clients that trickle a body
   one byte a second and a prober that calls ``/health`` every 50 ms, as LS would. Counted: errors
   (any non-2xx or failed request of the normal clients), latency per endpoint, the prober's
   ``/health`` p99 (target < 100 ms), training jobs finished, and the RSS of every process of
   the server (master, gunicorn worker, training worker) after warm-up, every 10 s and at the
   end. The load processes run at ``--client-nice`` (default 10): in a deployment LS and the
   browsers are on other machines, and on a small one the load generator would otherwise take
   the CPU the server under test needs (the prober keeps normal priority).

    .venv/bin/python benchmarks/bench_soak.py [--clients 50] [--seconds 60] [--slow 20]
        [--client-nice 10] [--skip-starvation] [--out soak]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
from _serving import free_port, report, served

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices></View>"""
PROJECT = {"id": 9, "created_at": "2026-11-27T19:23:47.527544Z", "label_config": CONFIG}
KEY = "9.1795807427"
WORDS = {"Positive": "love great excellent happy", "Negative": "hate awful broken terrible"}


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
    }


def stall(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that sent headers and half of their body."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n" + b'{"action": "' + b"x" * 50
        )
        socks.append(sock)
    return socks


def probe_health(url: str, n: int = 20) -> dict[str, object]:
    answered: list[float] = []
    with httpx.Client(timeout=2.0) as client:
        for _ in range(n):
            started = time.perf_counter()
            try:
                client.get(f"{url}/health").raise_for_status()
                answered.append(time.perf_counter() - started)
            except httpx.HTTPError:
                pass
    return {"answered": f"{len(answered)}/{n}", **percentiles(answered)}


def gthread(threads: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn's own gthread worker in front of the same app (the old way to serve)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", "prelabel._server.app:create_app()"],
        env={**os.environ, "PRELABEL_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn gthread did not start")


def starvation(env: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for threads, stalled in ((8, 8), (64, 70)):
        proc, url = gthread(threads, env)
        try:
            socks = stall(int(url.rsplit(":", 1)[1]), stalled)
            out[f"gthread_{threads}_threads_{stalled}_stalled"] = probe_health(url)
            for sock in socks:
                sock.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    with served("textcls", env) as server:
        url = str(server.client.base_url).rstrip("/")
        socks = stall(int(url.rsplit(":", 1)[1]), 70)
        out["buffering_8_threads_70_stalled"] = probe_health(url)
        for sock in socks:
            sock.close()
    return out


def health_in_app(metrics: str) -> dict[str, object]:
    """How long the app itself took for ``/health`` (from the server's latency histogram):
    what the server spends, apart from queueing for a thread, the CPU and the network."""
    buckets = {}
    for line in metrics.splitlines():
        if line.startswith('prelabel_request_seconds_bucket{endpoint="/health"'):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    total = buckets.get("+Inf", 0.0)
    return {
        "n": int(total),
        "within_10ms": round(buckets.get("0.01", 0.0) / total, 4) if total else None,
        "within_100ms": round(buckets.get("0.1", 0.0) / total, 4) if total else None,
    }


def tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [root], [root]
    while frontier:
        children = [p for p, pp in parents.items() if pp in frontier]
        found += children
        frontier = children
    return found


def rss(root: int) -> dict[str, int]:
    """VmRSS (KiB) of the server's processes, by role (job processes come and go: left out)."""
    out = {}
    for pid in tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "jobprocess" in cmd:
            continue
        role = (
            "master"
            if pid == root
            else "training worker"
            if " worker" in cmd
            else "gunicorn worker"
        )
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        out[f"{role} ({pid})"] = kb
    return out


class Soak:
    def __init__(self, url: str, seconds: float, first_id: int) -> None:
        self.url = url
        self.stop_at = time.monotonic() + seconds
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.slow_closed = 0
        self.lock = threading.Lock()
        self.next_id = first_id

    def ids(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    def request(self, client: httpx.Client, name: str, method: str, path: str, **kw) -> None:
        started = time.perf_counter()
        try:
            response = client.request(method, path, **kw)
            ok = response.is_success
            detail = f"{response.status_code} {response.text[:120]}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latency[name].append(elapsed)
            if not ok:
                self.errors.append(f"{name}: {detail}")

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while time.monotonic() < self.stop_at:
                kind = rng.choices(["predict", "webhook", "health"], [4, 3, 3])[0]
                if kind == "predict":
                    tasks = [
                        {"id": rng.randrange(10**6), "data": {"text": self.text(rng)}}
                        for _ in range(rng.randint(1, 5))
                    ]
                    body = {"tasks": tasks, "project": KEY, "label_config": CONFIG, "params": {}}
                    self.request(client, "predict", "POST", "/predict", json=body)
                elif kind == "webhook":
                    self.request(client, "webhook", "POST", "/webhook", json=self.event(rng))
                else:
                    self.request(client, "health", "GET", "/health")
                time.sleep(rng.uniform(0, 0.1))

    def text(self, rng: random.Random, label: str | None = None) -> str:
        words = WORDS[label or rng.choice(list(WORDS))].split()
        return " ".join(rng.sample(words, 2) + [f"w{rng.randrange(5000)}" for _ in range(20)])

    def event(self, rng: random.Random) -> dict[str, object]:
        label, ident = rng.choice(list(WORDS)), self.ids()
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": [label]}}]  # fmt: skip
        return {
            "action": "ANNOTATION_CREATED",
            "project": PROJECT,
            "task": {"id": ident, "data": {"text": self.text(rng, label)}},
            "annotation": {"id": ident, "task": ident, "result": result},
        }

    def slow(self) -> None:
        """Trickle a body a byte a second; the server closes it (408) and we start over."""
        port = int(self.url.rsplit(":", 1)[1])
        while time.monotonic() < self.stop_at:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.settimeout(1.0)
                sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
                while time.monotonic() < self.stop_at:
                    try:
                        if sock.recv(4096):
                            with self.lock:
                                self.slow_closed += 1
                            break
                    except TimeoutError:
                        sock.sendall(b" ")
                    except OSError:
                        break

    def prober(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < self.stop_at:
                self.request(client, "health_probe", "GET", "/health")
                time.sleep(0.05)


def _run(role: str, url: str, seconds: float, n: int, seed: int, nice: int, out: mp.Queue) -> None:
    """One load process: ``n`` threads of one role; puts its latencies and errors on ``out``."""
    if role != "prober" and nice:
        os.nice(nice)
    run = Soak(url, seconds, first_id=seed * 10**6)
    target = {"client": run.client, "slow": run.slow, "prober": run.prober}[role]
    threads = [
        threading.Thread(target=target, args=(seed * 1000 + i,) if role == "client" else ())
        for i in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((dict(run.latency), run.errors, run.slow_closed))


def sample_rss(pid: int, every: float, stop: threading.Event, into: list[dict[str, int]]) -> None:
    """Append the server's RSS by role every ``every`` s until ``stop``: growth that levels
    off (caches filling, new model versions loaded) tells apart from a leak."""
    started = time.monotonic()
    while not stop.wait(every):
        by_role = {name.split(" (")[0]: kb for name, kb in rss(pid).items()}
        into.append({"s": round(time.monotonic() - started), **by_role})


def soak(
    env: dict[str, str], clients: int, seconds: float, slow: int, nice: int
) -> dict[str, object]:
    with served("textcls", env) as server:
        url = str(server.client.base_url).rstrip("/")
        setup = {"project": KEY, "schema": CONFIG, "hostname": "", "access_token": ""}
        server.client.post("/setup", json=setup).raise_for_status()
        idle = probe_health(url, n=100)  # the same server, same machine, before the load
        load_before = os.getloadavg()[0]
        # Load from several processes, the prober alone in one: a client's own GIL must not
        # show up as server latency.
        out: mp.Queue = mp.Queue()
        per = max(1, clients // 4)
        plan = [("client", min(per, clients - i), 1 + i // per) for i in range(0, clients, per)]
        plan += [("slow", slow, 90), ("prober", 1, 99)]
        procs = [
            mp.Process(target=_run, args=(role, url, seconds, n, seed, nice, out))
            for role, n, seed in plan
            if n
        ]
        for proc in procs:
            proc.start()
        time.sleep(min(5.0, seconds / 4))  # warm-up: connection pools, first training job
        before = rss(server.pid)
        samples: list[dict[str, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(server.pid, 10.0, stop, samples))
        sampler.start()
        results = [out.get() for _ in procs]
        stop.set()
        sampler.join()
        for proc in procs:
            proc.join()
        after = rss(server.pid)
        load_after = os.getloadavg()[0]
        jobs = server.client.get("/jobs", params={"project": KEY}).json()["jobs"]
        in_app = health_in_app(server.client.get("/metrics").text)
    latency: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    for part, errs, _ in results:
        for name, values in part.items():
            latency[name] += values
        errors += errs
    lasting = {name: kb for name, kb in before.items() if name in after}
    return {
        "clients": clients,
        "seconds": seconds,
        "slow_clients": slow,
        "client_nice": nice,
        "requests": sum(len(v) for v in latency.values()),
        "errors": len(errors),
        "error_samples": errors[:10],
        "latency": {name: percentiles(v) for name, v in sorted(latency.items())},
        "health_idle_before": idle,
        "health_in_app": in_app,
        "machine_load_1min": {"before": load_before, "after": load_after, "cores": os.cpu_count()},
        "slow_clients_closed_by_server": sum(r[2] for r in results),
        "training_jobs": {
            status: sum(j["status"] == status for j in jobs if j["kind"] == "train")
            for status in ("queued", "running", "succeeded", "failed")
        },
        "rss_kib_after_warmup": lasting,
        "rss_kib_growth": {name: after[name] - kb for name, kb in lasting.items()},
        "rss_kib_every_10s_after_warmup": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument(
        "--client-nice",
        type=int,
        default=10,
        help="CPU niceness of the load processes (not the prober): they stand in for LS and "
        "browsers on other machines, so they get the CPU the server leaves; 0 to compete",
    )
    parser.add_argument("--skip-starvation", action="store_true", help="only the soak")
    parser.add_argument("--out", default="soak", help="results/OUT.json")
    args = parser.parse_args()
    env = {
        "PRELABEL_MODEL_DIR": tempfile.mkdtemp(prefix="prelabel-soak-"),
        "PRELABEL_BACKEND": "textcls",
        "PRELABEL_JOB_RUNNER": "external",
    }
    figures: dict[str, object] = {}
    if not args.skip_starvation:
        figures["starvation"] = starvation(env)
    env["PRELABEL_JOB_RUNNER"] = "process"
    env["PRELABEL_MODEL_DIR"] = tempfile.mkdtemp(prefix="prelabel-soak-")
    figures["soak"] = soak(env, args.clients, args.seconds, args.slow, args.client_nice)
    report(args.out, figures)


if __name__ == "__main__":
    main()
