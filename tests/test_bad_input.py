"""Bad input gets a 4xx that says what is wrong, and cannot break the server for later
requests (issue #13, items 6, 7 and 10). ``test_fuzz.py`` mutates real LS bodies at random;
these are the cases found by hand and by the fuzzer, pinned.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from prelabel.config import LabelConfig, _ParseCache


def post_raw(client, path: str, data: str | bytes) -> Any:
    return client.post(path, data=data, content_type="application/json")


def refused(response, status: int = 400) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message"} and body["message"]
    return str(body["message"])


@pytest.mark.parametrize(
    ("path", "mutate", "says"),
    [
        ("/setup", lambda b: b.update(project="1.²"), "generation must be an integer"),
        ("/setup", lambda b: b.update(project="²"), "must look like"),
        ("/setup", lambda b: b.update(project=2**63), "must be a string"),
        ("/setup", lambda b: b.update(project="99999999999999999999.1"), "must look like"),
        ("/setup", lambda b: b.update(hostname=["http://x"]), "'hostname' must be a string"),
        ("/setup", lambda b: b.update(access_token=5), "'access_token' must be a string"),
        ("/predict", lambda b: b.update(tasks=[1, 2]), "list of task objects"),
        ("/predict", lambda b: b.update(label_config=7), "needs 'label_config'"),
        ("/predict", lambda b: b["tasks"][0].update(id=[1]), "task 'id' must be an integer"),
        ("/train", lambda b: b.update(annotations=[{"id": 1}, 5]), "'annotations'[1]"),
        (
            "/train",
            lambda b: b.update(annotations=[{"id": 1, "data": {}, "annotations": 3}]),
            "'annotations' must be a list",
        ),
        (
            "/train",
            lambda b: b.update(annotations=[{"id": 1, "data": {}, "annotations": [7]}]),
            "an annotation must be an object",
        ),
        (
            "/train",
            lambda b: b.update(annotations=[{"id": 2**63, "data": {}, "annotations": [{"id": 1}]}]),
            "below 2**63",
        ),
        ("/webhook", lambda b: b["annotation"].update(id=2**64), "below 2**63"),
        ("/webhook", lambda b: b["annotation"].update(id=[1]), "annotation 'id'"),
        ("/webhook", lambda b: b["task"].update(id=[1, 2]), "task 'id'"),
        ("/webhook", lambda b: b["project"].update(id="../../etc"), "project.id must be"),
        ("/webhook", lambda b: b["project"].update(id=[3]), "project.id must be"),
        ("/webhook", lambda b: b["project"].update(created_at="yesterday"), "ISO-8601"),
    ],
)
def test_malformed_fields_are_400_naming_the_field(client, ls_request, path, mutate, says):
    name = {
        "/setup": "setup",
        "/predict": "predict_batch_text",
        "/webhook": "webhook_ANNOTATION_CREATED",
        "/train": "setup",
    }[path]
    body = ls_request(name)
    if path == "/train":
        body = {"project": body["project"], "label_config": body["schema"], "annotations": []}
    mutate(body)
    assert says in refused(client.post(path, json=body))


def test_deletions_with_odd_ids_are_400(client, ls_request):
    body = ls_request("webhook_ANNOTATIONS_DELETED")
    body["annotations"] = [{"id": 1}, {"id": "2"}]
    assert "'id' must be an integer id" in refused(client.post("/webhook", json=body))
    body["annotations"] = [{"id": 2**63}]
    refused(client.post("/webhook", json=body))


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"a":' * 950 + b"1" + b"}" * 950, "nested too deeply"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"project": 1' + b"1" * 5000 + b"}", "not JSON"),
        (b"{'single': 'quotes'}", "not JSON"),
        (b"[]", "must be a JSON object, got list"),
    ],
)
@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook", "/train"])
def test_bodies_that_are_not_usable_json_are_400(client, path, data, says):
    assert says in refused(post_raw(client, path, data))


def test_deep_json_stored_by_a_webhook_is_400_not_500(client, ls_request):
    # Parses (under Python's limit), then overflows the next walker that stores it.
    body = ls_request("webhook_ANNOTATION_CREATED")
    text = json.dumps(body).replace('"lead_time": 3.2', '"lead_time": ' + "[" * 900 + "]" * 900)
    response = post_raw(client, "/webhook", text)
    assert response.status_code in (200, 400), response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/setup", "/webhook", "/predict"], ids=["setup", "webhook", "predict"]
)
def test_lone_surrogates_are_400_and_nothing_is_stored(client, ls_request, path):
    body = {
        "/setup": ls_request("setup"),
        "/webhook": ls_request("webhook_ANNOTATION_CREATED"),
        "/predict": ls_request("predict_batch_text"),
    }[path]
    text = json.dumps(body).replace("<View>", "<View>\\ud800", 1)
    assert "unpaired UTF-16 surrogate" in refused(post_raw(client, path, text))
    # A valid pair (an emoji as LS escapes it) is fine.
    ok = json.dumps(body).replace("<View>", "<View>\\ud83d\\ude00", 1)
    assert post_raw(client, path, ok).status_code < 300


def test_metrics_survive_any_webhook_action_and_do_not_grow(client, ls_request):
    body = ls_request("webhook_TASKS_CREATED")
    for action in ["\ud800", "A\nB", *(f"CUSTOM_{i}" for i in range(300))]:
        response = client.post("/webhook", data=json.dumps({**body, "action": action}),
                                content_type="application/json")  # fmt: skip
        assert response.status_code in (200, 400)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.get_data(as_text=True)
    assert 'prelabel_webhook_events_total{action="other"} 301.0' in text
    assert "CUSTOM_" not in text
    assert client.get("/metrics").status_code == 200


def test_version_series_are_bounded(make_app, ls_request, monkeypatch):
    from prelabel._engine import telemetry

    monkeypatch.setattr(telemetry, "MAX_VERSION_SERIES", 5)
    client = make_app().test_client()
    body = ls_request("setup")
    for project in range(12):
        assert client.post("/setup", json={**body, "project": f"{project}.1"}).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert text.count("prelabel_model_version_info{") == 5


def _config(i: int, size: int) -> str:
    return f'<View><Text name="t{i}" value="$t"/><Header value="{"x" * size}"/></View>'


def test_the_parsed_config_cache_is_bounded_by_bytes():
    cache = _ParseCache(max_bytes=100_000)
    for i in range(40):
        cache.get(_config(i, 20_000))  # 40 configs of 20 kB: 800 kB offered
        assert cache.size <= 100_000
    assert cache.get(_config(39, 20_000)) is cache.get(_config(39, 20_000))  # the newest kept
    huge = _config(99, 60_000)  # over a quarter of the budget: parsed, never cached
    assert cache.get(huge) is not cache.get(huge)
    assert LabelConfig.cached(_config(0, 10)) is LabelConfig.cached(_config(0, 10))
