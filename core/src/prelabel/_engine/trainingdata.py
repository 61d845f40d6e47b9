"""Keep malformed annotations and tasks out of training, counted and logged.

Webhooks and exports store whatever Label Studio (or anyone reaching ``/webhook``) sent. One
annotation whose ``result`` is a string, or a task whose image URL cannot be parsed, used to
make every later training of its project fail in ``fit``. Training now skips them and says
why; the rest trains.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from prelabel.config import LabelConfig
from prelabel.project import ProjectKey

__all__ = ["usable_tasks"]

log = logging.getLogger(__name__)

_REGION_KEYS = ("from_name", "to_name", "type")


def annotation_problem(annotation: Any) -> str | None:
    """Why an annotation cannot be trained on, or ``None``."""
    if not isinstance(annotation, Mapping):
        return "annotation is not an object"
    result = annotation.get("result")
    if not isinstance(result, list):
        return "annotation result is not a list"
    for item in result:
        if not isinstance(item, Mapping):
            return "a result item is not an object"
        if not all(isinstance(item.get(key), str) for key in _REGION_KEYS):
            return "a result item lacks a string from_name, to_name or type"
        if "value" in item and not isinstance(item["value"], Mapping):
            return "a result item's value is not an object"
    return None


def task_problem(task: Mapping[str, Any], config: LabelConfig) -> str | None:
    """Why a task's data cannot be trained on, or ``None``."""
    data = task.get("data")
    if not isinstance(data, Mapping):
        return "task data is not an object"
    for key in config.data_keys():
        value = data.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            try:
                url = httpx.URL(value)
            except httpx.InvalidURL:
                return f"task data {key!r} is not a parsable URL"
            if not url.host:
                return f"task data {key!r} is a URL without a host"
    return None


def usable_tasks(
    key: ProjectKey, tasks: Sequence[dict[str, Any]], config: LabelConfig
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Tasks to train on, without malformed annotations; and how many were skipped, by reason.

    A malformed annotation is dropped (the task is judged by its other annotations); a task
    with unusable data, or with no well-formed annotation left, is dropped.
    """
    kept: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for task in tasks:
        problem = task_problem(task, config)
        if problem is not None:
            skipped[problem] += 1
            continue
        annotations = []
        for annotation in task.get("annotations") or ():
            problem = annotation_problem(annotation)
            if problem is None:
                annotations.append(annotation)
            else:
                skipped[problem] += 1
        if annotations:
            kept.append({**task, "annotations": annotations})
    if skipped:
        log.warning(
            "Project %s: training skips %s.",
            key,
            "; ".join(f"{n}: {why}" for why, n in skipped.most_common()),
        )
    return kept, dict(skipped)
