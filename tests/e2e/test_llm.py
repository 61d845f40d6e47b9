"""Issue 6: the LLM backend pre-labels a real LS project through the fake OpenAI-compatible server.

``prelabel serve llm`` talks to :class:`prelabel_llm.fake.FakeProvider` (in this process, on
127.0.0.1) with the real OpenAI SDK. The fake "model" answers from the task's text, so every
expected label, score and span offset below is worked out by hand from the texts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prelabel_llm.fake import FakeProvider

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NER_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
</View>"""

#: Votes of the k = 3 samples per text marker (majority, then its share is the score).
VOTES = {
    "love": ["Positive"] * 3,
    "hate": ["Negative"] * 3,
    "fine": ["Positive", "Negative", "Positive"],
    "odd": ["Negative", "Negative", "Positive"],
}
#: The names the fake "model" quotes as spans (not Oslo: only quoted names become spans).
NAMES = {"Ada": "PER", "Paris": "LOC"}


def answer(call):
    if "sentiment" in call.schema["properties"]:
        # One OpenAI call with n = k: a list holds one answer per sample.
        votes = next(v for marker, v in VOTES.items() if marker in call.text)
        return [{"sentiment": label} for label in votes]
    return {"ner": [{"text": w, "label": label} for w, label in NAMES.items() if w in call.text]}


@pytest.fixture(scope="module")
def fake():
    with FakeProvider(answer) as server:
        yield server


@pytest.fixture(scope="module")
def llm_backend(backends, label_studio, fake, tmp_path_factory, e2e):
    prelabel = str(Path(sys.executable).with_name("prelabel"))
    argv = [prelabel, "serve", "llm", "--host", "127.0.0.1", "--port", "{port}"]
    env = {
        "PRELABEL_LLM_BASE_URL": fake.openai_url,
        "PRELABEL_LLM_API_KEY": "sk-e2e-not-a-real-key",
        "PRELABEL_LLM_MODEL": "fake-model",
        "PRELABEL_LLM_STATE_DIR": str(tmp_path_factory.mktemp("llm-state")),
        "PRELABEL_LLM_BACKOFF": "0.01",
    }
    backends.register("llm", e2e.BackendSpec(argv=argv, env=env))
    return backends.get("llm")


def test_choices_and_self_consistency_scores_are_stored_in_label_studio(
    ls, llm_backend, fake, new_project, e2e
):
    # k = 3 samples for this project only, through LS's "Extra params" of the ML form.
    project = new_project(backend=llm_backend, extra_params={"samples": 3, "temperature": 0.7})
    version = ls.ml(project.ml_id)["model_version"]
    markers = list(VOTES) * 8  # 32 tasks, each text unique
    ids = ls.import_texts(
        project, [f"Review {i}: I {m} this product" for i, m in enumerate(markers)]
    )
    calls_before = len(fake.calls)

    ls.retrieve_predictions(project)

    expected = {
        "love": ("Positive", 1.0),
        "hate": ("Negative", 1.0),
        "fine": ("Positive", 2 / 3),
        "odd": ("Negative", 2 / 3),
    }
    for task_id, marker in zip(ids, markers, strict=True):
        prediction = ls.only_prediction(task_id)
        assert prediction["model_version"] == version, prediction
        assert e2e.chosen(prediction["result"]) == expected[marker][0], (marker, prediction)
        (region,) = prediction["result"]
        assert (region["from_name"], region["to_name"]) == ("sentiment", "text"), region
        assert prediction["score"] == pytest.approx(expected[marker][1]), (marker, prediction)
    # One provider call per task, asking for the 3 samples at once, with the configured model.
    calls = fake.calls[calls_before:]
    assert len(calls) == len(ids)
    assert {(c.body["n"], c.body["model"]) for c in calls} == {(3, "fake-model")}
    assert {c.headers["authorization"] for c in calls} == {"Bearer sk-e2e-not-a-real-key"}


def test_quoted_names_are_stored_as_spans_at_label_studio_offsets(ls, llm_backend, new_project):
    project = new_project(NER_CONFIG, backend=llm_backend)
    texts = [
        "Ada flew from Oslo to Paris and Ada came back.",
        "Hi 🙂 Ada",  # one code point for the emoji, as LS's editor counts (not 2 UTF-16 units)
        "Nobody here.",
    ]
    ids = ls.import_texts(project, texts)

    ls.retrieve_predictions(project)

    spans = []
    for task_id in ids:
        prediction = ls.only_prediction(task_id)
        # k = 1 and the fake sends no token log-probabilities: no score (README "Score").
        assert prediction["score"] is None, prediction
        for region in prediction["result"]:
            assert (region["from_name"], region["to_name"], region["type"]) == (
                "ner",
                "text",
                "labels",
            ), region
            value = region["value"]
            (label,) = value["labels"]
            spans.append((task_id, value["start"], value["end"], value["text"], label))
    assert sorted(spans) == sorted(
        [
            (ids[0], 0, 3, "Ada", "PER"),
            (ids[0], 22, 27, "Paris", "LOC"),
            (ids[0], 32, 35, "Ada", "PER"),
            (ids[1], 5, 8, "Ada", "PER"),  # "Hi " 0-2, the emoji 3, a space 4
        ]
    )
