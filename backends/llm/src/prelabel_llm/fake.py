"""A fake OpenAI + Anthropic server on 127.0.0.1, for tests, benchmarks and offline demos.

It serves ``POST /v1/chat/completions`` and ``POST /v1/messages`` over real HTTP, so the real
SDK clients talk to it. What it answers is scripted::

    with FakeProvider(answer=lambda call: {"sentiment": "Positive"}) as fake:
        settings = {"base_url": fake.openai_url, "api_key": "sk-test"}
        fake.script(Reply(status=429, headers={"Retry-After": "1"}))  # the next call only

``answer`` gets each :class:`Call` and returns the answer (a dict, sent as JSON, or a string,
sent as is — e.g. malformed JSON); queued :class:`Reply` objects take precedence, one per call.

Run by itself it answers every call with :func:`first_choices` until interrupted, e.g. for a
served backend with no provider (``scripts/test-images`` runs it inside the llm image)::

    python -m prelabel_llm.fake --port 8099   # PRELABEL_LLM_BASE_URL=http://127.0.0.1:8099/v1
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server

__all__ = ["Call", "FakeProvider", "Reply", "first_choices"]

Answer = Mapping[str, Any] | str


@dataclass(frozen=True)
class Call:
    """One request the fake received.

    Attributes:
        api: ``"openai"`` or ``"anthropic"``.
        body: the JSON body.
        headers: the request headers (lower-case names).
        text: the text parts of the first user message (the task), joined.
        images: how many images the request carried.
        schema: the answer's JSON schema (OpenAI ``response_format`` or the Anthropic tool's).
        at: ``time.monotonic()`` when it arrived.
    """

    api: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    text: str
    images: int
    schema: Mapping[str, Any]
    at: float


@dataclass
class Reply:
    """A scripted reply to one call.

    Attributes:
        answer: the answer, or a list of answers for OpenAI's ``n`` samples; ``None`` uses
            the fake's ``answer`` function.
        status: HTTP status; not 200 sends an error body in the provider's format.
        error: the error message sent with a non-200 status.
        headers: extra response headers (e.g. ``Retry-After``).
        delay: seconds to wait before answering.
        refusal: answer with a refusal carrying this message.
        logprobs: OpenAI token log-probabilities of the answer (one token per value).
    """

    answer: Answer | list[Answer] | None = None
    status: int = 200
    error: str = "fake error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    refusal: str | None = None
    logprobs: list[float] | None = None


def _user_content(body: Mapping[str, Any]) -> tuple[str, int]:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[0]["content"] if users else ""  # the task; later ones are feedback
    if isinstance(content, str):
        return content, 0
    texts = [p.get("text", "") for p in content if p.get("type") == "text"]
    images = sum(p.get("type") in ("image", "image_url") for p in content)
    return "\n".join(texts), images


class FakeProvider:
    """The fake server; use it as a context manager (or :meth:`start` / :meth:`stop`).

    Args:
        answer: what to answer a call with, unless a scripted :class:`Reply` is queued.
        latency: seconds every call waits before answering (a model's latency).
        port: the port on 127.0.0.1; 0 picks a free one.
    """

    def __init__(
        self,
        answer: Callable[[Call], Answer] | None = None,
        *,
        latency: float = 0.0,
        port: int = 0,
    ) -> None:
        self.answer = answer or (lambda call: {})
        self.latency = latency
        self.calls: list[Call] = []
        #: The most calls that were being answered at the same time.
        self.max_in_flight = 0
        self._in_flight = 0
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        app = Flask("prelabel-llm-fake")
        app.add_url_rule("/v1/chat/completions", "openai", self._openai, methods=["POST"])
        app.add_url_rule("/v1/messages", "anthropic", self._anthropic, methods=["POST"])
        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the Anthropic SDK's ``base_url``."""
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def openai_url(self) -> str:
        """The OpenAI SDK's ``base_url`` (``<url>/v1``)."""
        return f"{self.url}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next calls, in order."""
        with self._lock:
            self._queue.extend(replies)

    def _serve(self) -> None:
        # A short poll interval makes stop() quick (the default waits up to 0.5 s).
        self._server.serve_forever(poll_interval=0.05)

    def start(self) -> FakeProvider:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _next(self, api: str) -> tuple[Call, Reply]:
        body = request.get_json(force=True)
        text, images = _user_content(body)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if api == "openai":
            schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
        else:
            schema = body.get("tools", [{}])[0].get("input_schema", {})
        call = Call(api, body, headers, text, images, schema, time.monotonic())
        with self._lock:
            self.calls.append(call)
            reply = self._queue.popleft() if self._queue else Reply()
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(self.latency + reply.delay)
        finally:
            with self._lock:
                self._in_flight -= 1
        return call, reply

    def _answer(self, call: Call, reply: Reply, index: int = 0) -> str:
        answer = self.answer(call) if reply.answer is None else reply.answer
        if isinstance(answer, list):
            answer = answer[index]
        return answer if isinstance(answer, str) else json.dumps(answer)

    def _error(self, reply: Reply, body: dict[str, Any]) -> Response:
        return Response(
            json.dumps(body),
            status=reply.status,
            headers=reply.headers,
            mimetype="application/json",
        )

    def _openai(self) -> Response:
        call, reply = self._next("openai")
        if reply.status != 200:
            error = {"message": reply.error, "type": "fake", "code": None}
            return self._error(reply, {"error": error})
        choices = []
        for index in range(int(call.body.get("n") or 1)):
            content = None if reply.refusal else self._answer(call, reply, index)
            logprobs: dict[str, Any] | None = None
            if reply.logprobs is not None and call.body.get("logprobs"):
                tokens: list[dict[str, Any]] = [
                    {"token": f"t{i}", "logprob": lp, "bytes": None, "top_logprobs": []}
                    for i, lp in enumerate(reply.logprobs)
                ]
                logprobs = {"content": tokens, "refusal": None}
            message = {"role": "assistant", "content": content, "refusal": reply.refusal}
            choices.append(
                {"index": index, "message": message, "finish_reason": "stop", "logprobs": logprobs}
            )
        usage = {"prompt_tokens": 100, "completion_tokens": 10 * len(choices)}
        body = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.body.get("model", ""),
            "choices": choices,
            "usage": {**usage, "total_tokens": sum(usage.values())},
        }
        return Response(json.dumps(body), headers=reply.headers, mimetype="application/json")

    def _anthropic(self) -> Response:
        call, reply = self._next("anthropic")
        if reply.status != 200:
            error = {"type": "fake_error", "message": reply.error}
            return self._error(reply, {"type": "error", "error": error})
        stop = "tool_use"
        if reply.refusal is not None:
            content: list[dict[str, Any]] = [{"type": "text", "text": reply.refusal}]
            stop = "refusal"
        else:
            raw = self._answer(call, reply)
            try:
                content = [
                    {
                        "type": "tool_use",
                        "id": f"toolu_{next(self._ids)}",
                        "name": call.body["tools"][0]["name"],
                        "input": json.loads(raw),
                    }
                ]
            except json.JSONDecodeError:
                content, stop = [{"type": "text", "text": raw}], "end_turn"
        body = {
            "id": f"msg_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": call.body.get("model", ""),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 10},
        }
        return Response(json.dumps(body), headers=reply.headers, mimetype="application/json")


def _fitting(schema: Mapping[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _fitting(prop) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        items = schema.get("items", {})
        return [_fitting(items)] if "enum" in items else []
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    return "" if kind == "string" else None


def first_choices(call: Call) -> Answer:
    """An answer that fits the call's schema: the first of every enum (a choice, a rating's
    minimum), no spans and empty text."""
    answer: dict[str, Any] = _fitting({**call.schema, "type": "object"})
    return answer


def main(argv: list[str] | None = None) -> None:
    """``python -m prelabel_llm.fake [--port N]``: serve :func:`first_choices` until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m prelabel_llm.fake", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8099, help="port on 127.0.0.1 (default 8099)")
    args = parser.parse_args(argv)
    fake = FakeProvider(first_choices, port=args.port)
    print(
        f"fake OpenAI/Anthropic server: base_url {fake.openai_url} (anthropic: {fake.url})",
        flush=True,
    )
    try:
        fake._serve()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()


if __name__ == "__main__":
    main()
