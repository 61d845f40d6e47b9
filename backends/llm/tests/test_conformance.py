"""The conformance kit against the llm backend, with the fake provider as its model server.

The kit builds the backend from the environment, so the fake's URL and a key are set there
(for the HTTP replay check too); answers come from a keyword 'model' over the scenario.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prelabel.testing import BackendConformance
from prelabel_llm.fake import FakeProvider


def _answer(call):
    text = call.text
    ner = [
        {"text": w, "label": label}
        for w, label in (("Ada", "PER"), ("Bob", "PER"), ("Paris", "LOC"), ("Oslo", "LOC"))
        if w in text
    ]
    return {"sentiment": "Positive" if "love" in text else "Negative", "ner": ner}


@pytest.fixture(autouse=True)
def _provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeProvider]:
    with FakeProvider(_answer) as fake:
        monkeypatch.setenv("PRELABEL_LLM_BASE_URL", fake.openai_url)
        monkeypatch.setenv("PRELABEL_LLM_API_KEY", "sk-conformance")
        monkeypatch.setenv("PRELABEL_LLM_STATE_DIR", str(tmp_path / "llm-state"))
        yield fake


class TestLlmConformance(BackendConformance):
    backend = "llm"


def test_the_scenario_is_really_labelled(_provider: FakeProvider, tmp_path: Path) -> None:
    # The kit accepts empty predictions; this checks the scenario gets real ones.
    from prelabel.testing import make_target

    target = make_target("llm", tmp_path)
    scenario = target.scenarios[0]
    out = target.backend().predict(scenario.tasks, target.context(scenario))
    assert [[r.to_ls()["value"] for r in p.result] for p in out] == [
        [
            {"choices": ["Positive"]},
            {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]},
            {"start": 10, "end": 15, "text": "Paris", "labels": ["LOC"]},
        ],
        [
            {"choices": ["Negative"]},
            {"start": 0, "end": 3, "text": "Bob", "labels": ["PER"]},
            {"start": 22, "end": 26, "text": "Oslo", "labels": ["LOC"]},
        ],
    ]
    assert len(_provider.calls) == 2
