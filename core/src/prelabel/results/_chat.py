"""The builder for messages added to a ``<Chat>`` conversation."""

from __future__ import annotations

from typing import Any

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import make_region
from prelabel.results._prediction import Region

__all__ = ["chat_message"]


def chat_message(
    control: Control,
    *,
    role: str,
    content: str,
    created_at: int | None = None,
    score: float | None = None,
    region_id: str | None = None,
) -> Region:
    """A message added to a conversation, for a ``Chat`` (its own object and control).

    LS keeps each message an annotator adds as a region of the chat, so per-region controls
    (``perRegion`` Choices, Rating, TextArea on the chat) can be attached to it.

    Args:
        control: a ``Chat`` control (``config.control("chat")``).
        role: who speaks: ``"user"``, ``"assistant"``, ``"system"``…
        content: the message text, not empty.
        created_at: when it was written, milliseconds since the epoch.
        score: confidence in [0, 1].
        region_id: the region id, by default a fresh one.

    Returns:
        A ``chatmessage`` region with ``from_name == to_name`` and value
        ``{"chatmessage": {role, content[, createdAt]}}``.
    """
    _checks.require_tag(control, "chat_message", "Chat")
    if not isinstance(role, str) or not role.strip():
        raise ValueError(f"role must be a non-empty string, got {role!r}")
    if not isinstance(content, str) or not content.strip():
        raise ValueError(f"content must be a non-empty string, got {content!r}")
    message: dict[str, Any] = {"role": role, "content": content}
    if created_at is not None:
        message["createdAt"] = _checks.integer(created_at, "created_at")
    return make_region(
        control, {"chatmessage": message}, score=score, to_name=control.name, region_id=region_id
    )
