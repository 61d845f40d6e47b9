"""Bulk pre-annotation: `prelabel predict` on a live project vs LS's own Retrieve Predictions.

A real Label Studio 1.23.2 (the e2e suite's `.venv-ls` and its migrated template in `.cache/`)
and `prelabel serve NAME` on 127.0.0.1; both paths predict the same unlabeled tasks of the
same project with the same backend and version, round after round, alternating:

* Retrieve Predictions: the Data Manager action (`POST /api/dm/actions?id=retrieve_tasks_
  predictions`) on the unlabeled tasks, which LS sends to `/predict` in one request;
* `prelabel predict NAME --project ID`: the command as a user runs it (interpreter start and
  backend load included), and the rate its progress line reports (the bulk run alone).

Predictions are deleted between runs (Data Manager action `delete_tasks_predictions`). Cases:
textcls on 1,000 tasks (trained first on 20 annotated ones) and llm on 200 tasks against
`prelabel_llm.fake` answering in 200 ms (its answer cache off, so every round calls it).

    .venv/bin/python benchmarks/bench_bulk.py        # prints figures, writes results/bulk.json
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _serving import Server, served

from prelabel_llm.fake import FakeProvider

HERE = Path(__file__).parent
ROOT = HERE.parent
PRELABEL = str(Path(sys.executable).with_name("prelabel"))
ROUNDS = 3

# The e2e suite's helpers: starting Label Studio, its REST client, the synthetic corpus.
_spec = importlib.util.spec_from_file_location("e2e_conftest", ROOT / "tests/e2e/conftest.py")
assert _spec is not None and _spec.loader is not None
e2e = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = e2e  # its dataclasses look their module up
_spec.loader.exec_module(e2e)


@contextmanager
def label_studio(tmp: Path) -> Iterator[Any]:
    """A real Label Studio on a copy of the e2e template; its API client."""
    if not (e2e.TEMPLATE / ".complete").exists():
        raise SystemExit(f"{e2e.TEMPLATE} is missing: run `scripts/test tests/e2e` once.")
    data, files = tmp / "ls-data", tmp / "ls-files"
    shutil.copytree(e2e.TEMPLATE, data)
    files.mkdir()
    exe = ROOT / ".venv-ls" / "bin" / "label-studio"
    proc, url = e2e.start_ls(exe, data, files, tmp / "label-studio.log")
    try:
        e2e.wait_ls(proc, url)
        api = e2e.LabelStudioAPI(url, e2e.LS_TOKEN)
        yield api
        api.http.close()
    finally:
        proc.stop()


def backend_env(api: Any, model_dir: Path, **extra: str) -> dict[str, str]:
    return e2e.clean_env(
        PRELABEL_MODEL_DIR=str(model_dir),
        LABEL_STUDIO_URL=api.url,
        LABEL_STUDIO_API_KEY=e2e.LS_TOKEN,
        PRELABEL_REPREDICT="false",  # nothing predicts in the background between the runs
        PRELABEL_LOG_LEVEL="WARNING",
        **extra,
    )


def connect(api: Any, server: Server, name: str, title: str) -> Any:
    project = api.create_project(title)
    body = api.json(
        "POST",
        "/api/ml",
        json={"url": str(server.client.base_url), "project": project.id, "title": name},
    )
    project.ml_id = body["id"]
    return project


def train(api: Any, server: Server, project: Any) -> None:
    """20 annotated tasks and Start Training; waits for the new version."""
    examples = e2e.make_corpus(20, 1)
    api.import_tasks(
        project,
        [{"data": {"text": e.text}, "annotations": [{"result": e2e.choice(e.label)}]}
         for e in examples],
    )  # fmt: skip
    api.call("POST", f"/api/ml/{project.ml_id}/train")
    for _ in range(600):
        jobs = server.client.get("/jobs", params={"project": project.key}).json()["jobs"]
        if jobs and all(j["status"] not in ("queued", "running") for j in jobs):
            assert jobs[0]["result"].get("promoted"), jobs
            return
        time.sleep(0.1)
    raise RuntimeError("training did not finish in 60 s")


def count(api: Any, project: Any) -> int:
    return len(api.json("GET", "/api/predictions", params={"project": project.id}))


def clear(api: Any, project: Any) -> None:
    api.json(
        "POST",
        "/api/dm/actions",
        params={"id": "delete_tasks_predictions", "project": project.id},
        json={"selectedItems": {"all": True, "excluded": []}},
    )
    assert count(api, project) == 0


def retrieve(api: Any, project: Any, ids: list[int]) -> float:
    """Seconds of LS's Retrieve Predictions on ``ids`` (LS answers once all are stored)."""
    started = time.perf_counter()
    api.json(
        "POST",
        "/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": project.id},
        json={"selectedItems": {"all": False, "included": ids}},
        timeout=1800,
    )
    return time.perf_counter() - started


def predict_cli(name: str, project: Any, env: dict[str, str]) -> tuple[float, float]:
    """Seconds of `prelabel predict` end to end, and the rate its last progress line says."""
    started = time.perf_counter()
    done = subprocess.run(
        [PRELABEL, "predict", name, "--project", str(project.id)],
        env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"prelabel predict failed: {done.stdout}\n{done.stderr[-3000:]}")
    rates = re.findall(r"([\d.]+) tasks/s", done.stderr)
    return wall, float(rates[-1])


def measure(
    api: Any, name: str, project: Any, ids: list[int], env: dict[str, str]
) -> dict[str, Any]:
    n = len(ids)
    ls_s, cli_s, engine, ratios = [], [], [], []
    for _ in range(ROUNDS):
        ls_s.append(retrieve(api, project, ids))
        assert count(api, project) == n, "Retrieve Predictions must predict every task"
        clear(api, project)
        wall, rate = predict_cli(name, project, env)
        assert count(api, project) == n, "prelabel predict must predict every task"
        clear(api, project)
        cli_s.append(wall)
        engine.append(rate)
        ratios.append((n / wall) / (n / ls_s[-1]))
    return {
        "tasks": n,
        "retrieve_predictions_s": [round(s, 2) for s in ls_s],
        "prelabel_predict_s": [round(s, 2) for s in cli_s],
        "retrieve_predictions_tasks_per_s": round(n / statistics.median(ls_s), 1),
        "prelabel_predict_tasks_per_s": round(n / statistics.median(cli_s), 1),
        "prelabel_predict_run_tasks_per_s": round(statistics.median(engine), 1),
        "ratio_predict_vs_retrieve": round(statistics.median(ratios), 2),
    }


def textcls_case(api: Any, tmp: Path) -> dict[str, Any]:
    env = backend_env(api, tmp / "textcls")
    with served("textcls", env, "--threads", "8") as server:
        project = connect(api, server, "textcls", "bench textcls")
        train(api, server, project)
        ids = api.import_texts(project, [e.text for e in e2e.make_corpus(1000, 2)])
        return measure(api, "textcls", project, ids, env)


def answer(call: Any) -> dict[str, Any]:
    return {"sentiment": "Positive" if "love" in call.text or "great" in call.text else "Negative"}


def llm_case(api: Any, tmp: Path) -> dict[str, Any]:
    with FakeProvider(answer, latency=0.2) as fake:
        env = backend_env(
            api,
            tmp / "llm",
            PRELABEL_LLM_BASE_URL=fake.openai_url,
            PRELABEL_LLM_API_KEY="sk-bench",
            PRELABEL_LLM_MODEL="fake-model",
            PRELABEL_LLM_CACHE="false",
        )
        with served("llm", env, "--threads", "8") as server:
            project = connect(api, server, "llm", "bench llm")
            ids = api.import_texts(project, [e.text for e in e2e.make_corpus(200, 3)])
            figures = measure(api, "llm", project, ids, env)
            figures["provider_calls"] = len(fake.calls)
            return figures


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as scratch:
        tmp = Path(scratch)
        with label_studio(tmp) as api:
            figures = {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                f"{platform.python_version()}, shared",
                "label_studio": e2e.LS_VERSION,
                "rounds": ROUNDS,
                "textcls": textcls_case(api, tmp),
                "llm_fake_200ms": llm_case(api, tmp),
            }
    out = HERE / "results" / "bulk.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
