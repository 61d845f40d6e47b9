"""Project identity as Label Studio sends it: ``"<id>.<created-at epoch seconds>"``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from prelabel.errors import BadRequest

__all__ = ["MAX_ID", "ProjectKey", "is_id"]

#: The largest id SQLite stores as an integer (and far beyond any LS id).
MAX_ID = 2**63 - 1


def is_id(value: Any) -> TypeGuard[int]:
    """Whether ``value`` is an id as LS sends them: an int in ``[0, 2**63)``, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def _digits(text: str) -> bool:
    # str.isdigit() accepts "²" and other digits int() refuses; 19 digits fit in MAX_ID.
    return text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_ID


@dataclass(frozen=True, order=True)
class ProjectKey:
    """A project id plus its creation time, the *generation*.

    An LS database reset reuses small project ids; the creation timestamp tells the two
    projects apart, so per-project state is keyed by both (protocol §4.1).
    """

    id: str
    generation: int | None = None

    def __str__(self) -> str:
        return self.id if self.generation is None else f"{self.id}.{self.generation}"

    @property
    def slug(self) -> str:
        """A file-system-safe name for this project's directories."""
        return str(self).replace(".", "_")

    @classmethod
    def parse(cls, value: Any) -> ProjectKey:
        """Parse ``/setup``'s and ``/predict``'s ``project`` field; absent means project ``"0"``."""
        if value is None or value == "":
            return cls("0")
        if is_id(value):
            return cls(str(value))
        if not isinstance(value, str):
            raise BadRequest(f"'project' must be a string like '12.1795807427', got {value!r:.80}")
        ident, _, gen = value.partition(".")
        if not _digits(ident) and ident != "None":
            raise BadRequest(f"'project' must look like '<id>.<timestamp>', got {value!r:.80}")
        if gen and not _digits(gen):
            raise BadRequest(f"'project' generation must be an integer, got {value!r:.80}")
        return cls(ident, int(gen) if gen else None)

    @classmethod
    def from_webhook(cls, project: Any) -> ProjectKey:
        """Build the key from a webhook's full ``project`` object (``id`` and ``created_at``)."""
        if not isinstance(project, dict) or "id" not in project:
            raise BadRequest("webhook body needs a 'project' object with an 'id'")
        ident = project["id"]
        if isinstance(ident, str) and _digits(ident):
            ident = int(ident)
        if not is_id(ident):
            # The id names directories on disk: only digits, never a path.
            raise BadRequest(f"webhook project.id must be an integer id, got {ident!r:.80}")
        generation = None
        created = project.get("created_at")
        if isinstance(created, str):
            try:
                generation = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
            except (ValueError, OverflowError, OSError):
                raise BadRequest(
                    f"webhook project.created_at is not ISO-8601: {created!r:.80}"
                ) from None
            if not 0 <= generation <= MAX_ID:
                raise BadRequest(f"webhook project.created_at is out of range: {created!r:.80}")
        return cls(str(ident), generation)
