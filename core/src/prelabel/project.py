"""Project identity as Label Studio sends it: ``"<id>.<created-at epoch seconds>"``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prelabel.errors import BadRequest

__all__ = ["ProjectKey"]


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
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(str(value))
        if not isinstance(value, str):
            raise BadRequest(f"'project' must be a string like '12.1795807427', got {value!r}")
        ident, _, gen = value.partition(".")
        if not ident.isdigit() and ident != "None":
            raise BadRequest(f"'project' must look like '<id>.<timestamp>', got {value!r}")
        if gen and not gen.isdigit():
            raise BadRequest(f"'project' generation must be an integer, got {value!r}")
        return cls(ident, int(gen) if gen else None)

    @classmethod
    def from_webhook(cls, project: Any) -> ProjectKey:
        """Build the key from a webhook's full ``project`` object (``id`` and ``created_at``)."""
        if not isinstance(project, dict) or "id" not in project:
            raise BadRequest("webhook body needs a 'project' object with an 'id'")
        generation = None
        created = project.get("created_at")
        if isinstance(created, str):
            try:
                generation = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
            except ValueError:
                raise BadRequest(
                    f"webhook project.created_at is not ISO-8601: {created!r}"
                ) from None
        return cls(str(project["id"]), generation)
