"""Behaviour of the llm backend: real openai/anthropic SDK clients against a fake provider."""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from typing import Any

import pytest

from prelabel import Prediction
from prelabel.config import LabelConfig
from prelabel.errors import InvalidExtraParams
from prelabel.testing import make_context
from prelabel_llm import LlmBackend
from prelabel_llm.fake import Reply
from prelabel_llm.store import Store


def task(task_id: int, text: str) -> dict[str, Any]:
    return {"id": task_id, "data": {"text": text}}


def values(prediction: Prediction) -> list[tuple[str, Any]]:
    return [(r.from_name, dict(r.value)) for r in prediction.result]


SENTIMENT = (
    '<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
    '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>'
)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_labels_from_the_config_with_exact_offsets(fake, predict, api_key, provider):
    text = "Ada loves Paris 🎉 Paris."
    [out] = predict([task(1, text)], provider=provider)
    # LS stores code points: "🎉" counts once, so the second Paris is at 18..23 (counted:
    # "Ada loves Paris " is 0-15, the emoji 16, a space 17), not at its UTF-16 19..24.
    assert values(out) == [
        ("sentiment", {"choices": ["Positive"]}),
        ("ner", {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]}),
        ("ner", {"start": 10, "end": 15, "text": "Paris", "labels": ["LOC"]}),
        ("ner", {"start": 18, "end": 23, "text": "Paris", "labels": ["LOC"]}),
    ]
    [call] = fake.calls
    assert call.api == provider
    # Both SDKs (openai 3.x, anthropic 2.x) send the key as a bearer token.
    assert call.headers["authorization"] == f"Bearer {api_key}"
    if provider == "openai":
        fmt = call.body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
    else:
        assert call.body["tool_choice"] == {"type": "tool", "name": call.body["tools"][0]["name"]}
        schema = call.body["tools"][0]["input_schema"]
    # The prompt TextArea is the annotator's input, not something the model fills.
    assert sorted(schema["properties"]) == ["ner", "sentiment"]
    assert schema["properties"]["sentiment"]["enum"] == ["Positive", "Negative"]
    assert "Paris" in call.text


def test_malformed_json_is_retried_once_with_the_reason(fake, predict):
    fake.script(Reply(answer='{"sentiment": "Positive"'))
    [out] = predict([task(1, "I love it")], config=SENTIMENT)
    assert values(out) == [("sentiment", {"choices": ["Positive"]})]
    assert len(fake.calls) == 2
    retry = fake.calls[1].body["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"sentiment": "Positive"'}
    assert "not valid JSON" in retry[-1]["content"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_out_of_vocabulary_twice_gives_nothing(fake, predict, caplog, provider):
    bad = Reply(answer={"sentiment": "positive"})  # wrong case: never matched loosely
    fake.script(bad, bad)
    [out] = predict([task(1, "I love it")], config=SENTIMENT, provider=provider)
    assert out.result == [] and out.score is None
    assert len(fake.calls) == 2
    assert "'positive' is not one of" in caplog.text


def test_a_quote_that_is_not_in_the_text_is_rejected(fake, predict, caplog):
    hallucinated = Reply(
        answer={"sentiment": "Positive", "ner": [{"text": "Rome", "label": "LOC"}]}
    )
    fake.script(hallucinated, hallucinated)
    [out] = predict([task(1, "Ada loves Paris")])
    assert out.result == []
    assert "'Rome' does not occur in the text" in caplog.text


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_refusal_is_not_retried(fake, predict, caplog, provider):
    fake.script(Reply(refusal="I can't help with that."))
    [out] = predict([task(1, "I love it")], config=SENTIMENT, provider=provider)
    assert out.result == []
    assert len(fake.calls) == 1
    assert "refused: I can't help with that." in caplog.text


def test_rate_limit_waits_for_retry_after(fake, predict):
    fake.script(Reply(status=429, headers={"Retry-After": "0.4"}))
    [out] = predict([task(1, "I love it")], config=SENTIMENT)
    assert values(out) == [("sentiment", {"choices": ["Positive"]})]
    assert len(fake.calls) == 2
    assert fake.calls[1].at - fake.calls[0].at >= 0.35


def test_a_retry_after_past_the_deadline_fails_at_once(fake, predict, caplog):
    fake.script(Reply(status=429, headers={"Retry-After": "30"}))
    [out] = predict([task(1, "I love it")], config=SENTIMENT, deadline=5)
    assert out.result == []
    assert len(fake.calls) == 1
    assert "HTTP 429" in caplog.text and "deadline" in caplog.text


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_server_errors_are_retried(fake, predict, provider):
    fake.script(Reply(status=500), Reply(status=503))
    [out] = predict([task(1, "I love it")], config=SENTIMENT, provider=provider)
    assert values(out) == [("sentiment", {"choices": ["Positive"]})]
    assert len(fake.calls) == 3


def test_client_errors_are_not_retried(fake, predict, caplog):
    fake.script(Reply(status=400, error="bad schema"))
    [out] = predict([task(1, "I love it")], config=SENTIMENT)
    assert out.result == [] and len(fake.calls) == 1
    assert "HTTP 400" in caplog.text and "bad schema" in caplog.text


def test_a_timed_out_call_is_retried(fake, predict):
    fake.script(Reply(delay=3))
    [out] = predict([task(1, "I love it")], config=SENTIMENT, request_timeout=0.5)
    assert values(out) == [("sentiment", {"choices": ["Positive"]})]
    assert len(fake.calls) == 2


def test_slow_calls_end_at_the_deadline(fake, predict, caplog):
    fake.latency = 5
    started = time.monotonic()
    # One thread: task 2 is still queued at the deadline and never starts.
    out = predict(
        [task(1, "I love it"), task(2, "meh")], config=SENTIMENT, deadline=1, concurrency=1
    )
    # Bounded by the deadline, not by the 5 s the fake takes (generous slack for slow CI).
    assert time.monotonic() - started < 4
    assert [p.result for p in out] == [[], []]
    assert len(fake.calls) == 1
    assert "2 task(s) got no prediction (1, 2)" in caplog.text and "deadline" in caplog.text
    fake.latency = 0


def test_calls_run_concurrently_within_the_pool_bound(fake, predict):
    fake.latency = 0.3
    out = predict([task(i, f"text {i}") for i in range(9)], config=SENTIMENT, concurrency=3)
    assert len(out) == 9 and all(p.result for p in out)
    assert fake.max_in_flight == 3
    fake.latency = 0


def test_identical_requests_are_answered_from_the_cache(fake, predict):
    tasks = [task(1, "I love it"), task(2, "I hate it")]
    first = predict(tasks, config=SENTIMENT)
    assert len(fake.calls) == 2
    again = predict(tasks, config=SENTIMENT)
    assert len(fake.calls) == 2  # nothing paid twice
    assert [values(p) for p in again] == [values(p) for p in first]
    predict(tasks, config=SENTIMENT, model="another-model")
    assert len(fake.calls) == 4
    predict(tasks, config=SENTIMENT, cache=False)
    assert len(fake.calls) == 6


def test_usage_and_cost_are_counted_per_project(fake, predict, tmp_path):
    predict([task(1, "a"), task(2, "b")], config=SENTIMENT, price_input=2.0, price_output=10.0)
    predict([task(3, "c")], config=SENTIMENT, project="7", price_input=2.0, price_output=10.0)
    store = Store(tmp_path / "state" / "llm.sqlite")
    usage = store.usage("1.1700000000")
    # The fake bills 100 prompt and 10 completion tokens per call.
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (2, 200, 20)
    assert usage.cost == pytest.approx((200 * 2.0 + 20 * 10.0) / 1e6)
    assert store.usage("7.1700000000").calls == 1


def test_the_budget_stops_spending(fake, predict, caplog):
    tasks = [task(i, f"text {i}") for i in range(4)]
    out = predict(tasks, config=SENTIMENT, budget_tokens=200, concurrency=1)
    # 110 tokens per call: calls 1 and 2 are under 200 when they start, the rest are not.
    assert [bool(p.result) for p in out] == [True, True, False, False]
    assert len(fake.calls) == 2
    assert "2 task(s) got no prediction (2, 3)" in caplog.text
    assert "used its LLM budget (220 tokens of a budget of 200" in caplog.text


def test_concurrent_calls_cannot_overshoot_the_budget_together(fake, predict, caplog, tmp_path):
    """Eight calls at once against a 250-token budget: as many are made as one after another.

    The first call counts at its worst case (prompt + max_tokens) while in flight, so the
    others wait for it; then calls count at the project's mean (110 tokens): at 110 spent, two
    more fit under 250 together, and at 330 spent the budget is used up.
    """
    fake.latency = 0.2
    tasks = [task(i, f"text {i}") for i in range(8)]
    out = predict(tasks, config=SENTIMENT, budget_tokens=250, concurrency=8)
    fake.latency = 0
    assert sum(bool(p.result) for p in out) == 3 and len(fake.calls) == 3
    assert fake.max_in_flight <= 2  # without the gate: all eight at once
    assert Store(tmp_path / "state" / "llm.sqlite").usage("1.1700000000").tokens == 330
    assert "5 task(s) got no prediction" in caplog.text
    assert "used its LLM budget (330 tokens of a budget of 250" in caplog.text


def test_without_a_budget_calls_are_not_held_back(fake, predict):
    fake.latency = 0.5
    predict([task(i, f"text {i}") for i in range(6)], config=SENTIMENT, concurrency=6)
    fake.latency = 0
    assert fake.max_in_flight >= 4  # (6 unless a thread starts half a second late)


def test_agreement_across_samples_is_the_score(fake, predict):
    pos, neg = {"sentiment": "Positive"}, {"sentiment": "Negative"}
    fake.script(Reply(answer=[pos, neg, pos]))
    [out] = predict([task(1, "mixed")], config=SENTIMENT, samples=3)
    assert values(out) == [("sentiment", {"choices": ["Positive"]})]
    assert out.score == pytest.approx(2 / 3)
    assert fake.calls[0].body["n"] == 3 and "logprobs" not in fake.calls[0].body


def test_anthropic_samples_are_separate_calls(fake, predict):
    pos, neg = {"sentiment": "Positive"}, {"sentiment": "Negative"}
    fake.script(Reply(answer=neg), Reply(answer=neg), Reply(answer="not json"), Reply(answer=neg))
    [out] = predict([task(1, "mixed")], config=SENTIMENT, samples=4, provider="anthropic")
    assert values(out) == [("sentiment", {"choices": ["Negative"]})]
    # An invalid sample counts against agreement: 3 of 4.
    assert out.score == pytest.approx(0.75)
    assert len(fake.calls) == 4
    del pos


def test_token_logprobs_are_the_score_with_one_sample(fake, predict):
    fake.script(Reply(logprobs=[-0.1, -0.25, 0.0]))
    [out] = predict([task(1, "I love it")], config=SENTIMENT)
    assert out.score == pytest.approx(math.exp(-0.35))
    assert fake.calls[0].body["logprobs"] is True


def test_no_logprobs_no_score(fake, predict):
    [out] = predict([task(1, "I love it")], config=SENTIMENT, provider="anthropic")
    assert out.result and out.score is None
    [out] = predict([task(2, "I love it!")], config=SENTIMENT, logprobs=False)
    assert out.result and out.score is None


def test_a_template_fills_task_fields_and_labels(fake, predict):
    template = 'Title: {title}\nText: {text}\nAllowed:\n{labels}\nJSON like {"a": 1} {unknown}'
    tasks = [{"id": 1, "data": {"text": "I love it", "title": "Review"}}]
    predict(tasks, config=SENTIMENT, prompt_template=template)
    assert fake.calls[0].text == (
        "Title: Review\nText: I love it\nAllowed:\n- sentiment (one of: Positive, Negative)\n"
        'JSON like {"a": 1} {unknown}'
    )


def test_a_template_without_data_keys_gets_the_task_appended(fake, predict):
    predict([task(1, "I love it")], config=SENTIMENT, prompt_template="Classify the mood.")
    assert fake.calls[0].text == "Classify the mood.\n\ntext:\nI love it"


def test_a_typed_prompt_is_used_and_remembered_for_batch_runs(fake, predict):
    typed = {
        "from_name": "prompt",
        "to_name": "text",
        "type": "textarea",
        "value": {"text": ["Be strict about {text}"]},
    }
    predict([task(1, "I love it")], interaction=[typed])
    assert fake.calls[0].text == "Be strict about I love it"
    predict([task(2, "Oslo in rain")])  # a batch run, no interaction
    assert fake.calls[1].text == "Be strict about Oslo in rain"
    predict([task(3, "other project")], project="9")
    assert fake.calls[2].text.startswith("Label this task.")


# 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
IMAGE_CONFIG = (
    '<View><Image name="image" value="$image"/><Choices name="kind" toName="image">'
    '<Choice value="Cat"/><Choice value="Dog"/></Choices></View>'
)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_images_go_to_the_model_as_base64(fake, predict, provider):
    fake.answer = lambda call: {"kind": "Cat"}
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    [out] = predict([{"id": 1, "data": {"image": uri}}], config=IMAGE_CONFIG, provider=provider)
    assert values(out) == [("kind", {"choices": ["Cat"]})]
    content = fake.calls[0].body["messages"][-1]["content"]
    image = content[-1]
    if provider == "openai":
        assert image == {"type": "image_url", "image_url": {"url": uri}}
    else:
        source = {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(PNG).decode(),
        }
        assert image == {"type": "image", "source": source}


def test_a_non_image_is_refused_with_the_reason(fake, predict, caplog):
    uri = "data:text/plain;base64," + base64.b64encode(b"hello").decode()
    [out] = predict([{"id": 1, "data": {"image": uri}}], config=IMAGE_CONFIG)
    assert out.result == [] and fake.calls == []
    assert "not a PNG, JPEG, GIF or WebP image" in caplog.text


def test_the_api_key_is_never_logged(fake, predict, caplog, api_key):
    caplog.set_level(logging.DEBUG)
    fake.script(Reply(status=401, error=f"Incorrect API key provided: {api_key}"))
    predict([task(1, "I love it")], config=SENTIMENT)
    predict([task(2, "I love it")], config=SENTIMENT)
    assert len(fake.calls) == 2 and "HTTP 401" in caplog.text
    for record in caplog.records:
        assert api_key not in record.getMessage()
    assert api_key not in repr(LlmBackend.load_settings(api_key=api_key))


def test_no_key_for_a_hosted_provider_is_a_clear_error(fake, caplog, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = LlmBackend(LlmBackend.load_settings(api_key=None, base_url=None))
    ctx = make_context(backend, SENTIMENT, media=tmp_path)
    out = backend.predict([task(1, "x")], ctx)
    assert out[0].result == [] and fake.calls == []  # type: ignore[union-attr]
    assert "no API key for openai: set PRELABEL_LLM_API_KEY" in caplog.text


@pytest.mark.parametrize("key", ["base_url", "state_dir", "api_key"])
def test_a_project_may_not_choose_where_the_key_goes_or_what_is_written(
    predict, fake, tmp_path, key
):
    # Whoever reaches /setup sets extra_params: the server's key must not follow base_url to
    # their host, state_dir must not create files where they say, and keys stay out of LS's
    # project settings (issue #13).
    elsewhere = {
        "base_url": "http://127.0.0.1:9/v1",
        "state_dir": str(tmp_path / "theirs"),
        "api_key": "sk-project-own",
    }
    with pytest.raises(InvalidExtraParams, match=f"may not set {key}.*PRELABEL_LLM_{key.upper()}"):
        predict([task(1, "I love it")], config=SENTIMENT, **{key: elsewhere[key]})
    assert fake.calls == [] and not (tmp_path / "theirs").exists()
    assert LlmBackend.Settings.server_only() == {"base_url", "api_key", "state_dir"}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_setup_without_a_key_fails_with_the_reason_label_studio_shows(
    provider, fake, tmp_path, monkeypatch
):
    from prelabel import CoreSettings
    from prelabel._server import create_app

    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    backend = LlmBackend(LlmBackend.load_settings(provider=provider, api_key=None, base_url=None))
    app = create_app(backend, CoreSettings(model_dir=tmp_path), load=False, start_jobs=False)
    client = app.test_client()
    setup = {"project": "3.1795807427", "schema": SENTIMENT, "hostname": "", "access_token": ""}
    env = "OPENAI_API_KEY" if provider == "openai" else "ANTHROPIC_API_KEY"
    reason = (
        f"The llm backend cannot predict: no API key for {provider}: set PRELABEL_LLM_API_KEY "
        f"(or {env}) in the backend's environment; OpenAI-compatible local servers need only "
        "PRELABEL_LLM_BASE_URL."
    )

    refused = client.post("/setup", json={**setup, "extra_params": None})

    # What LS shows at Connect Model: "500 Server Error: <reason> for url: …/setup".
    assert refused.status == f"500 {reason}"
    # Not from the project's extra_params (LS's form sends a string): keys and endpoints are
    # server-only.
    for extra in ('{"api_key": "sk-project"}', json.dumps({"base_url": fake.openai_url})):
        assert client.post("/setup", json={**setup, "extra_params": extra}).status_code == 422
    monkeypatch.setenv(env, "sk-env")
    assert client.post("/setup", json={**setup, "extra_params": None}).status_code == 200


def test_every_setting_is_documented():
    readme = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()
    for name in LlmBackend.Settings.model_fields:
        assert f"PRELABEL_LLM_{name.upper()}" in readme, name


def test_request_bodies_are_json_schema_strict(fake, predict):
    predict([task(1, "I love it")])
    schema = fake.calls[0].body["response_format"]["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["sentiment", "ner"]
    item = schema["properties"]["ner"]["items"]
    assert item["properties"]["label"]["enum"] == ["PER", "LOC"]
    assert json.dumps(schema)  # serialisable as sent


DYNAMIC = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="topic" toName="text" value="$topics"/>'
    '<Labels name="who" toName="text" value="$people"/></View>'
)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_choices_and_labels_from_task_data(fake, predict, provider):
    # The model is offered each task's own vocabulary: it answers with the last topic offered
    # and labels "Ada" with the task's only person label.
    def answer(call):
        props = call.schema["properties"]
        who = props["who"]["items"]["properties"]["label"]["enum"]
        return {"topic": props["topic"]["enum"][-1], "who": [{"text": "Ada", "label": who[0]}]}

    fake.answer = answer
    first = {"id": 1, "data": {"text": "Ada 🎉 sails", "topics": ["sea", "sky"], "people": ["PER"]}}
    second = {"id": 2, "data": {"text": "Ada", "topics": [{"value": "land"}], "people": ["Hero"]}}
    out = predict([first, second], config=DYNAMIC, provider=provider)
    assert [values(p) for p in out] == [
        [
            ("topic", {"choices": ["sky"]}),
            ("who", {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]}),
        ],
        [
            ("topic", {"choices": ["land"]}),
            ("who", {"start": 0, "end": 3, "text": "Ada", "labels": ["Hero"]}),
        ],
    ]


def test_label_coverage_offers_every_label_in_the_prompt_but_not_the_prompt_itself():
    config = LabelConfig.parse(
        '<View><Text name="text" value="$text"/>'
        '<Choices name="sentiment" toName="text"><Choice value="Positive"/>'
        '<Choice value="Negative"/></Choices>'
        '<Labels name="ner" toName="text"><Label value="PER"/></Labels>'
        '<TextArea name="prompt" toName="text"/></View>'
    )
    coverage = LlmBackend().label_coverage(config)
    assert [(c.control, c.source, c.labels) for c in coverage] == [
        ("sentiment", "prompt", ("Positive", "Negative")),
        ("ner", "prompt", ("PER",)),
    ]
