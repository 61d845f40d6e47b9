"""Smoke-test a served backend over HTTP with its own conformance scenario (scripts/test-images).

    python scripts/smoke_image.py NAME URL first [VAR=VALUE...]  # /setup, /predict (batch and,
                                    # if interactive, with the scenario's clicks); /train if it trains
    python scripts/smoke_image.py NAME URL again   # after a restart: /predict from the stored state

The scenario comes from the backend installed here (``conformance_scenarios()``), the request
bodies from the recorded Label Studio requests the kit replays. VAR=VALUE are the container's
``PRELABEL_<NAME>_*`` settings: a scenario setting one of them sets is not sent as a project's
``extra_params`` (it would name something on this machine, e.g. a model directory, and override
what the container was given). "again" sends no label config: the server must find the
project's config, and the version "first" trained, in its volume. Prints what it checked; exits
non-zero with the reason on the first failure.
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
#: Backends whose smoke-test model labels the scenario's tasks whatever the weights: the llm
#: image's fake provider answers every call with a choice, the tiny BERT tags tokens at random.
#: (Random YOLO and SAM weights may find nothing: for them the shape of the answer is checked.)
LABELS_SOMETHING = {"llm", "ner"}


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


def predict(
    client: httpx.Client,
    name: str,
    tasks: list[Any],
    label_config: str | None,
    interaction: list[Any] | None = None,
) -> str:
    """POST /predict as LS does (with ``interaction`` as the annotator's context); checks one
    prediction per task, and some regions for :data:`LABELS_SOMETHING`; returns their version."""
    body = copy.deepcopy(fixture("predict_batch_text")["json"])
    body.update(project=PROJECT, tasks=tasks)
    if label_config is None:
        body.pop("label_config", None)
    else:
        body["label_config"] = label_config
    if interaction is not None:
        body["params"] = {**body.get("params", {}), "context": {"result": interaction}}
    answer = client.post("/predict", json=body)
    if answer.status_code != 200:
        fail(f"/predict answered {answer.status_code}: {answer.text}")
    results = answer.json()["results"]
    if len(results) != len(tasks):
        fail(f"/predict gave {len(results)} results for {len(tasks)} tasks")
    versions = {r.get("model_version") for r in results}
    if len(versions) != 1 or None in versions:
        fail(f"/predict model versions: {versions}")
    regions = sum(len(r.get("result") or []) for r in results)
    kind = "interactive" if interaction is not None else "batch"
    version = versions.pop()
    print(f"  /predict ({kind}): {len(results)} predictions, {regions} regions, version {version}")
    if regions == 0 and name in LABELS_SOMETHING:
        fail(f"/predict ({kind}) labelled nothing")
    return str(version)


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


def main(name: str, url: str, phase: str, container_env: list[str]) -> None:
    backend = load_backend(name)
    scenario = backend.conformance_scenarios()[0]
    prefix = f"PRELABEL_{name.upper()}_"
    given = {
        v.split("=")[0].removeprefix(prefix).lower() for v in container_env if v.startswith(prefix)
    }
    settings = {k: v for k, v in scenario.settings.items() if k not in given}
    state = Path(f".cache/smoke-{name}.json")
    with httpx.Client(base_url=url, timeout=300) as client:
        wait_healthy(client)
        if phase == "first":
            setup = copy.deepcopy(fixture("setup")["json"])
            setup.update(project=PROJECT, schema=scenario.label_config)
            if settings:
                setup["extra_params"] = json.dumps(settings)
            answer = client.post("/setup", json=setup)
            if answer.status_code != 200:
                fail(f"/setup answered {answer.status_code}: {answer.text}")
            print(f"  /setup: {answer.json()}")
            predict(client, name, list(scenario.tasks), scenario.label_config)
            if backend.interactive and scenario.interaction:
                interaction = list(scenario.interaction)
                predict(client, name, list(scenario.tasks[:1]), scenario.label_config, interaction)
            if scenario.train_tasks:
                train(client, list(scenario.train_tasks))
            version = predict(client, name, list(scenario.tasks), scenario.label_config)
            state.parent.mkdir(exist_ok=True)
            state.write_text(json.dumps({"version": version}))
        else:
            expected = json.loads(state.read_text())["version"]
            version = predict(client, name, list(scenario.tasks), None)
            if version != expected:
                fail(f"served {version} after the restart, {expected} before")


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[3] not in ("first", "again"):
        sys.exit(__doc__)
    main(*sys.argv[1:4], container_env=sys.argv[4:])
