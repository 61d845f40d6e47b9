"""Routes LS webhook events to the store and the job queue (protocol §7).

Everything here must return in milliseconds: LS sends event webhooks with a 1 s timeout,
synchronously inside the annotator's save request when LS runs without Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prelabel.errors import BadRequest
from prelabel.project import ProjectKey, is_id

if TYPE_CHECKING:
    from prelabel._engine.runtime import Runtime

__all__ = ["handle_event"]

log = logging.getLogger(__name__)

ANNOTATION_EVENTS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"})

#: The actions LS 1.23.2 sends a project webhook (protocol §7.2), plus START_TRAINING. Metrics
#: count these by name and everything else as "other", so callers cannot mint label values.
KNOWN_ACTIONS = ANNOTATION_EVENTS | {
    "ANNOTATIONS_DELETED",
    "TASKS_CREATED",
    "TASKS_DELETED",
    "PROJECT_UPDATED",
    "LABEL_LINK_CREATED",
    "LABEL_LINK_UPDATED",
    "LABEL_LINK_DELETED",
    "START_TRAINING",
}


def _as_list(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _ids(items: Any, what: str) -> list[int]:
    """The ``id`` of each object in ``items``; 400 naming the first that is not an id."""
    out = []
    for item in _as_list(items):
        ident = item.get("id")
        if not is_id(ident):
            raise BadRequest(f"webhook {what} 'id' must be an integer id, got {ident!r:.80}")
        out.append(ident)
    return out


def handle_event(runtime: Runtime, body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Apply one webhook body; returns the JSON response and status code."""
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequest("webhook body needs a string 'action' (e.g. 'ANNOTATION_CREATED')")
    runtime.telemetry.webhooks.labels(action if action in KNOWN_ACTIONS else "other").inc()
    project = body.get("project")
    if not isinstance(project, Mapping):
        log.info("Webhook %r without a project object; ignored.", action[:80])
        return {"status": "ignored", "reason": "no project in body"}, 200
    key = ProjectKey.from_webhook(project)
    config = project.get("label_config")
    if isinstance(config, str) and config.strip():
        runtime.store.set_label_config(key, config)

    # The training policy sees the events that may train under PRELABEL_TRAIN_TRIGGER
    # (compat's records them for the model's fit).
    may_train = action == "START_TRAINING" or runtime.settings.train_trigger == "annotation"
    wants_training = may_train and runtime.policy.wants_training(key, body)
    if action == "START_TRAINING":
        return _start_training(runtime, key)
    changes = 0
    if action in ANNOTATION_EVENTS:
        task_list = _as_list(body.get("task"))
        tasks = dict(zip(_ids(task_list, "task"), task_list, strict=True))
        pairs = []
        for annotation in _as_list(body.get("annotation")):
            task_id = annotation.get("task")
            pairs.append((tasks.get(task_id) if is_id(task_id) else None, annotation))
        # One transaction: a malformed item stores none of the event (400 names it).
        runtime.store.upsert_annotations(
            key, [(task or {"id": a.get("task")}, a) for task, a in pairs]
        )
        for task, annotation in pairs:
            runtime.record_acceptance(key, task or {"id": annotation.get("task")}, annotation)
        changes += len(pairs)
    elif action == "ANNOTATIONS_DELETED":
        ids = _ids(body.get("annotations"), "annotations")
        changes += runtime.store.delete_annotations(key, ids)
    elif action == "TASKS_DELETED":
        changes += runtime.store.delete_tasks(key, _ids(body.get("tasks"), "tasks"))
    elif action == "TASKS_CREATED":
        runtime.prefetch(key, _as_list(body.get("tasks")))
    elif action != "PROJECT_UPDATED":
        return {"status": "ignored", "action": action}, 200
    response: dict[str, Any] = {"status": "ok"}
    train = runtime.policy.trains and runtime.settings.train_trigger == "annotation"
    if train and (wants_training or runtime.policy.due(key, changes)):
        response["job"] = runtime.queue.enqueue(key, "train", reason=action).id
        runtime.wake_jobs()
    elif action == "TASKS_CREATED" and runtime.settings.predict_new_tasks:
        response["job"] = runtime.queue.enqueue(key, "predict", reason=action).id
        runtime.wake_jobs()
    return response, 200


def _start_training(runtime: Runtime, key: ProjectKey) -> tuple[dict[str, Any], int]:
    if not runtime.policy.trains:
        return {"status": "ok", "detail": f"the {runtime.backend.name} backend does not train"}, 200
    job = runtime.queue.enqueue(
        key, "train", reason="START_TRAINING", payload=runtime.policy.start_training_payload()
    )
    runtime.wake_jobs()
    return {"status": "ok", "job": job.id}, 201
