"""Scenario 1: connecting a backend in Label Studio."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_connect_shows_backend_connected_with_its_model_version(ls, backend, new_project):
    project = new_project()

    created = ls.connect(project, backend)

    assert created["state"] == "CO", created
    assert created["readable_state"] == "Connected"
    assert created["error_message"] is None
    # The backend's version for an untrained project: "<name>-<package version>".
    health = backend.get("/health")
    assert created["model_version"] == health["version"]
    assert created["model_version"].startswith("textcls-")
    # LS re-checks on read (/health + /setup) and still shows the same.
    again = ls.ml(project.ml_id)
    assert (again["state"], again["model_version"]) == ("CO", health["version"])
    # LS created the project's webhook to the backend (how annotation events reach it).
    hooks = ls.webhooks(project)
    assert [h["url"] for h in hooks] == [f"{backend.url}/webhook"]
    assert hooks[0]["is_active"] and hooks[0]["send_payload"]


def test_connect_is_refused_for_a_config_the_backend_cannot_fill(ls, backend, new_project):
    project = new_project(
        label_config='<View><Image name="img" value="$image"/><RectangleLabels name="box" toName="img"><Label value="Car"/></RectangleLabels></View>'
    )

    shown = ls.refused_connection(project, backend)

    # LS discards the backend's error body (protocol §2); the reason is in the status line.
    assert (
        "doesn't look like a valid ML backend. Reason: 422 Client Error: The textcls backend "
        "fills Choices controls, and this labeling config has none (its controls: "
        "RectangleLabels)."
    ) in shown, shown
