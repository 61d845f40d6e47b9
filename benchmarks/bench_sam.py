"""SAM click latency, prefetch, and the embedding cache (issue 17 figures).

A vit_b-shaped SAM with random weights (the official vit_b's encoder, built offline: timing
does not depend on the weights' values), served by ``prelabel serve sam`` on the CPU, clicked
over HTTP as Label Studio's editor does (``/predict`` with ``params.context``), on synthetic
1024 x 768 JPEGs fetched from a loopback HTTP server:

* first click on an image (fetch, embedding, mask) vs later clicks on the same image;
* the first click on an image prefetched after a ``TASKS_CREATED`` webhook vs a cold one;
* a click on a cached image while a background embedding runs, vs one on an idle server;
* a later click over HTTP vs ``SamPredictor.predict`` on the same checkpoint in-process,
  alternating (and a cold click vs ``set_image`` + ``predict``);
* memory: what the cache accounts per image, and the serving worker's RSS growth per image;
* the cache's hit rate over a simulated annotation session (in-process, tiny model).

Run: ``.venv/bin/python benchmarks/bench_sam.py``; writes ``benchmarks/results/sam.json``
(``--only http_vs_in_process`` re-measures that figure alone and updates it there; ``--only
served`` every figure but the simulated session). The serving worker inherits this process's
environment: ``MALLOC_ARENA_MAX=2`` set here applies to it, and is recorded with its memory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _serving import free_port, served

ROOT = Path(tempfile.mkdtemp(prefix="bench-sam-"))
os.environ["PRELABEL_MODEL_DIR"] = str(ROOT / "models")
WEIGHTS = "sam-vit_b-random.pth"
PROJECT = "1.1700000000"
SIZE = (1024, 768)
#: Click positions (percent) tried on every image, as an annotator refines an object.
CLICKS = [(30, 35), (25, 30), (40, 40), (70, 65), (35, 45), (60, 70)]


def _images(n: int) -> list[Path]:
    from PIL import Image

    from prelabel_sam.synthetic import shapes_png

    folder = ROOT / "images"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        with Image.open(io.BytesIO(shapes_png(*SIZE, seed=i))) as image:
            path = folder / f"{i}.jpg"
            image.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _image_server() -> tuple[ThreadingHTTPServer, str]:
    port = free_port()
    server = ThreadingHTTPServer(
        ("127.0.0.1", port), partial(_Quiet, directory=str(ROOT / "images"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def _click_body(task: dict[str, Any], n: int) -> dict[str, Any]:
    from prelabel_sam.synthetic import BRUSH_CONFIG, click

    x, y = CLICKS[n % len(CLICKS)]
    items = [click(x, y, size=SIZE)]
    if n % 3 == 2:  # every third refinement adds a negative click
        items.append(click(80, 20, positive=False, size=SIZE))
    return {
        "project": PROJECT,
        "label_config": BRUSH_CONFIG,
        "tasks": [task],
        "params": {"login": None, "password": None, "context": {"result": items}},
    }


def _timed(client: Any, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.post("/predict", json=body)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert len(response.json()["results"]) == 1
    return elapsed


def _worker_rss_mib(server_pid: int) -> float:
    """VmRSS of the gunicorn worker (the serve process's only child: sam runs no trainer)."""
    import psutil

    (worker,) = psutil.Process(server_pid).children()
    return float(worker.memory_info().rss) / 2**20


def _wait_log(log: Path, text: str, count: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(text) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{text!r} did not appear {count} times in {log}")
        time.sleep(0.2)


def http_vs_in_process(
    client: Any, tasks: list[dict[str, Any]], paths: list[Path], rounds: int
) -> dict[str, Any]:
    """Clicks over HTTP vs ``SamPredictor`` on the same checkpoint here, alternating.

    The server's first image must be cached. The in-process predictor runs in a worker
    thread, as gunicorn's threads run the server's requests: on this shared machine torch
    ops in a process's main thread ran 3-5x slower than in any other thread, which would
    make the comparison flatter prelabel.
    """
    import numpy as np
    from PIL import Image
    from segment_anything import SamPredictor, sam_model_registry

    sam = sam_model_registry["vit_b"](checkpoint=str(ROOT / "models" / WEIGHTS))
    predictor = SamPredictor(sam.eval())
    thread = ThreadPoolExecutor(max_workers=1)

    def rgb(path: Path) -> Any:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    def click(n: int) -> None:
        x, y = CLICKS[n % len(CLICKS)]
        predictor.predict(
            point_coords=np.array([[x / 100 * SIZE[0], y / 100 * SIZE[1]]]),
            point_labels=np.array([1]),
            multimask_output=True,
        )

    def timed(call: Any, *args: Any) -> float:
        started = time.perf_counter()
        thread.submit(call, *args).result()
        return time.perf_counter() - started

    timed(predictor.set_image, rgb(paths[0]))
    http_rows, direct_rows = [], []
    for n in range(rounds):
        http_rows.append(_timed(client, _click_body(tasks[0], n + 1)))
        direct_rows.append(timed(click, n + 1))
    ratios = [d / h for d, h in zip(direct_rows, http_rows, strict=True)]
    cold_pairs = []
    for task, path in ((tasks[7], paths[7]), (tasks[8], paths[8])):
        image = rgb(path)
        direct_cold = timed(predictor.set_image, image) + timed(click, 0)
        cold_pairs.append((direct_cold, _timed(client, _click_body(task, 0))))
    thread.shutdown()
    return {
        "later_click_http_s_median": round(statistics.median(http_rows), 4),
        "later_click_in_process_s_median": round(statistics.median(direct_rows), 4),
        "speed_ratio_later_click": round(statistics.median(ratios), 3),
        "speed_ratio_rounds": [round(r, 3) for r in ratios],
        "cold_click_in_process_vs_http_s": [[round(d, 3), round(h, 3)] for d, h in cold_pairs],
        "speed_ratio_cold_click": round(statistics.median(d / h for d, h in cold_pairs), 3),
        "target": ">= 0.95 (in-process time / HTTP time)",
    }


def served_clicks(
    paths: list[Path], rounds: int, *, only_in_process: bool = False
) -> dict[str, Any]:
    """Everything measured over ``prelabel serve sam`` (see the module docstring)."""
    from prelabel_sam.synthetic import BRUSH_CONFIG

    httpd, base = _image_server()
    tasks = [{"id": i + 1, "data": {"image": f"{base}/{p.name}"}} for i, p in enumerate(paths)]
    env = {
        "PRELABEL_SAM_MODEL": WEIGHTS,
        "PRELABEL_SAM_DEVICE": "cpu",
        "PRELABEL_MEDIA_ALLOW_HOSTS": "127.0.0.1",
        "PRELABEL_LOG_LEVEL": "INFO",
    }
    log = ROOT / "serve.log"
    figures: dict[str, Any] = {}
    with served("sam", env, log=log) as server:
        client = server.client
        client.post("/setup", json={"project": PROJECT, "schema": BRUSH_CONFIG}).raise_for_status()
        rss_start = _worker_rss_mib(server.pid)
        if only_in_process:
            _timed(client, _click_body(tasks[0], 0))  # caches the image the rounds click on
            figures["http_vs_in_process"] = http_vs_in_process(client, tasks, paths, rounds)
            httpd.shutdown()
            return figures

        # 1. Cold first clicks, then later clicks on the same images.
        cold, later = [], []
        for task in tasks[:3]:
            cold.append(_timed(client, _click_body(task, 0)))
            later += [_timed(client, _click_body(task, n)) for n in range(1, 6)]
        figures["first_vs_later"] = {
            "cold_first_click_s": [round(t, 3) for t in cold],
            "later_click_s_median": round(statistics.median(later), 4),
            "later_click_s": [round(t, 4) for t in later],
            "later_over_first": round(statistics.median(later) / statistics.median(cold), 4),
            "target": "<= 0.05",
        }

        # 2. Prefetched on TASKS_CREATED, then clicked for the first time.
        event = {
            "action": "TASKS_CREATED",
            "tasks": tasks[3:6],
            "project": {
                "id": 1,
                "created_at": "2023-11-14T22:13:20Z",
                "label_config": BRUSH_CONFIG,
            },
        }
        client.post("/webhook", json=event).raise_for_status()
        _wait_log(log, "in the background", 3)
        prefetched = [_timed(client, _click_body(task, 0)) for task in tasks[3:6]]
        figures["prefetched_vs_cold"] = {
            "prefetched_first_click_s": [round(t, 4) for t in prefetched],
            "prefetched_over_cold": round(
                statistics.median(prefetched) / statistics.median(cold), 4
            ),
            "target": "<= 0.10",
        }

        # 3. Clicks on a cached image while the next task's image is embedded in the background.
        batch = {"project": PROJECT, "label_config": BRUSH_CONFIG, "tasks": [tasks[6]]}
        client.post("/predict", json=batch).raise_for_status()  # no context: queues a prefetch
        time.sleep(1.0)  # let the background encoder get going
        busy = [_timed(client, _click_body(tasks[0], n)) for n in range(3)]
        _wait_log(log, "in the background", 4)
        figures["click_during_background_embedding"] = {
            "click_s": [round(t, 4) for t in busy],
            "over_idle_later_click": round(statistics.median(busy) / statistics.median(later), 3),
        }

        # 4. The same predictor in-process, on the same checkpoint.
        figures["http_vs_in_process"] = http_vs_in_process(client, tasks, paths, rounds)

        # 5. Memory: 9 images are cached now.
        rss_end = _worker_rss_mib(server.pid)
        figures["server_memory"] = {
            "cached_images": 9,
            "worker_rss_mib_after_setup": round(rss_start, 1),
            "worker_rss_mib_after_9_images": round(rss_end, 1),
            "rss_growth_per_image_mib": round((rss_end - rss_start) / 9, 2),
            "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
        }
    httpd.shutdown()
    return figures


def session(tasks_n: int, seed: int, prefetch: bool, cache_mb: int) -> dict[str, Any]:
    """An annotator working through a project in-process (tiny SAM): how often clicks hit."""
    from prelabel.testing import make_context
    from prelabel_sam import SamBackend
    from prelabel_sam.synthetic import BRUSH_CONFIG, click, data_uri, save_checkpoint, shapes_png

    save_checkpoint(ROOT / "models" / "tiny.pth")
    backend = SamBackend(
        SamBackend.load_settings(
            model="tiny.pth",
            device="cpu",
            cache_mb=cache_mb,
            prefetch_limit=8 if prefetch else 0,
        )
    )
    backend.load()
    rng = random.Random(seed)
    tasks = [
        {"id": i, "data": {"image": data_uri(shapes_png(320, 240, seed=i))}} for i in range(tasks_n)
    ]
    media = ROOT / "session-media"
    backend.prefetch(tasks, make_context(backend, BRUSH_CONFIG, media=media))  # TASKS_CREATED
    clicks = 0
    started = time.perf_counter()
    for i, task in enumerate(tasks):
        opened = [task]
        if i > 3 and rng.random() < 0.15:  # now and then, back to an earlier task
            opened.append(tasks[rng.randrange(0, i)])
        for current in opened:
            # Opening a task without predictions: LS asks /predict without context.
            backend.predict([current], make_context(backend, BRUSH_CONFIG, media=media))
            time.sleep(rng.uniform(0.2, 0.6))  # the annotator looks at the image
            for _ in range(rng.randint(1, 5)):
                point = click(rng.uniform(10, 90), rng.uniform(10, 90))
                ctx = make_context(backend, BRUSH_CONFIG, media=media, interaction=[point])
                backend.predict([current], ctx)
                clicks += 1
                time.sleep(rng.uniform(0.1, 0.4))
    elapsed = time.perf_counter() - started
    stats = backend.stats()
    backend.prefetcher.close()
    return {
        "tasks": tasks_n,
        "clicks": clicks,
        "seconds": round(elapsed, 1),
        "hit_rate": round(stats.hit_rate, 3),
        "hits": stats.hits,
        "joins": stats.joins,
        "misses": stats.misses,
        "prefetched": stats.prefetched,
        "prefetch_hits": stats.prefetch_hits,
        "evictions": stats.evictions,
        "cache_mib": round(stats.bytes / 2**20, 1),
        "bytes_per_image": stats.bytes // max(1, stats.entries),
    }


def _encode_seconds() -> float:
    """How long the tiny model's image encoder takes here, for the session's time scale."""
    import numpy as np

    from prelabel_sam.model import load_sam

    model = load_sam(str(ROOT / "models" / "tiny.pth"), "cpu")
    image = np.zeros((240, 320, 3), np.uint8)
    model.embed(image)
    started = time.perf_counter()
    for _ in range(3):
        model.embed(image)
    return (time.perf_counter() - started) / 3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--session-tasks", type=int, default=40)
    parser.add_argument(
        "--only",
        choices=["http_vs_in_process", "served"],
        help="measure only these figures (served: every one over HTTP, without the simulated "
        "session) and update them in results/sam.json",
    )
    args = parser.parse_args()
    from prelabel_sam.synthetic import save_checkpoint

    out = Path(__file__).parent / "results" / "sam.json"
    save_checkpoint(ROOT / "models" / WEIGHTS, encoder="vit_b")
    paths = _images(9)
    if args.only:
        figures = json.loads(out.read_text())
        in_process = args.only == "http_vs_in_process"
        figures.update(served_clicks(paths, args.rounds, only_in_process=in_process))
    else:
        figures = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU",
            "model": "vit_b encoder shape, random weights, CPU",
            "image_size": list(SIZE),
            **served_clicks(paths, args.rounds),
        }
        sessions = {
            name: session(args.session_tasks, seed=1, prefetch=prefetch, cache_mb=cache_mb)
            for name, prefetch, cache_mb in (
                ("prefetch_cache_64mib", True, 64),
                ("no_prefetch_cache_64mib", False, 64),
                ("prefetch_cache_24mib", True, 24),
            )
        }
        figures["simulated_session"] = {
            "model": "tiny SAM in-process",
            "encode_s": round(_encode_seconds(), 3),
            "annotator": "0.2-0.6 s per opened task, 1-5 clicks 0.1-0.4 s apart, 15% revisits",
            **sessions,
        }
    print(json.dumps(figures, indent=2))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
