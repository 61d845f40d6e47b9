"""Which annotation a task is judged by, and deterministic splits of tasks.

One rule for every place that reads annotations — ``fit``, ``evaluate``, the promotion gate,
acceptance and agreement metrics: a task is judged by its **latest non-cancelled** annotation
(by ``updated_at``, else ``created_at``, then by id). Annotators correct each other; the newest
submission is the one the project stands behind.

Splits (held-out tasks, the control group, a backend's own validation share) hash a namespace
and a key with :func:`hash_bucket`, so a task lands on the same side in every process, run and
worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["hash_bucket", "judged_annotation", "judged_result", "result_labels", "unannotated"]


def _order(annotation: Mapping[str, Any]) -> tuple[str, int]:
    stamp = annotation.get("updated_at") or annotation.get("created_at") or ""
    ident = annotation.get("id")
    return str(stamp), ident if isinstance(ident, int) and not isinstance(ident, bool) else -1


def judged_annotation(task: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The task's latest non-cancelled annotation; ``None`` when it has none."""
    annotations = task.get("annotations")
    if not isinstance(annotations, list):
        return None
    candidates = [a for a in annotations if isinstance(a, Mapping) and not a.get("was_cancelled")]
    return max(candidates, key=_order) if candidates else None


def judged_result(task: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``result`` list of :func:`judged_annotation` (``[]`` without one)."""
    annotation = judged_annotation(task)
    result = annotation.get("result") if annotation is not None else None
    return (
        [item for item in result if isinstance(item, Mapping)] if isinstance(result, list) else []
    )


def result_labels(result: Sequence[Mapping[str, Any]]) -> list[str]:
    """The labels a ``result`` list names (choices, region labels, taxonomy paths), sorted.

    A taxonomy path is joined with ``/``; values that name no label (text, ratings, numbers)
    are left out.
    """
    found: set[str] = set()
    for item in result:
        value, kind = item.get("value"), item.get("type")
        labels = value.get(kind) if isinstance(value, Mapping) and isinstance(kind, str) else None
        for label in labels if isinstance(labels, list) else []:
            if isinstance(label, list):
                found.add("/".join(str(part) for part in label))
            elif isinstance(label, str):
                found.add(label)
    return sorted(found)


def unannotated(tasks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``tasks`` without annotations and predictions, as ``/predict`` gets them."""
    return [{k: v for k, v in t.items() if k not in ("annotations", "predictions")} for t in tasks]


def hash_bucket(namespace: str, key: object) -> float:
    """A number in [0, 1) fixed by ``namespace`` and ``key`` (e.g. ``"holdout"``, a task id).

    ``hash_bucket(ns, key) < fraction`` selects a stable ``fraction`` of keys; different
    namespaces select independently of each other.
    """
    digest = hashlib.sha256(f"{namespace}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
