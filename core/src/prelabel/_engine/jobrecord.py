"""A job of the queue as stored (:class:`Job`) and the JSON of its merged requests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from prelabel.project import ProjectKey

__all__ = ["Job", "JobStatus", "add_reason", "job_from_row", "merge_payload"]

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class Job:
    """One unit of background work, as stored.

    Attributes:
        id: ``f"{kind}-{project.slug}-{seq:04d}"``, unique in the database.
        reason: the triggering events with counts, e.g. ``"ANNOTATION_CREATED x3, START_TRAINING"``.
        payload: options merged from every request (booleans OR-ed), e.g. ``{"pull": True}``.
        result: what the handler returned, e.g. ``{"version": "textcls-3", "promoted": True}``.
        progress: what the running job last reported (:meth:`JobQueue.report`), e.g. counts.
        error: ``"ExcType: message"`` of a failed job.
        coalesced: how many requests were merged into this job (1 if none).
        worker: the worker that runs or ran it.
        attempts: how many times a worker claimed it (more than 1 after a worker died).
        delivery: the RQ job that delivered it last (with ``PRELABEL_REDIS_URL``).
    """

    id: str
    project: ProjectKey
    kind: str
    status: JobStatus
    reason: str
    payload: Mapping[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    result: Mapping[str, Any] = field(default_factory=dict)
    progress: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    coalesced: int = 1
    worker: str | None = None
    attempts: int = 0
    delivery: str | None = None


def _render(reasons: list[list[Any]]) -> str:
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in reasons)


def add_reason(reasons: list[list[Any]], reason: str, n: int = 1) -> str:
    for entry in reasons:
        if entry[0] == reason:
            entry[1] += n
            break
    else:
        reasons.append([reason, n])
    return json.dumps(reasons)


def merge_payload(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    merged = dict(old)
    for key, value in new.items():
        prior = merged.get(key)
        # A flag any request asked for stays asked for (e.g. pull=True from START_TRAINING).
        both_bool = isinstance(prior, bool) and isinstance(value, bool)
        merged[key] = (prior or value) if both_bool else value
    return json.dumps(merged, default=str)


def job_from_row(row: Any) -> Job:
    return Job(
        id=row["id"],
        project=ProjectKey(row["project_id"], row["generation"]),
        kind=row["kind"],
        status=row["status"],
        reason=_render(json.loads(row["reasons"])),
        payload=json.loads(row["payload"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        result=json.loads(row["result"]),
        progress=json.loads(row["progress"]),
        error=row["error"],
        coalesced=row["coalesced"],
        worker=row["worker"],
        attempts=row["attempts"],
        delivery=row["delivery"],
    )
