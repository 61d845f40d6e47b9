"""YOLO backend: throughput, first request, memory of all `serve` starts, training beside serving.

Random-init yolov8n (built offline from ultralytics' yaml, COCO names) on 64 synthetic 640x480
JPEGs served over loopback HTTP, as Label Studio serves uploads:

* one alternating run over a real ``prelabel serve yolo``, round by round: images/s of one
  64-task ``/predict`` and of 64 one-task ``/predict`` calls, versus ultralytics in-process on
  the same files and weights, one image at a time, (a) with torch on every core, the practical
  limit, and (b) as ultralytics configures itself (``cpu_count - 1`` threads), which is what
  the reference backend runs; with ``--reference``, that backend's own server joins the rounds
  (ratio: median over rounds of each round's ratio);
* the first ``/predict`` after start versus warm ones, each on an image not fetched before;
* peak RSS (VmHWM) summed over every process ``prelabel serve`` started, and the reference's;
* a training job beside serving: the job process's peak RSS, the idle training worker's, and
  64-task ``/predict`` images/s while the job runs versus after;
* a server per batch size (1, 2, 4) side by side, in a shuffled order each round: 64-task
  ``/predict`` images/s and each server's peak RSS;
* ultralytics alone on one thread, and on every core with OpenMP threads spinning or sleeping
  while they wait (``OMP_WAIT_POLICY``), on 8 images;
* boxes returned at ``model_score_threshold`` t versus ultralytics at ``conf=t``, on a copy
  of the weights whose class biases are raised so that scores straddle 0.1 and 0.25;
* peak RSS of a serving process for a one-control config, after 1 and after 10 projects.

Run: ``.venv/bin/python benchmarks/bench_yolo.py [--rounds 5]``; writes
``benchmarks/results/yolo.json``. The reference (HumanSignal/label-studio-ml-backend, not part
of this repository) joins with ``--reference CHECKOUT --reference-python VENV/bin/python``: a
checkout of that repository and a Python with its yolo example's requirements installed.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from _procs import memory_mib, tree
from _serving import free_port, served, wait_healthy
from _yolo import ROOT, coco_random_weights

CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image" model_score_threshold="{conf}"{model}>
  <Label value="Person" predicted_values="{person}"/><Label value="Vehicle" predicted_values="car,truck,bus"/>
</RectangleLabels></View>"""
#: The served config: the same weights for prelabel and the reference (named in the control).
SERVED = CONFIG.format(conf=0.25, person="person", model=' model_path="coco-random.pt"')
#: What the training job learns: the images' red and blue rectangles.
SHAPES = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image">
  <Label value="red" predicted_values="person"/><Label value="blue" predicted_values="car"/>
</RectangleLabels></View>"""
PROJECT = "1.1700000000"
TRAINING_PROJECT = "2.1700000000"
JSON = {"content-type": "application/json"}


def _images(n: int) -> list[tuple[Path, list[Any]]]:
    """``n`` 640x480 JPEGs of noise with a red and a blue rectangle, and the rectangles."""
    import numpy as np
    from PIL import Image

    from prelabel_yolo.synthetic import shapes_image

    rng = np.random.default_rng(0)
    (ROOT / "images").mkdir(exist_ok=True)
    made = []
    for i in range(n):
        png, shapes = shapes_image(rng, 640, 480, ["red", "blue"])
        path = ROOT / "images" / f"{i}.jpg"
        Image.open(io.BytesIO(png)).save(path, format="JPEG", quality=90)
        made.append((path, shapes))
    return made


@contextmanager
def media_server(directory: Path) -> Iterator[str]:
    """A loopback HTTP server for ``directory`` (as Label Studio serves uploads); its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


#: The weights the reference loads when it starts (its control models' defaults).
REFERENCE_WEIGHTS = (
    "yolov8m",
    "yolov8n",
    "yolov8n-cls",
    "yolov8n-seg",
    "yolov8n-pose",
    "yolov8n-obb",
)


def _reference_models() -> Path:
    """Its weights directory: the served weights, and its defaults built untrained (offline)."""
    from ultralytics import YOLO

    root = ROOT / "reference-models"
    root.mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "models" / "coco-random.pt", root / "coco-random.pt")
    for name in REFERENCE_WEIGHTS:
        YOLO(f"{name}.yaml").save(root / f"{name}.pt")  # the same tensors as the published files
    return root


@contextmanager
def reference_server(checkout: Path, python: str) -> Iterator[tuple[httpx.Client, int]]:
    """The reference yolo example under gunicorn as its docker-compose runs it (1 worker x 8)."""
    app = checkout / "label_studio_ml" / "examples" / "yolo"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELABEL_")}
    env.update(
        PYTHONPATH=f"{checkout}{os.pathsep}{app}",
        MODEL_ROOT=str(_reference_models()),
        LOG_LEVEL="WARNING",
    )
    command = [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
               "--threads", "8", "--timeout", "0", "_wsgi:app"]  # fmt: skip
    log = (ROOT / "reference.log").open("w")
    proc = subprocess.Popen(command, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
    try:
        wait_healthy(client, proc, f"the reference (log: {ROOT / 'reference.log'})")
        yield client, proc.pid
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _rate(count: int, call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return count / (time.perf_counter() - started)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _predict(client: httpx.Client, tasks: list[dict[str, Any]], config: str = SERVED) -> None:
    body = json.dumps({"project": PROJECT, "label_config": config, "tasks": tasks})
    response = client.post("/predict", content=body, headers=JSON)
    response.raise_for_status()
    assert len(response.json()["results"]) == len(tasks), response.text[:500]


def _setup(client: httpx.Client, project: str, schema: str) -> None:
    body = {"project": project, "schema": schema, "hostname": "", "access_token": ""}
    client.post("/setup", json=body).raise_for_status()


def _tree_memory(root: int) -> dict[str, Any]:
    """Peak RSS of ``root`` and each descendant, and their sum (MiB)."""
    procs = tree(root)
    each = {f"{p.pid} {p.command[:80]}": round(memory_mib(p.pid), 1) for p in procs}
    return {"sum": round(sum(each.values()), 1), "processes": each}


def first_request(client: httpx.Client, tasks: list[dict[str, Any]]) -> dict[str, float]:
    """The first one-task /predict after start, then ten warm ones (each image fetched anew)."""
    _setup(client, PROJECT, SERVED)
    first = _timed(lambda: _predict(client, tasks[:1]))
    warm = [_timed(lambda t=t: _predict(client, [t])) for t in tasks[1:11]]
    return {
        "first_ms": round(1000 * first, 1),
        "warm_median_ms": round(1000 * statistics.median(warm), 1),
        "ratio": round(first / statistics.median(warm), 2),
    }


class Alone:
    """Ultralytics in a process of its own (``_ultralytics_alone.py``), one image at a time."""

    def __init__(self, threads: int | str, wait_policy: str | None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if wait_policy is not None:
            env["OMP_WAIT_POLICY"] = wait_policy
        script = Path(__file__).with_name("_ultralytics_alone.py")
        weights = str(ROOT / "models" / "coco-random.pt")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), weights, str(threads)],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        while self.proc.stdout.readline().strip() != "ready":
            if self.proc.poll() is not None:
                raise RuntimeError("_ultralytics_alone.py exited")

    def rate(self, paths: list[Path]) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([str(p) for p in paths]) + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def serving(
    paths: list[Path], base: str, rounds: int, reference: tuple[Path, str] | None
) -> dict[str, Any]:
    """The alternating run: prelabel over HTTP, ultralytics alone, the reference's server."""
    from prelabel.threads import cpu_cores

    tasks = [{"id": i + 1, "data": {"image": f"{base}/{p.name}"}} for i, p in enumerate(paths)]
    # The practical limit: every core, waiting as prelabel's processes wait. Ultralytics'
    # defaults: cpu_count - 1 threads, OpenMP's default wait policy, as the reference runs.
    every_core = Alone(cpu_cores(), "PASSIVE")
    default = Alone("default", None)
    env = {"PRELABEL_MEDIA_ALLOW_HOSTS": "127.0.0.1"}
    rows: dict[str, list[float]] = {
        "request": [], "per_task": [], "ultralytics_every_core": [], "ultralytics_default": []
    }  # fmt: skip
    figures: dict[str, Any] = {}
    with _reference_or_none(reference) as ref:
        started = time.perf_counter()
        with served("yolo", env) as server:
            figures["start_s"] = round(time.perf_counter() - started, 2)
            client = server.client

            def one_task_per_request() -> None:
                for task in tasks:
                    _predict(client, [task])

            figures["first_request"] = first_request(client, tasks)
            _predict(client, tasks)  # every image in the media cache, as for later rounds
            if ref is not None:
                _setup(ref[0], PROJECT, SERVED)
                _predict(ref[0], tasks)
                rows["reference"] = []
            for _ in range(rounds):
                rows["request"].append(_rate(len(tasks), lambda: _predict(client, tasks)))
                rows["ultralytics_every_core"].append(every_core.rate(paths))
                rows["per_task"].append(_rate(len(tasks), one_task_per_request))
                rows["ultralytics_default"].append(default.rate(paths))
                if ref is not None:
                    rows["reference"].append(_rate(len(tasks), lambda: _predict(ref[0], tasks)))
            figures["threads"] = client.get("/health").json()["threads"]
            figures["peak_rss_mib"] = _tree_memory(server.pid)
        if ref is not None:
            figures["reference_peak_rss_mib"] = _tree_memory(ref[1])
    every_core.close()
    default.close()

    def ratio(ours: str, theirs: str) -> float:
        pairs = zip(rows[ours], rows[theirs], strict=True)
        return round(statistics.median(o / t for o, t in pairs), 3)

    figures["median_images_per_s"] = {k: round(statistics.median(v), 2) for k, v in rows.items()}
    ours = ("request", "per_task", *(("reference",) if ref else ()))
    figures["ratios"] = {
        f"{mine}_vs_{theirs}": ratio(mine, theirs)
        for mine in ours
        for theirs in ("ultralytics_every_core", "ultralytics_default")
    }
    if ref is not None:
        figures["ratios"]["request_vs_reference"] = ratio("request", "reference")
    figures["rounds"] = {k: [round(x, 2) for x in v] for k, v in rows.items()}
    return figures


@contextmanager
def _reference_or_none(
    reference: tuple[Path, str] | None,
) -> Iterator[tuple[httpx.Client, int] | None]:
    """The reference server when one was asked for, else ``None``."""
    if reference is None:
        yield None
        return
    with reference_server(*reference) as found:
        yield found


def wait_policies(paths: list[Path], rounds: int) -> dict[str, float]:
    """Ultralytics alone on 1 thread, and on every core with each OpenMP wait policy.

    Each process runs by itself, started for its measurement and stopped after it: an idle
    process whose threads spin would take the CPU from the one being measured.
    """
    from prelabel.threads import cpu_cores

    cores = cpu_cores()
    configs: dict[str, tuple[int | str, str | None]] = {
        "1_thread": (1, None),
        f"{cores}_threads_spinning": (cores, "ACTIVE"),
        f"{cores}_threads_openmp_default": (cores, None),
        f"{cores}_threads_passive": (cores, "PASSIVE"),
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, (threads, policy) in configs.items():
            process = Alone(threads, policy)
            try:
                rates[name].append(process.rate(paths))
            finally:
                process.close()
    return {name: round(statistics.median(v), 2) for name, v in rates.items()}


def training_beside_serving(
    images: list[tuple[Path, list[Any]]], base: str, rounds: int
) -> dict[str, Any]:
    """A training job's memory, and /predict images/s while its process runs versus after."""
    from prelabel_yolo.synthetic import box_result

    tasks = [
        {"id": i + 1, "data": {"image": f"{base}/{p.name}"}} for i, (p, _) in enumerate(images)
    ]
    annotated = [
        {**task, "annotations": [{"id": task["id"], "result": box_result(shapes, (640, 480))}]}
        for task, (_, shapes) in zip(tasks[:32], images, strict=False)
    ]
    env = {
        "PRELABEL_MEDIA_ALLOW_HOSTS": "127.0.0.1",
        "PRELABEL_YOLO_EPOCHS": "3",
        "PRELABEL_YOLO_TRAIN_IMGSZ": "320",
    }
    with served("yolo", env) as server:
        client = server.client
        _setup(client, PROJECT, SERVED)
        _predict(client, tasks)
        (worker,) = [p.pid for p in tree(server.pid) if "prelabel worker" in p.command]
        idle_worker = memory_mib(worker, "VmRSS")
        peaks: dict[int, float] = {}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.05):
                for proc in tree(worker)[1:]:
                    peaks[proc.pid] = max(peaks.get(proc.pid, 0.0), memory_mib(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        body = {"annotations": annotated, "project": TRAINING_PROJECT, "label_config": SHAPES}
        job = client.post("/train", json=body).json()["job"]

        def running() -> bool:
            return bool(client.get(f"/jobs/{job}").json()["status"] in ("queued", "running"))

        while running() and not peaks:
            time.sleep(0.1)  # until the job's process exists
        busy: list[float] = []
        while running() and len(busy) < rounds:
            busy.append(_rate(len(tasks), lambda: _predict(client, tasks)))
        while running():
            time.sleep(0.5)  # the rest of the job with the server idle, as between requests
        stop.set()
        sampler.join()
        done = client.get(f"/jobs/{job}").json()
        idle = [_rate(len(tasks), lambda: _predict(client, tasks)) for _ in range(rounds)]
        after = memory_mib(worker, "VmRSS")
        left = len(tree(worker)) - 1
    return {
        "job": {k: done.get(k) for k in ("status", "error")},
        "job_seconds": round((done["finished_at"] or 0) - (done["started_at"] or 0), 1),
        "job_process_peak_rss_mib": round(max(peaks.values(), default=0.0), 1),
        "idle_worker_rss_mib": round(idle_worker, 1),
        "worker_rss_after_job_mib": round(after, 1),
        "processes_left_after_job": left,
        "images_per_s_while_training": round(statistics.median(busy), 2) if busy else None,
        "images_per_s_after": round(statistics.median(idle), 2),
        "ratio_while_training": (
            round(statistics.median(busy) / statistics.median(idle), 3) if busy else None
        ),
        "rounds_while_training": len(busy),
    }


def _data_uri_tasks(paths: list[Path]) -> list[dict[str, Any]]:
    uris = ["data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode() for p in paths]
    return [{"id": i + 1, "data": {"image": uri}} for i, uri in enumerate(uris)]


def batch_sizes(
    paths: list[Path], base: str, rounds: int, sizes: tuple[int, ...]
) -> dict[str, Any]:
    """A server per batch size, side by side: 64-task /predict images/s, and each one's peak RSS."""
    tasks = [{"id": i + 1, "data": {"image": f"{base}/{p.name}"}} for i, p in enumerate(paths)]
    rates: dict[int, list[float]] = {size: [] for size in sizes}
    with ExitStack() as stack:
        servers = {}
        for size in sizes:
            env = {"PRELABEL_MEDIA_ALLOW_HOSTS": "127.0.0.1", "PRELABEL_YOLO_BATCH_SIZE": str(size)}
            servers[size] = stack.enter_context(served("yolo", env))
            _setup(servers[size].client, PROJECT, SERVED)
            _predict(servers[size].client, tasks)
        order = random.Random(0)
        for _ in range(rounds):
            shuffled = list(sizes)
            order.shuffle(shuffled)
            for size in shuffled:
                client = servers[size].client
                rates[size].append(_rate(len(tasks), lambda c=client: _predict(c, tasks)))
        memory = {size: _tree_memory(server.pid)["sum"] for size, server in servers.items()}
    return {
        str(size): {
            "images_per_s": round(statistics.median(rates[size]), 2),
            "vs_batch_1": round(
                statistics.median(r / one for r, one in zip(rates[size], rates[1], strict=True)), 3
            ),
            "peak_rss_sum_mib": memory[size],
        }
        for size in sizes
    }


def _eager_weights(shift: float = 9.0) -> str:
    """coco-random.pt with every class logit raised by ``shift``: scores around 0.1-0.3."""
    from ultralytics import YOLO

    model = YOLO(str(ROOT / "models" / "coco-random.pt"))
    for branch in model.model.model[-1].cv3:
        branch[-1].bias.data += shift
    model.save(ROOT / "models" / "coco-eager.pt")
    return "coco-eager.pt"


def threshold_fidelity(paths: list[Path], thresholds: tuple[float, ...]) -> dict[str, Any]:
    """Boxes the backend returns at model_score_threshold t vs ultralytics at conf=t."""
    from ultralytics import YOLO

    from prelabel.testing import make_context
    from prelabel_yolo import YoloBackend

    weights = _eager_weights()
    backend = YoloBackend(YoloBackend.Settings(detect_model=weights, preload=[]))
    direct = YOLO(str(ROOT / "models" / weights))
    every_class = ",".join(direct.names.values())
    tasks = _data_uri_tasks(paths)
    counts: dict[str, dict[str, int]] = {}
    for conf in thresholds:
        config = CONFIG.format(conf=conf, person=every_class, model="")
        ctx = make_context(backend, config, media=ROOT)
        ours = sum(len(p.result) for p in backend.predict(tasks, ctx))  # type: ignore[union-attr]
        theirs = sum(len(direct.predict(str(p), conf=conf, verbose=False)[0].boxes) for p in paths)
        counts[str(conf)] = {"backend": ours, "ultralytics": theirs}
    return counts


def _server_rss(n_projects: int, image: Path) -> tuple[float, int]:
    """Peak RSS (MiB) of a fresh serving process after /setup + /predict for n projects."""
    state = ROOT / f"rss-{n_projects}"  # no project state from the other sections
    state.mkdir()
    shutil.copyfile(ROOT / "models" / "coco-random.pt", state / "coco-random.pt")
    code = f"""
import base64, json
from pathlib import Path
from prelabel import CoreSettings
from prelabel._server import create_app
from prelabel_yolo import YoloBackend
backend = YoloBackend()
app = create_app(backend, CoreSettings(model_dir=Path({str(state)!r}), job_runner="external"), start_jobs=False)
client = app.test_client()
uri = "data:image/jpeg;base64," + base64.b64encode(Path({str(image)!r}).read_bytes()).decode()
schema = {CONFIG.format(conf=0.25, person="person", model="")!r}
for p in range({n_projects}):
    key = f"{{p + 1}}.1700000000"
    assert client.post("/setup", json={{"project": key, "schema": schema}}).status_code == 200
    r = client.post("/predict", json={{"project": key, "label_config": schema,
                    "tasks": [{{"id": 1, "data": {{"image": uri}}}}]}})
    assert r.status_code == 200, r.data
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"rss": int(hwm.split()[1]) / 1024, "models": len(backend.models.loaded)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the serving process failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return round(float(data["rss"]), 1), int(data["models"])


def main() -> None:
    try:
        run()
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--reference", type=Path, help="a label-studio-ml-backend checkout")
    parser.add_argument("--reference-python", default="python3", help="Python to run it with")
    parser.add_argument(
        "--only",
        choices=[
            "serving",
            "served_by_batch_size",
            "ultralytics_alone_by_wait_policy",
            "boxes_by_threshold",
        ],
        help="re-measure one section, keeping the others' figures in results/yolo.json",
    )
    args = parser.parse_args()
    omp = os.environ.get("OMP_NUM_THREADS")
    coco_random_weights()
    if omp is None:
        # Importing ultralytics set OMP_NUM_THREADS=1 here; the servers must not inherit it.
        os.environ.pop("OMP_NUM_THREADS", None)
    images = _images(args.images)
    paths = [path for path, _ in images]
    reference = (args.reference.resolve(), args.reference_python) if args.reference else None

    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU",
        "images": len(paths),
        "rounds": args.rounds,
    }
    out = Path(__file__).parent / "results" / "yolo.json"
    out.parent.mkdir(exist_ok=True)
    if args.only and out.exists():
        figures = {**json.loads(out.read_text()), **figures}

    def record(name: str, value: Any) -> None:
        # Written after every section: a late failure keeps the figures measured before it.
        figures[name] = value
        out.write_text(json.dumps(figures, indent=2) + "\n")

    with media_server(ROOT / "images") as base:
        if args.only in (None, "serving"):
            record("serving", serving(paths, base, args.rounds, reference))
        if args.only in (None, "served_by_batch_size"):
            record("served_by_batch_size", batch_sizes(paths, base, args.rounds, (1, 2, 4)))
        if args.only in (None, "ultralytics_alone_by_wait_policy"):
            record("ultralytics_alone_by_wait_policy", wait_policies(paths[:24], args.rounds))
        if args.only is None:
            record("training_beside_serving", training_beside_serving(images, base, args.rounds))
    if args.only in (None, "boxes_by_threshold"):
        record("boxes_by_threshold", threshold_fidelity(paths[:16], (0.1, 0.25)))
    if args.only:
        return
    rss1, models1 = _server_rss(1, paths[0])
    rss10, models10 = _server_rss(10, paths[0])
    record("serving_process_peak_rss_mib", {
        "1_project": rss1, "10_projects": rss10,
        "models_loaded": {"1_project": models1, "10_projects": models10},
    })  # fmt: skip
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
