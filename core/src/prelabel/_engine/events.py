"""Routes LS webhook events to the store and the job queue (protocol §7).

Everything here must return in milliseconds: LS sends event webhooks with a 1 s timeout,
synchronously inside the annotator's save request when LS runs without Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prelabel.errors import BadRequest
from prelabel.project import ProjectKey

if TYPE_CHECKING:
    from prelabel._engine.runtime import Runtime

__all__ = ["handle_event"]

log = logging.getLogger(__name__)

ANNOTATION_EVENTS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"})


def _as_list(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _ids(items: Any) -> list[int]:
    return [int(i["id"]) for i in _as_list(items) if isinstance(i.get("id"), int)]


def handle_event(runtime: Runtime, body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Apply one webhook body; returns the JSON response and status code."""
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequest("webhook body needs a string 'action' (e.g. 'ANNOTATION_CREATED')")
    runtime.telemetry.webhooks.labels(action).inc()
    project = body.get("project")
    if not isinstance(project, Mapping):
        log.info("Webhook %s without a project object; ignored.", action)
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
        tasks = {t["id"]: t for t in _as_list(body.get("task")) if "id" in t}
        for annotation in _as_list(body.get("annotation")):
            task = tasks.get(annotation.get("task")) or {"id": annotation.get("task")}
            runtime.store.upsert_annotation(key, task=task, annotation=annotation)
            runtime.record_acceptance(key, task, annotation)
            changes += 1
    elif action == "ANNOTATIONS_DELETED":
        changes += runtime.store.delete_annotations(key, _ids(body.get("annotations")))
    elif action == "TASKS_DELETED":
        changes += runtime.store.delete_tasks(key, _ids(body.get("tasks")))
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
