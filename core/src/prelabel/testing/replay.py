"""The HTTP check: real LS 1.23.2 requests replayed through ``create_app`` (protocol §13)."""

from __future__ import annotations

import copy
from typing import Any

from prelabel._server import create_app
from prelabel.testing._target import CheckFailed, Target, fixture, fixtures, scenarios_of

__all__ = ["check_http_replay"]


def check_http_replay(target: Target) -> None:
    """Recorded LS requests (health, setup, predict, versions, every webhook) get valid answers.

    Troubleshooting: the usual causes are ``check_config`` rejecting the scenario's config,
    ``check_settings`` refusing the environment's settings (e.g. no API key: set one, or a
    server URL, for the check), a prediction that cannot be serialised, or an exception in
    ``predict`` for every task (the server then answers 500 with the exception's message;
    the traceback is in the log).
    """
    scenario = scenarios_of(target)[0]
    app = create_app(target.backend(), target.core_settings(), load=False, start_jobs=False)
    client = app.test_client()

    def expect(ok: bool, message: str) -> None:
        if not ok:
            raise CheckFailed(f"HTTP replay: {message}")

    health = client.get("/health")
    expect(health.status_code == 200 and health.is_json, f"/health answered {health.status_code}")

    setup = copy.deepcopy(fixture("setup")["json"])
    setup["schema"] = scenario.label_config
    answer = client.post("/setup", json=setup)
    expect(
        answer.status_code == 200,
        f"/setup answered {answer.status_code}: {answer.get_data(as_text=True)}",
    )
    version = answer.get_json().get("model_version")
    expect(isinstance(version, str) and bool(version), f"/setup model_version is {version!r}")

    for name in (n for n in fixtures() if n.startswith("predict_") and "interactive" not in n):
        body = copy.deepcopy(fixture(name)["json"])
        body.update(
            project=setup["project"], label_config=scenario.label_config, tasks=list(scenario.tasks)
        )
        answer = client.post("/predict", json=body)
        expect(answer.status_code == 200, f"{name}: /predict answered {answer.status}")
        results = answer.get_json()["results"]
        expect(
            len(results) == len(scenario.tasks),
            f"{name}: {len(results)} results for {len(scenario.tasks)} tasks",
        )
        for entry in results:
            for prediction in entry if isinstance(entry, list) else [entry]:
                expect(
                    isinstance(prediction.get("result"), list),
                    f"{name}: an entry has no result list",
                )
                expect(
                    bool(prediction.get("model_version")),
                    f"{name}: model_version is missing or null",
                )

    versions = client.get("/versions").get_json()
    expect(version in versions.get("versions", []), f"/versions {versions} lacks {version!r}")

    for name in (n for n in fixtures() if n.startswith("webhook_")):
        event: dict[str, Any] = copy.deepcopy(fixture(name)["json"])
        if isinstance(event.get("project"), dict):
            event["project"]["label_config"] = scenario.label_config
        answer = client.post("/webhook", json=event)
        expect(200 <= answer.status_code < 300, f"{name}: /webhook answered {answer.status_code}")
    unknown = client.post("/webhook", json={"action": "LABEL_LINK_CREATED", "project": {"id": 1}})
    expect(unknown.status_code == 200, f"an unknown webhook action answered {unknown.status_code}")
    broken = client.post("/webhook", data="not json", content_type="application/json")
    expect(
        broken.status_code == 400, f"a non-JSON webhook body answered {broken.status_code}, not 400"
    )
