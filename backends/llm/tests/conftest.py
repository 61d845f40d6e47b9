"""Fixtures: a fake provider on 127.0.0.1 and a way to call the backend as the server does."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from prelabel import Prediction, ProjectKey
from prelabel.testing import make_context
from prelabel_llm import LlmBackend
from prelabel_llm.fake import FakeProvider

API_KEY = "sk-test-7f3a9c2e41d8b6"

TEXT_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>'
    '<Labels name="ner" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>'
    '<TextArea name="prompt" toName="text"/></View>'
)


def keyword_answer(call: Any) -> dict[str, Any]:
    """A 'model' that reads the prompt: sentiment from keywords, names it knows as spans."""
    text = call.text
    ner = [
        {"text": w, "label": label}
        for w, label in (("Ada", "PER"), ("Paris", "LOC"), ("Oslo", "LOC"))
        if w in text
    ]
    answer = {"sentiment": "Positive" if "love" in text else "Negative", "ner": ner}
    return {k: v for k, v in answer.items() if k in call.schema["properties"]}


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(keyword_answer) as server:
        yield server


@pytest.fixture
def api_key() -> str:
    return API_KEY


Predict = Callable[..., list[Prediction]]


@pytest.fixture
def predict(fake: FakeProvider, tmp_path: Path) -> Predict:
    """``predict(tasks, config=..., interaction=..., project=..., **settings)``, the server's way."""
    backends: dict[str, LlmBackend] = {}

    def run(
        tasks: Sequence[Mapping[str, Any]],
        *,
        config: str = TEXT_CONFIG,
        interaction: Sequence[Mapping[str, Any]] = (),
        project: str = "1",
        **settings: Any,
    ) -> list[Prediction]:
        provider = settings.get("provider", "openai")
        defaults = {
            "base_url": fake.openai_url if provider == "openai" else fake.url,
            "api_key": API_KEY,
            "state_dir": tmp_path / "state",
            "backoff": 0.01,
        }
        backend = backends.setdefault(provider, LlmBackend(LlmBackend.load_settings(**defaults)))
        backend.load()
        ctx = make_context(
            backend,
            config,
            media=tmp_path / "model-dir",
            project=ProjectKey(project, 1700000000),
            extra_params=settings,
            interaction=interaction,
        )
        return list(backend.predict(tasks, ctx))  # type: ignore[arg-type]

    return run
