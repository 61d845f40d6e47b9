"""Admit provider calls against a project's token/cost budget, also when many run at once.

Spending is known only after a call returns, so a check of "spent so far" alone lets every call
of a concurrent batch start while the budget still has room: up to ``concurrency`` calls past
it. The gate counts calls in flight at their expected size (the project's mean call so far,
or the request's worst case before the first one): a call starts when spent plus in flight is
under the budget, waits while calls in flight might use the rest, and is refused once spent
reaches the budget. Sequential calls behave as before (the last one may pass the cap by its
own size); concurrent ones can no longer pass it together.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prelabel_llm.calls import TaskFailed
from prelabel_llm.providers import ImagePart, Request
from prelabel_llm.store import Usage

__all__ = ["Budget", "BudgetGate", "worst_case"]

#: Input tokens an image is counted as before the provider reports the real figure.
IMAGE_TOKENS = 1600


@dataclass(frozen=True)
class Budget:
    """A project's caps; ``None``: no cap."""

    tokens: int | None
    usd: float | None

    def reached(self, tokens: float, cost: float) -> bool:
        return (self.tokens is not None and tokens >= self.tokens) or (
            self.usd is not None and cost >= self.usd
        )


def worst_case(request: Request) -> tuple[int, int]:
    """Most ``(input, output)`` tokens ``request`` can use: text at 3 bytes a token, images at
    :data:`IMAGE_TOKENS`, and every sample's answer at ``max_tokens``."""
    text = [request.system, *(p for p in request.parts if isinstance(p, str))]
    images = sum(isinstance(p, ImagePart) for p in request.parts)
    prompt = sum(len(t.encode()) for t in text) // 3 + IMAGE_TOKENS * images
    return prompt, request.max_tokens * request.samples


class BudgetGate:
    """Per-process admission of calls; one per backend instance."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_flight: dict[str, list[tuple[float, float]]] = defaultdict(list)

    @contextmanager
    def admit(
        self,
        project: str,
        budget: Budget,
        spent: Callable[[], Usage],
        first_call: tuple[float, float],
        deadline: float,
    ) -> Iterator[None]:
        """Hold a place for one call of ``project`` while the body makes it and records usage.

        Args:
            project: the project key.
            budget: its caps.
            spent: reads what the project has spent (the store's figure).
            first_call: ``(tokens, cost)`` to count a call at before the project has any.
            deadline: ``time.monotonic()`` after which waiting for room is given up.

        Raises:
            TaskFailed: the budget is used up, or no room came free before the deadline.
        """
        if budget.tokens is None and budget.usd is None:
            yield
            return
        with self._changed:
            while True:
                used = spent()
                if budget.reached(used.tokens, used.cost):
                    raise TaskFailed(_exhausted(project, budget, used))
                expected = (
                    (used.tokens / used.calls, used.cost / used.calls) if used.calls else first_call
                )
                flying = self._in_flight[project]
                tokens = used.tokens + sum(t for t, _ in flying)
                cost = used.cost + sum(c for _, c in flying)
                if not flying or not budget.reached(tokens, cost):
                    flying.append(expected)
                    break
                # The calls in flight may use the rest of the budget: see what they spent.
                if not self._changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TaskFailed(
                        f"project {project}: waited for calls in flight to show whether its "
                        "LLM budget has room for another, until the deadline"
                    )
        try:
            yield
        finally:
            with self._changed:
                self._in_flight[project].remove(expected)
                self._changed.notify_all()


def _exhausted(project: str, budget: Budget, used: Usage) -> str:
    if budget.tokens is not None and used.tokens >= budget.tokens:
        spent = f"{used.tokens} tokens of a budget of {budget.tokens}"
    else:
        spent = f"${used.cost:.4f} of a budget of ${budget.usd:g}"
    return (
        f"project {project} has used its LLM budget ({spent}, {used.calls} calls); no more "
        "calls are made. Raise budget_usd / budget_tokens (PRELABEL_LLM_BUDGET_USD, "
        "PRELABEL_LLM_BUDGET_TOKENS or the project's extra_params) to continue."
    )
