"""Smoke-test a served backend over HTTP with its own conformance scenario (scripts/test-images).

    python scripts/smoke_image.py NAME URL first   # /setup, /predict; /train and wait, if it trains
    python scripts/smoke_image.py NAME URL again   # after a restart: /predict from the stored state

The scenario comes from the backend installed here (``conformance_scenarios()``), the request
bodies from the recorded Label Studio requests the kit replays. "again" sends no label config:
the server must find the project's config, and the version "first" trained, in its volume.
Prints what it checked; exits non-zero with the reason on the first failure.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from prelabel.registry import load_backend
from prelabel.testing import fixture

#: LS's project key, "<id>.<created_at>", as in the recorded requests.
PROJECT = "1.1795806764"


def fail(message: str) -> None:
    sys.exit(f"smoke test failed: {message}")


def wait_healthy(client: httpx.Client, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    fail(f"/health did not answer 200 within {seconds:.0f} s")


def predict(client: httpx.Client, tasks: list[Any], label_config: str | None) -> str:
    """POST /predict as LS does; checks one prediction per task; returns their model version."""
    body = copy.deepcopy(fixture("predict_batch_text")["json"])
    body.update(project=PROJECT, tasks=tasks)
    if label_config is None:
        body.pop("label_config", None)
    else:
        body["label_config"] = label_config
    answer = client.post("/predict", json=body)
    if answer.status_code != 200:
        fail(f"/predict answered {answer.status_code}: {answer.text}")
    results = answer.json()["results"]
    if len(results) != len(tasks):
        fail(f"/predict gave {len(results)} results for {len(tasks)} tasks")
    versions = {r.get("model_version") for r in results}
    if len(versions) != 1 or None in versions:
        fail(f"/predict model versions: {versions}")
    print(f"  /predict: {len(results)} predictions, version {versions.pop()}")
    return str(results[0]["model_version"])


def train(client: httpx.Client, train_tasks: list[Any], seconds: float = 600) -> None:
    """LS's legacy Start Training (/train), then wait for the job (if the backend trains)."""
    answer = client.post("/train", json={"project": PROJECT, "annotations": train_tasks})
    if answer.status_code == 200:
        print(f"  /train: {answer.json()['detail']}")
        return
    if answer.status_code != 201:
        fail(f"/train answered {answer.status_code}: {answer.text}")
    job_id = answer.json()["job"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(2)
    else:
        fail(f"training job {job_id} still {job['status']} after {seconds:.0f} s")
    if job["status"] != "succeeded":
        fail(f"training job {job_id} failed: {job}")
    versions = client.get(f"/projects/{PROJECT}/versions").json()["versions"]
    print(f"  /train: job {job['status']}, versions {[v['name'] for v in versions]}")


def main(name: str, url: str, phase: str) -> None:
    backend = load_backend(name)
    scenario = backend.conformance_scenarios()[0]
    state = Path(f".cache/smoke-{name}.json")
    with httpx.Client(base_url=url, timeout=300) as client:
        wait_healthy(client)
        if phase == "first":
            setup = copy.deepcopy(fixture("setup")["json"])
            setup.update(project=PROJECT, schema=scenario.label_config)
            if scenario.settings:
                setup["extra_params"] = json.dumps(dict(scenario.settings))
            answer = client.post("/setup", json=setup)
            if answer.status_code != 200:
                fail(f"/setup answered {answer.status_code}: {answer.text}")
            print(f"  /setup: {answer.json()}")
            predict(client, list(scenario.tasks), scenario.label_config)
            if scenario.train_tasks:
                train(client, list(scenario.train_tasks))
            version = predict(client, list(scenario.tasks), scenario.label_config)
            state.parent.mkdir(exist_ok=True)
            state.write_text(json.dumps({"version": version}))
        else:
            expected = json.loads(state.read_text())["version"]
            version = predict(client, list(scenario.tasks), None)
            if version != expected:
                fail(f"served {version} after the restart, {expected} before")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[3] not in ("first", "again"):
        sys.exit(__doc__)
    main(*sys.argv[1:])
