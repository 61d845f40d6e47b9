"""The budget gate on its own: worst-case estimates and waiting for calls in flight."""

from __future__ import annotations

import threading
import time

import pytest

from prelabel_llm.budget import IMAGE_TOKENS, Budget, BudgetGate, worst_case
from prelabel_llm.calls import TaskFailed
from prelabel_llm.providers import ImagePart, Request
from prelabel_llm.store import Usage


def admit(gate: BudgetGate, project: str, budget: Budget, spent: Usage, within: float) -> None:
    """One call through the gate that costs nothing."""
    with gate.admit(project, budget, lambda: spent, (150, 0.0), time.monotonic() + within):
        pass


def test_worst_case_counts_text_images_and_every_sample() -> None:
    request = Request(
        system="x" * 300,
        parts=("é" * 150, ImagePart(media_type="image/png", base64="cG5n")),
        schema={},
        samples=3,
        max_tokens=100,
    )
    # 300 + 300 UTF-8 bytes at 3 a token, one image, three answers of at most 100 tokens.
    assert worst_case(request) == (200 + IMAGE_TOKENS, 300)


def test_a_used_up_budget_refuses_at_once() -> None:
    with pytest.raises(TaskFailed, match=r"\$0\.5000 of a budget of \$0\.5"):
        admit(BudgetGate(), "p", Budget(None, 0.5), Usage(2, 10, 10, 0.5), 5)


def test_a_call_waits_for_those_in_flight_and_gives_up_at_the_deadline() -> None:
    gate = BudgetGate()
    budget = Budget(tokens=100, usd=None)
    started, release = threading.Event(), threading.Event()

    def first() -> None:
        with gate.admit("p", budget, Usage, (150, 0.0), time.monotonic() + 5):
            started.set()
            release.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    started.wait(5)
    began = time.monotonic()
    with pytest.raises(TaskFailed, match="deadline"):
        admit(gate, "p", budget, Usage(), 0.3)
    assert 0.25 <= time.monotonic() - began < 2
    admit(gate, "q", budget, Usage(), 1)  # another project's budget is its own
    release.set()
    thread.join()
    admit(gate, "p", budget, Usage(), 1)  # nothing in flight and room left: it goes ahead
