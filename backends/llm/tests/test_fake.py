"""The fake provider run by itself (``python -m prelabel_llm.fake``), as the llm image's smoke
test runs it: a served backend with no real provider still labels through the real SDK."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prelabel.testing import make_target
from prelabel_llm.fake import Call, first_choices


def call_with(schema: dict[str, object]) -> Call:
    return Call("openai", {}, {}, "", 0, schema, time.monotonic())


def test_first_choices_fits_every_kind_of_property() -> None:
    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["Positive", "Negative"]},
            "topics": {"type": "array", "items": {"type": "string", "enum": ["Sport", "News"]}},
            "spans": {
                "type": "array",
                "items": {"type": "object", "properties": {"text": {"type": "string"}}},
            },
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "amount": {"type": "number"},
            "summary": {"type": "string"},
        },
    }
    assert first_choices(call_with(schema)) == {
        "sentiment": "Positive",
        "topics": ["Sport"],
        "spans": [],
        "rating": 1,
        "amount": 0,
        "summary": "",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_by_itself_it_serves_the_backend_through_the_real_sdk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "prelabel_llm.fake", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert f"base_url http://127.0.0.1:{port}/v1" in server.stdout.readline()
        monkeypatch.setenv("PRELABEL_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
        monkeypatch.setenv("PRELABEL_LLM_API_KEY", "sk-fake")
        monkeypatch.setenv("PRELABEL_LLM_STATE_DIR", str(tmp_path / "llm-state"))
        target = make_target("llm", tmp_path)
        scenario = target.scenarios[0]
        out = target.backend().predict(scenario.tasks, target.context(scenario))
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Every task gets the config's first choice and no spans (the Labels control's answer).
    assert [[r.to_ls()["value"] for r in p.result] for p in out] == [
        [{"choices": ["Positive"]}],
        [{"choices": ["Positive"]}],
    ]
