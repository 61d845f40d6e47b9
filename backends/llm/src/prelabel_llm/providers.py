"""Providers behind one small interface: OpenAI (and compatible servers) and Anthropic.

* OpenAI chat completions with ``response_format`` ``json_schema`` (strict), ``n`` samples in one
  call and token ``logprobs``; with ``base_url`` the same client talks to vLLM, Ollama,
  llama.cpp or any OpenAI-compatible server.
* Anthropic messages with one tool whose ``input_schema`` is the answer schema, forced with
  ``tool_choice``; one call per sample (the API has no ``n``).

The SDKs are imported only when a client is built. SDK retries are off: :mod:`prelabel_llm.calls`
retries within the request's deadline. SDK errors become :class:`ProviderError`.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import anthropic
    import httpx2
    import openai

__all__ = [
    "Completion",
    "ImagePart",
    "Provider",
    "ProviderError",
    "Request",
    "make_provider",
]

TOOL_NAME = "record_labels"
_NO_KEY = "not-needed"  # OpenAI-compatible local servers take any key; the SDK wants one


@dataclass(frozen=True)
class ImagePart:
    """An image sent to a vision model."""

    media_type: str
    base64: str


@dataclass(frozen=True)
class Request:
    """One labelling request, provider-neutral.

    Attributes:
        system: instructions (how to answer).
        parts: the user message: text and images, in order.
        schema: the JSON schema the answer must follow.
        samples: how many answers to sample (self-consistency).
        logprobs: ask for token log-probabilities where the provider has them.
        max_tokens: output token cap per answer.
        temperature: sampling temperature; ``None`` for the provider's default.
        feedback: ``(previous answer, why it was rejected)`` when asking again.
    """

    system: str
    parts: tuple[str | ImagePart, ...]
    schema: Mapping[str, Any]
    samples: int = 1
    logprobs: bool = False
    max_tokens: int = 1024
    temperature: float | None = None
    feedback: tuple[str, str] | None = None


@dataclass
class Completion:
    """What came back.

    Attributes:
        answers: one raw JSON answer per sample; ``None`` where the sample has no answer.
        refusal: the model's refusal message, if it refused.
        logprobs: per sample, the summed token log-probability of the answer, if returned.
        input_tokens: prompt tokens billed.
        output_tokens: completion tokens billed.
    """

    answers: list[str | None] = field(default_factory=list)
    refusal: str | None = None
    logprobs: list[float | None] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


class ProviderError(Exception):
    """A call failed.

    Attributes:
        retryable: rate limits, server errors, timeouts and connection errors.
        retry_after: seconds the provider asked us to wait (``Retry-After``), if any.
        status: the HTTP status, if there was a response.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class Provider(Protocol):
    """Sends a :class:`Request` and returns a :class:`Completion`."""

    def complete(self, request: Request, *, timeout: float) -> Completion:
        """Call the model once (``timeout``: seconds for the whole call); raise ProviderError."""
        ...


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass  # malformed: fall through to Retry-After
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw.strip() else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def _translate(exc: Exception, sdk: Any) -> ProviderError:
    """An SDK exception as a :class:`ProviderError` (same classes in both SDKs)."""
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError("the provider did not answer in time", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(f"cannot reach the provider ({exc})", retryable=True)
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        retryable = status in (408, 409, 429) or status >= 500
        headers = {k.lower(): v for k, v in exc.response.headers.items()}
        return ProviderError(
            f"the provider answered HTTP {status}: {exc.message}",
            retryable=retryable,
            retry_after=retry_after(headers) if retryable else None,
            status=status,
        )
    raise exc


class OpenAIProvider:
    """Chat completions with strict JSON-schema output."""

    def __init__(self, client: openai.OpenAI, model: str) -> None:
        self.client = client
        self.model = model

    def complete(self, request: Request, *, timeout: float) -> Completion:
        import openai

        content: list[dict[str, Any]] = []
        for part in request.parts:
            if isinstance(part, ImagePart):
                url = f"data:{part.media_type};base64,{part.base64}"
                content.append({"type": "image_url", "image_url": {"url": url}})
            else:
                content.append({"type": "text", "text": part})
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": request.system},
            {"role": "user", "content": content},
        ]
        if request.feedback is not None:
            answer, problem = request.feedback
            messages += [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": f"That answer was rejected: {problem}. Answer again."},
            ]
        options: dict[str, Any] = {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "labels", "strict": True, "schema": request.schema},
            },
            "max_completion_tokens": request.max_tokens,
        }
        if request.samples > 1:
            options["n"] = request.samples
        if request.logprobs:
            options["logprobs"] = True
        if request.temperature is not None:
            options["temperature"] = request.temperature
        try:
            options.update(model=self.model, messages=messages, timeout=timeout)
            response = self.client.chat.completions.create(**options)
        except openai.OpenAIError as exc:
            raise _translate(exc, openai) from None
        out = Completion()
        for choice in response.choices:
            message = choice.message
            if message.refusal:
                out.refusal = message.refusal
            out.answers.append(None if message.refusal else message.content)
            tokens = choice.logprobs.content if choice.logprobs else None
            out.logprobs.append(sum(t.logprob for t in tokens) if tokens else None)
        if response.usage is not None:
            out.input_tokens = response.usage.prompt_tokens
            out.output_tokens = response.usage.completion_tokens
        return out


class AnthropicProvider:
    """Messages with a forced tool call whose input is the answer."""

    def __init__(self, client: anthropic.Anthropic, model: str) -> None:
        self.client = client
        self.model = model

    def complete(self, request: Request, *, timeout: float) -> Completion:
        out = Completion()
        deadline = time.monotonic() + timeout
        for _ in range(request.samples):
            self._one(request, max(0.1, deadline - time.monotonic()), out)
        return out

    def _one(self, request: Request, timeout: float, out: Completion) -> None:
        import anthropic

        content: list[dict[str, Any]] = []
        for part in request.parts:
            if isinstance(part, ImagePart):
                source = {"type": "base64", "media_type": part.media_type, "data": part.base64}
                content.append({"type": "image", "source": source})
            else:
                content.append({"type": "text", "text": part})
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        if request.feedback is not None:
            answer, problem = request.feedback
            messages += [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": f"That answer was rejected: {problem}. Answer again."},
            ]
        tool = {
            "name": TOOL_NAME,
            "description": "Record the labels for the task.",
            "input_schema": dict(request.schema),
        }
        options: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "system": request.system,
            "messages": messages,
            "tools": [tool],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
            "timeout": timeout,
        }
        if request.temperature is not None:
            # This SDK version has no temperature argument; the API still takes the field.
            options["extra_body"] = {"temperature": request.temperature}
        try:
            response = self.client.messages.create(**options)
        except anthropic.AnthropicError as exc:
            raise _translate(exc, anthropic) from None
        out.input_tokens += response.usage.input_tokens
        out.output_tokens += response.usage.output_tokens
        out.logprobs.append(None)  # the Messages API returns no log-probabilities
        if response.stop_reason == "refusal":
            texts = [b.text for b in response.content if b.type == "text"]
            out.refusal = " ".join(texts) or "refused"
            out.answers.append(None)
            return
        calls = [b for b in response.content if b.type == "tool_use" and b.name == TOOL_NAME]
        if calls:
            out.answers.append(json.dumps(calls[0].input))
        else:
            # Text instead of the tool call: kept so that the parser rejects it with a reason.
            out.answers.append(" ".join(b.text for b in response.content if b.type == "text"))


#: The SDK's own environment variable for the key, read when no api_key is set.
_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def make_provider(
    provider: str,
    *,
    model: str,
    api_key: str | None,
    base_url: str | None,
    http_client: httpx2.Client | None = None,
) -> Provider:
    """Build a provider with its SDK client (the SDK is imported here, not at module import).

    Raises:
        ProviderError: no API key for a hosted provider (not retryable).
    """
    problem = missing_key(provider, api_key=api_key, base_url=base_url)
    if problem is not None:
        raise ProviderError(problem, retryable=False)
    key = api_key or os.environ.get(_KEY_ENV[provider])
    if provider == "anthropic":
        import anthropic

        return AnthropicProvider(
            anthropic.Anthropic(
                api_key=key or _NO_KEY, base_url=base_url, max_retries=0, http_client=http_client
            ),
            model,
        )
    import openai

    return OpenAIProvider(
        openai.OpenAI(
            api_key=key or _NO_KEY,
            base_url=base_url,
            max_retries=0,
            http_client=http_client,
        ),
        model,
    )


def missing_key(provider: str, *, api_key: str | None, base_url: str | None) -> str | None:
    """Why ``provider`` cannot be called without a key, or ``None`` if it can.

    A hosted provider needs a key (``api_key`` or the SDK's variable); a server at
    ``base_url`` (vLLM, Ollama…) may not.
    """
    env = _KEY_ENV[provider]
    if api_key or os.environ.get(env) or base_url:
        return None
    return (
        f"no API key for {provider}: set PRELABEL_LLM_API_KEY (or {env}) in the backend's "
        "environment; OpenAI-compatible local servers need only PRELABEL_LLM_BASE_URL"
    )
