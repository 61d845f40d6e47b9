"""Secrets out of messages and logs: URLs with credentials, tokens echoed back by servers."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

__all__ = ["mask_tokens", "safe_url"]

#: Query parameter names containing one of these are masked in messages and logs.
_SECRET_PARAMS = (
    "sig",
    "token",
    "key",
    "credential",
    "pass",  # password, passwd, pass
    "pwd",
    "secret",
    "auth",
    "session",
    "jwt",
)
#: Token-like words in texts LS sends back (its error details may echo what it was sent):
#: JWTs (personal access tokens and their access tokens) and 40-hex legacy tokens.
_TOKEN_LIKE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+|\b[0-9a-fA-F]{40}\b")


def mask_tokens(text: str) -> str:
    """``text`` with JWTs and 40-hex tokens replaced by ``***``."""
    return _TOKEN_LIKE.sub("***", text)


def safe_url(url: str | httpx.URL) -> str:
    """``url`` fit for messages and logs: no userinfo, signature-like query values masked.

    Presigned bucket URLs carry signatures and task URLs may carry ``user:pass@``.
    """
    text = str(url)
    if text.startswith("data:"):
        return text[:40] + ("…" if len(text) > 40 else "")
    parts = urlsplit(text)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [
            (k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v) for k, v in pairs
        ]
        query = urlencode(masked, safe="/=:*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
