"""LLM pre-labelling: the label config becomes an answer schema; tasks go out concurrently.

Per ``/predict`` call: the answer format comes from the config (:mod:`prelabel_llm.schema`),
each task becomes one request (:mod:`prelabel_llm.prompt`), requests run on a bounded thread
pool within one deadline (:mod:`prelabel_llm.calls`), identical requests are answered from an
on-disk cache, and each project's token usage and cost are counted against its budget
(:mod:`prelabel_llm.store`). A task that cannot be answered gets an empty prediction, and the
reason is logged once per call with the tasks it hit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr

from prelabel import (
    Backend,
    BackendLoadError,
    BackendSettings,
    BulkHints,
    Context,
    LabelCoverage,
    Prediction,
    PrelabelError,
    TaskPredictions,
    UnsupportedConfig,
)
from prelabel.errors import ConfigError
from prelabel.settings import ServerOnly
from prelabel_llm.budget import Budget, BudgetGate, worst_case
from prelabel_llm.calls import RetryPolicy, TaskFailed, send, vote
from prelabel_llm.prompt import SYSTEM, interactive_prompt, task_input
from prelabel_llm.providers import (
    ImagePart,
    Provider,
    ProviderError,
    Request,
    make_provider,
    missing_key,
)
from prelabel_llm.schema import FILLABLE, AnswerFormat, InvalidAnswer, Values
from prelabel_llm.store import Store

if TYPE_CHECKING:
    import httpx2

    from prelabel.config import LabelConfig
    from prelabel.testing import Scenario

__all__ = ["LlmBackend"]

log = logging.getLogger(__name__)

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-5"}


class LlmBackend(Backend):
    """Labels tasks with an OpenAI, Anthropic or OpenAI-compatible model, from the label config."""

    name: ClassVar[str] = "llm"
    controls: ClassVar[frozenset[str]] = FILLABLE
    interactive: ClassVar[bool] = True
    heavy_modules: ClassVar[tuple[str, ...]] = ("openai", "anthropic")
    #: I/O-bound: a batch fills the default pool of 16 calls once, and four batches in flight
    #: keep 64 calls waiting on the provider while finished batches are posted.
    bulk: ClassVar[BulkHints] = BulkHints(batch_size=16, concurrency=4)

    class Settings(BackendSettings):
        """Options (env ``PRELABEL_LLM_*`` or per project via LS's extra_params)."""

        provider: Literal["openai", "anthropic"] = Field(
            default="openai",
            description="API flavour; 'openai' with base_url for OpenAI-compatible servers.",
        )
        model: str | None = Field(default=None, description="Model name; default per provider.")
        api_key: SecretStr | None = Field(
            default=None, description="API key (else OPENAI_API_KEY / ANTHROPIC_API_KEY)."
        )
        # Server-only: a project pointing it elsewhere would receive the server's API key.
        base_url: Annotated[str | None, ServerOnly()] = Field(
            default=None, description="Server URL, e.g. http://vllm:8000/v1 (no key needed)."
        )
        temperature: float | None = Field(
            default=None, ge=0, le=2, description="Sampling temperature."
        )
        max_tokens: int = Field(default=1024, ge=16, description="Output token cap per answer.")
        samples: int = Field(
            default=1, ge=1, le=20, description="k answers per task; agreement is the score."
        )
        logprobs: bool = Field(
            default=True, description="With samples=1, ask for token log-probabilities (OpenAI)."
        )
        prompt_template: str | None = Field(
            default=None, description="Prompt with {data_key} and {labels} placeholders."
        )
        prompt_control: str = Field(
            default="prompt",
            description="TextArea the annotator types a prompt into (interactive).",
        )
        concurrency: int = Field(
            default=16, ge=1, le=256, description="Calls in flight per request."
        )
        deadline: float = Field(
            default=90.0, gt=0, description="Seconds for a whole /predict call (LS waits 100)."
        )
        request_timeout: float = Field(default=60.0, gt=0, description="Seconds per provider call.")
        max_retries: int = Field(default=3, ge=0, le=10, description="Retries of a failed call.")
        backoff: float = Field(
            default=0.5, ge=0, description="First retry wait without Retry-After."
        )
        cache: bool = Field(default=True, description="Answer identical requests from the cache.")
        budget_usd: float | None = Field(
            default=None, ge=0, description="Spending cap per project."
        )
        budget_tokens: int | None = Field(default=None, ge=0, description="Token cap per project.")
        price_input: float = Field(default=0.0, ge=0, description="USD per million input tokens.")
        price_output: float = Field(default=0.0, ge=0, description="USD per million output tokens.")
        state_dir: Path | None = Field(
            default=None,
            description="Cache, usage and prompts; default: the project's data directory "
            "(server-only, as every path).",
        )

    def __init__(
        self, settings: BackendSettings | None = None, *, http_client: httpx2.Client | None = None
    ) -> None:
        super().__init__(settings)
        self._http_client = http_client
        self._providers: dict[tuple[str, str, str | None, str | None], Provider] = {}
        self._stores: dict[Any, Store] = {}
        self._budget = BudgetGate()
        self._lock = threading.Lock()

    def load(self) -> None:
        try:
            import anthropic  # noqa: F401  (fail at start, not on the first request)
            import openai  # noqa: F401
        except ImportError as exc:
            raise BackendLoadError(
                f"the llm backend needs the openai and anthropic SDKs ({exc}); "
                "run: pip install prelabel-llm"
            ) from exc

    def check_config(self, config: LabelConfig) -> None:
        super().check_config(config)
        if not AnswerFormat.from_config(config, skip=[self._settings().prompt_control]).controls:
            raise UnsupportedConfig(
                "The llm backend fills Choices, Labels (on Text), TextArea, Rating, Number and "
                "Taxonomy controls attached to Text, HyperText, Paragraphs or Image objects whose "
                "value is a task field; this config has none it can fill (dynamic choices and "
                "perRegion controls are not filled)."
            )

    def label_coverage(self, config: LabelConfig) -> Sequence[LabelCoverage]:
        """The controls it fills get their labels listed in the prompt: any can be answered."""
        fmt = AnswerFormat.from_config(config, skip=[self._settings().prompt_control])
        return [LabelCoverage.of(c, "prompt") for c in fmt.controls]

    def check_settings(self, settings: BackendSettings) -> None:
        """Refuse settings that reach no model: a hosted provider without an API key."""
        assert isinstance(settings, LlmBackend.Settings)  # the server builds it from our class
        key = settings.api_key.get_secret_value() if settings.api_key else None
        problem = missing_key(settings.provider, api_key=key, base_url=settings.base_url)
        if problem is not None:
            raise ConfigError(f"The llm backend cannot predict: {problem}.")

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        from prelabel.testing import Scenario, text_task

        config = (
            '<View><Text name="text" value="$text"/>'
            '<Choices name="sentiment" toName="text"><Choice value="Positive"/>'
            '<Choice value="Negative"/></Choices>'
            '<Labels name="ner" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>'
            '<TextArea name="prompt" toName="text"/></View>'
        )
        prompt = {
            "from_name": "prompt",
            "to_name": "text",
            "type": "textarea",
            "value": {"text": ["Is the text positive or negative? Mark people and places."]},
        }
        tasks = [text_task(1, "Ada loves Paris."), text_task(2, "Bob hates the rain in Oslo.")]
        return [Scenario(config, tasks, interaction=[prompt])]

    def _settings(self, ctx: Context | None = None) -> LlmBackend.Settings:
        settings = self.settings if ctx is None else ctx.settings
        assert isinstance(settings, LlmBackend.Settings)  # the server builds it from our class
        return settings

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        if not tasks:
            return []
        settings = self._settings(ctx)
        self.check_config(ctx.label_config)
        fmt = AnswerFormat.from_config(ctx.label_config, skip=[settings.prompt_control])
        store = self._store(settings, ctx)
        project = str(ctx.project)
        typed = interactive_prompt(ctx.interaction, settings.prompt_control)
        if typed is not None:
            store.set_prompt(project, typed)
        template = typed or store.prompt(project) or settings.prompt_template
        try:
            provider = self._provider(settings)
        except ProviderError as exc:
            log.error("llm: %d task(s) got no prediction: %s", len(tasks), exc)
            return [Prediction.empty() for _ in tasks]
        policy = RetryPolicy(
            deadline=time.monotonic() + settings.deadline,
            max_retries=settings.max_retries,
            request_timeout=settings.request_timeout,
            backoff=settings.backoff,
        )

        def one(task: Mapping[str, Any]) -> Prediction:
            return self._label(task, ctx, fmt, template, provider, store, policy)

        pool = ThreadPoolExecutor(min(settings.concurrency, len(tasks)), thread_name_prefix="llm")
        try:
            futures = [pool.submit(one, task) for task in tasks]
            wait(futures, timeout=max(0.0, policy.remaining()))
        finally:
            # Calls still running end by their own timeout (capped by the deadline).
            pool.shutdown(wait=False, cancel_futures=True)
        return self._collect(tasks, futures, settings)

    def _collect(
        self,
        tasks: Sequence[Mapping[str, Any]],
        futures: Sequence[Future[Prediction]],
        settings: LlmBackend.Settings,
    ) -> list[Prediction]:
        out: list[Prediction] = []
        failures: defaultdict[str, list[Any]] = defaultdict(list)
        for task, future in zip(tasks, futures, strict=True):
            if future.cancelled() or not future.done():
                reason = f"no answer within the {settings.deadline:g} s deadline"
            elif (exc := future.exception()) is None:
                out.append(future.result())
                continue
            elif isinstance(exc, TaskFailed | ProviderError | PrelabelError):
                reason = str(exc)
            else:
                log.error("llm: task %s failed", task.get("id"), exc_info=exc)
                reason = f"{type(exc).__name__}: {exc}"
            failures[_redact(reason, settings)].append(task.get("id"))
            out.append(Prediction.empty())
        for reason, ids in failures.items():
            shown = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
            log.warning("llm: %d task(s) got no prediction (%s): %s", len(ids), shown, reason)
        return out

    def _label(
        self,
        task: Mapping[str, Any],
        ctx: Context,
        fmt: AnswerFormat,
        template: str | None,
        provider: Provider,
        store: Store,
        policy: RetryPolicy,
    ) -> Prediction:
        settings = self._settings(ctx)
        fmt = fmt.for_task(task.get("data") or {})
        given = task_input(task, ctx.label_config, fmt, ctx.media, template)
        request = Request(
            system=SYSTEM,
            parts=given.parts,
            schema=fmt.schema(),
            samples=settings.samples,
            logprobs=settings.logprobs and settings.samples == 1 and settings.provider == "openai",
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
        )
        key = _cache_key(settings, request)
        cached = store.cache_get(key) if settings.cache else None
        if cached is not None:
            answers: list[str | None] = cached["answers"]
            logprobs: list[float | None] = cached["logprobs"]
        else:
            answers, logprobs = self._ask(request, fmt, given.texts, ctx, provider, store, policy)
            if settings.cache:
                store.cache_put(key, {"answers": answers, "logprobs": logprobs})
        samples = [None if a is None else _parse(fmt, a, given.texts)[0] for a in answers]
        values, scores = vote(samples, logprobs)
        regions = fmt.regions(values, given.texts, scores)
        known = [s for s in scores.values() if s is not None]
        return Prediction(regions, score=sum(known) / len(known) if known else None)

    def _ask(
        self,
        request: Request,
        fmt: AnswerFormat,
        texts: Mapping[str, str],
        ctx: Context,
        provider: Provider,
        store: Store,
        policy: RetryPolicy,
    ) -> tuple[list[str | None], list[float | None]]:
        """The valid answers (``None`` for invalid samples) and their log-probabilities.

        With no valid sample the model is asked once more, told why its answer was rejected;
        a second failure (or a refusal) fails the task: answers are never guessed.
        """
        settings = self._settings(ctx)
        project = str(ctx.project)
        budget = Budget(settings.budget_tokens, settings.budget_usd)
        for attempt in range(2):
            most_in, most_out = worst_case(request)
            first_call = (most_in + most_out, _cost(settings, most_in, most_out))
            with self._budget.admit(
                project, budget, lambda: store.usage(project), first_call, policy.deadline
            ):
                completion = send(provider, request, policy)
                cost = _cost(settings, completion.input_tokens, completion.output_tokens)
                store.add_usage(project, completion.input_tokens, completion.output_tokens, cost)
            problems = [
                "no answer" if a is None else _parse(fmt, a, texts)[1] for a in completion.answers
            ]
            valid = [
                a if p is None else None for a, p in zip(completion.answers, problems, strict=True)
            ]
            if any(a is not None for a in valid):
                return valid, completion.logprobs
            if completion.refusal is not None:
                raise TaskFailed(f"the model refused: {completion.refusal}")
            problem = next((p for p in problems if p), "no answer")
            if attempt == 0:
                bad = next((a for a in completion.answers if a), "")
                request = replace(request, feedback=(bad, problem))
        raise TaskFailed(f"the answer was rejected twice; the second time: {problem}")

    def _provider(self, settings: LlmBackend.Settings) -> Provider:
        """One provider (and SDK client, with its connection pool) per endpoint and key."""
        key = settings.api_key.get_secret_value() if settings.api_key else None
        model = settings.model or DEFAULT_MODELS[settings.provider]
        ident = (settings.provider, model, settings.base_url, key)
        with self._lock:
            found = self._providers.get(ident)
            if found is None:
                found = make_provider(
                    settings.provider,
                    model=model,
                    api_key=key,
                    base_url=settings.base_url,
                    http_client=self._http_client,
                )
                self._providers[ident] = found
            return found

    def _store(self, settings: LlmBackend.Settings, ctx: Context) -> Store:
        # Replicas on several machines share one budget and prompt per project.
        shared = ctx.shared_database if settings.state_dir is None else None
        where = (
            shared if shared is not None else (settings.state_dir or ctx.data_dir) / "llm.sqlite"
        )
        with self._lock:
            found = self._stores.get(where)
            if found is None:
                found = self._stores[where] = Store(where)
            return found


def _parse(
    fmt: AnswerFormat, answer: str, texts: Mapping[str, str]
) -> tuple[Values | None, str | None]:
    try:
        return fmt.parse(answer, texts), None
    except InvalidAnswer as exc:
        return None, str(exc)


def _cost(settings: LlmBackend.Settings, input_tokens: int, output_tokens: int) -> float:
    """USD for a call's tokens at the configured prices."""
    return (input_tokens * settings.price_input + output_tokens * settings.price_output) / 1e6


def _cache_key(settings: LlmBackend.Settings, request: Request) -> str:
    """(provider, endpoint, model, prompt and task data incl. images, schema, sampling)."""
    parts = [
        {"image": hashlib.sha256(p.base64.encode()).hexdigest()} if isinstance(p, ImagePart) else p
        for p in request.parts
    ]
    ident = {
        "provider": settings.provider,
        "base_url": settings.base_url,
        "model": settings.model or DEFAULT_MODELS[settings.provider],
        **asdict(replace(request, parts=())),
        "parts": parts,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _redact(message: str, settings: LlmBackend.Settings) -> str:
    """``message`` without API keys (provider error texts may quote them)."""
    keys = [os.environ.get("OPENAI_API_KEY"), os.environ.get("ANTHROPIC_API_KEY")]
    if settings.api_key is not None:
        keys.append(settings.api_key.get_secret_value())
    for key in filter(None, keys):
        message = message.replace(key, "***")
    return message
