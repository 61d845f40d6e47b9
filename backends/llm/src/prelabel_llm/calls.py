"""Calling a provider within a deadline, and turning k sampled answers into one answer and scores.

Retries: rate limits (429), server errors (5xx), timeouts and connection errors are retried
with exponential backoff (with jitter), waiting what ``Retry-After`` asks when the provider
says; a wait that would end past the deadline is not started, so a task fails in time instead
of making Label Studio's ``/predict`` call time out. Other errors fail at once.

Score (the task's confidence, in [0, 1]):

* ``k > 1`` samples: per control, the share of the k samples that gave the winning value
  (majority vote; an invalid or refused sample counts as a disagreeing one);
* ``k = 1`` with token log-probabilities (OpenAI and servers that return them):
  ``exp(sum of the answer's token log-probabilities)``, the probability the model gave to
  this exact answer (low for long free text);
* otherwise ``None`` (no score): never a made-up constant.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from prelabel_llm.providers import Completion, Provider, ProviderError, Request
from prelabel_llm.schema import Values

__all__ = ["RetryPolicy", "TaskFailed", "send", "vote"]


class TaskFailed(Exception):
    """A task gets an empty prediction; the message (logged) says why."""


@dataclass
class RetryPolicy:
    """How hard to try.

    Attributes:
        deadline: ``time.monotonic()`` value after which no call is started or waited for.
        max_retries: retries after the first attempt, for retryable errors.
        request_timeout: seconds one HTTP call may take (less when the deadline is nearer).
        backoff: first wait in seconds without ``Retry-After``; doubled per retry, at most 30.
        sleep: the sleep function (a seam for tests).
    """

    deadline: float
    max_retries: int = 3
    request_timeout: float = 60.0
    backoff: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep)

    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self.deadline - time.monotonic()


def send(provider: Provider, request: Request, policy: RetryPolicy) -> Completion:
    """Call ``provider`` with retries inside the deadline.

    Raises:
        ProviderError: a non-retryable error, retries used up, or the deadline reached.
    """
    attempt = 0
    while True:
        remaining = policy.remaining()
        if remaining <= 0:
            raise ProviderError("the request deadline passed before an answer", retryable=False)
        try:
            return provider.complete(request, timeout=min(policy.request_timeout, remaining))
        except ProviderError as exc:
            if not exc.retryable or attempt >= policy.max_retries:
                raise
            if exc.retry_after is not None:
                delay = exc.retry_after
            else:
                delay = min(policy.backoff * 2**attempt, 30.0) * random.uniform(0.5, 1.0)
            if delay >= policy.remaining():
                raise ProviderError(
                    f"{exc}; the next try (in {delay:.1f} s) would end after the request deadline",
                    retryable=False,
                    status=exc.status,
                ) from None
            policy.sleep(delay)
            attempt += 1


def vote(
    samples: Sequence[Values | None], logprobs: Sequence[float | None]
) -> tuple[Values, dict[str, float | None]]:
    """The majority answer per control and each control's score (see the module docstring).

    Args:
        samples: parsed answers, ``None`` for a sample that was invalid or refused; at least
            one is not ``None``.
        logprobs: per sample, the answer's summed token log-probability if known.
    """
    valid = [s for s in samples if s is not None]
    if not valid:
        raise ValueError("vote() needs at least one valid sample")
    answer: Values = {}
    scores: dict[str, float | None] = {}
    for name in valid[0]:
        # most_common is stable, so a tie goes to the value sampled first.
        winner, count = Counter(s[name] for s in valid).most_common(1)[0]
        answer[name] = winner
        if len(samples) > 1:
            scores[name] = count / len(samples)
        else:
            logprob = logprobs[0] if logprobs else None
            scores[name] = None if logprob is None else min(1.0, math.exp(logprob))
    return answer, scores
