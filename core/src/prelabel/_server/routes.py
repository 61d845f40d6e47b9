"""The HTTP endpoints Label Studio calls (protocol §3), plus jobs, versions and metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from prelabel._doctor import SetupVerdicts
from prelabel._engine.diskcheck import is_store_failure
from prelabel._engine.events import handle_event
from prelabel._engine.projectsetup import check_hostname
from prelabel._engine.runtime import Runtime
from prelabel._server.auth import check_authorization
from prelabel._server.errors import NESTED_TOO_DEEP
from prelabel.config import LabelConfig
from prelabel.errors import BadRequest, InvalidExtraParams, Unauthorized
from prelabel.metrics.bias import gaps_by_version
from prelabel.project import ProjectKey, is_id

__all__ = ["bp"]

bp = Blueprint("prelabel", __name__)


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["prelabel"]
    return runtime


# A \uD800-\uDFFF escape: JSON allows it, but alone it is no character and cannot be stored.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _body() -> dict[str, Any]:
    """The request's JSON object; 400 saying what is wrong with anything else."""
    data = request.get_data(cache=True)
    try:
        body = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The request body is not UTF-8 (byte {exc.start}).") from None
    except RecursionError:
        raise BadRequest(NESTED_TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, or a number past Python's 4,300 digits
        raise BadRequest(f"The request body is not JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object, got {type(body).__name__}.")
    if _SURROGATE_ESCAPE.search(data):
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(
                "The request body contains an unpaired UTF-16 surrogate escape (\\ud800-"
                "\\udfff alone), which is no character; fix the text that carries it."
            ) from None
    return body


def _text(body: Mapping[str, Any], key: str) -> str | None:
    """An optional string field: ``None`` when absent or empty, 400 when not a string."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string, got {type(value).__name__}")
    return value


def normalise_extra_params(value: Any) -> dict[str, Any]:
    """``extra_params`` arrives as null, a JSON string (LS's UI form) or an object (REST API)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InvalidExtraParams(
                f'extra_params must be a JSON object such as {{"threshold": 0.3}}; got {value[:80]!r}'
            ) from None
    if not isinstance(value, dict):
        raise InvalidExtraParams(f"extra_params must be a JSON object, got {type(value).__name__}")
    return value


@bp.get("/")
@bp.get("/health")
def health() -> tuple[Response, int]:
    runtime = _runtime()
    runtime.check_services()  # a 503 naming what is down: LS shows the backend disconnected
    problem = runtime.store_problem()
    store: dict[str, Any] = {"writable": problem is None}
    if problem is not None:
        # 503: Label Studio shows the backend disconnected instead of sending annotations
        # that cannot be stored (it never resends a webhook).
        store["problem"] = problem
    body: dict[str, Any] = {
        "status": "UP" if problem is None else "DOWN",
        "model_class": type(runtime.backend).__name__,
        "backend": runtime.backend.name,
        "version": runtime.backend.version,
        "threads": runtime.backend.threads,
        "store": store,
    }
    try:
        body["training"] = runtime.training_status()
        if _authorised(runtime):
            # /health is open to probes; what went wrong in which project is for those who
            # log in.
            body["last_errors"] = last_errors(runtime, None)
    except Exception as exc:  # both live in the store, on that disk
        if problem is None or not is_store_failure(exc):
            raise
        body["training"] = {"problem": f"unknown while the store cannot be read ({exc})"}
    return jsonify(body), 200 if problem is None else 503


def _authorised(runtime: Runtime) -> bool:
    try:
        check_authorization(request.headers.get("Authorization"), runtime.settings)
    except Unauthorized:
        return False
    return True


def last_errors(runtime: Runtime, key: ProjectKey | None) -> dict[str, dict[str, Any]]:
    """Each project's last error as JSON, newest first (``/health``, ``/jobs``)."""
    return {
        e.project: {"at": e.at, "source": e.source, "message": e.message}
        for e in runtime.errors.last(key)
    }


@bp.post("/setup")
def setup() -> Response:
    runtime = _runtime()
    body = _body()
    key = ProjectKey.parse(body.get("project"))
    schema = body.get("schema")
    if not isinstance(schema, str) or not schema.strip():
        raise BadRequest("/setup needs 'schema', the project's labeling config XML.")
    config = LabelConfig.cached(schema)
    extra = normalise_extra_params(body.get("extra_params"))
    # A backend that cannot predict for this project fails here, where LS shows the reason.
    runtime.check_project(key, config, runtime.settings_for(extra), source="setup")
    hostname, token = _text(body, "hostname"), _text(body, "access_token")
    check_hostname(runtime.settings, runtime.store.project(key), hostname)
    runtime.store.remember_setup(
        key, extra_params=extra, hostname=hostname, access_token=token, label_config=schema
    )
    state = runtime.store.project(key)
    version = runtime.served_version(state).name
    runtime.selector.advise(state, version)
    verdicts: SetupVerdicts = current_app.extensions.setdefault("prelabel.doctor", SetupVerdicts())
    verdicts.log_once(
        runtime.backend,
        runtime.settings,
        key,
        config,
        hostname=state.hostname,
        access_token=state.access_token,
    )
    return jsonify(model_version=version)


@bp.post("/predict")
def predict() -> Response:
    runtime = _runtime()
    body = _body()
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise BadRequest("/predict needs 'tasks', a list of task objects.")
    # Task ids key the media failures and the served predictions: LS sends integers.
    bad = next((t["id"] for t in tasks if t.get("id") is not None and not is_id(t["id"])), None)
    if bad is not None:
        raise BadRequest(f"/predict task 'id' must be an integer id, got {bad!r:.80}")
    key = ProjectKey.parse(body.get("project"))
    project = runtime.store.project(key)
    xml = body.get("label_config") or project.label_config
    if not isinstance(xml, str) or not xml.strip():
        raise BadRequest("/predict needs 'label_config' (or a prior /setup for this project).")
    config = LabelConfig.cached(xml)
    runtime.check_project(key, config, runtime.settings_for(project.extra_params), source="predict")
    raw_params = body.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    context = params.get("context")
    interaction = context.get("result") if isinstance(context, Mapping) else None
    ctx = runtime.context(
        project,
        label_config=config,
        params=params,
        interaction=[i for i in interaction if isinstance(i, dict)]
        if isinstance(interaction, list)
        else [],
    )
    results = runtime.runner.run(tasks, ctx)
    if tasks and not ctx.interaction:
        runtime.selector.served(project, ctx.model_version)
    return jsonify(results=results)


@bp.post("/webhook")
def webhook() -> tuple[Response, int]:
    runtime = _runtime()
    response, status = handle_event(runtime, _body())
    runtime.write_failures.clear()  # it stored what it got: the disk takes writes again
    return jsonify(response), status


@bp.post("/train")
def legacy_train() -> tuple[Response, int]:
    """LS's pre-webhook Start Training: the body carries every annotated task (protocol §3.6)."""
    runtime = _runtime()
    body = _body()
    key = ProjectKey.parse(body.get("project"))
    tasks = body.get("annotations")
    if not isinstance(tasks, list):
        raise BadRequest("/train needs 'annotations', the list of annotated tasks.")
    bad = next((i for i, task in enumerate(tasks) if not isinstance(task, dict)), None)
    if bad is not None:
        raise BadRequest(
            f"/train 'annotations'[{bad}] must be a task object, got {type(tasks[bad]).__name__}."
        )
    config = _text(body, "label_config")
    if config is not None:
        runtime.store.set_label_config(key, config)
    if not runtime.policy.trains:
        return jsonify(
            status="ok", detail=f"the {runtime.backend.name} backend does not train"
        ), 200
    runtime.store.replace_annotations(key, tasks)
    job = runtime.queue.enqueue(key, "train", reason="TRAIN")
    runtime.wake_jobs()
    return jsonify(status="ok", job=job.id), 201


@bp.post("/projects/<project>/predict")
def bulk_predict(project: str) -> tuple[Response, int]:
    """Pre-annotate the project's tasks in LS in a background job (progress in ``/jobs``)."""
    runtime = _runtime()
    key = runtime.store.resolve(ProjectKey.parse(project))
    body = _body() if request.get_data(cache=True) else {}
    unknown = sorted(set(body) - {"unlabeled_only", "select"})
    if unknown or not all(
        isinstance(body.get(k, True), bool) for k in ("unlabeled_only", "select")
    ):
        raise BadRequest(
            "POST /projects/<project>/predict takes an optional JSON object with boolean"
            f" 'unlabeled_only' and 'select'; got {body!r:.200}."
        )
    state = runtime.store.project(key)
    if not state.label_config:
        raise BadRequest(
            f"Project {key} is unknown to this backend: connect it in Label Studio first."
        )
    job = runtime.queue.enqueue(key, "predict", reason="API", payload=body)
    runtime.wake_jobs()
    return jsonify(job=job_json(job)), 202


@bp.get("/versions")
def versions() -> Response:
    runtime = _runtime()
    names = [runtime.backend.version, *runtime.store.all_version_names()]
    return jsonify(versions=list(dict.fromkeys(names)))


@bp.get("/projects/<project>/versions")
def project_versions(project: str) -> Response:
    """A project's versions; a bare id (``/projects/4/versions``) lists every generation's."""
    runtime = _runtime()
    key = ProjectKey.parse(project)
    return jsonify(
        project=str(key),
        versions=[
            {
                "name": v.name,
                "project": str(v.project),
                "status": v.status,
                "created_at": v.created_at,
                "metrics": dict(v.metrics),
            }
            for v in runtime.store.versions(key)
        ],
    )


@bp.post("/projects/<project>/rollback")
def rollback(project: str) -> Response:
    """Serve the previous version, or the one named by ``?version=`` or ``{"version": …}``."""
    runtime = _runtime()
    key = ProjectKey.parse(project)
    has_body = bool(request.get_data(cache=True))
    named = request.args.get("version") or (_text(_body(), "version") if has_body else None)
    version = runtime.store.rollback(key, to=named)
    return jsonify(project=str(key), model_version=version.name)


@bp.get("/jobs")
def list_jobs() -> Response:
    runtime = _runtime()
    project = request.args.get("project")
    key = ProjectKey.parse(project) if project else None
    jobs = runtime.queue.list(key)
    return jsonify(jobs=[job_json(j) for j in jobs], last_errors=last_errors(runtime, key))


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return jsonify(job_json(_runtime().queue.get(job_id)))


@bp.get("/acceptance")
def acceptance() -> Response:
    runtime = _runtime()
    project = request.args.get("project")
    stats = runtime.acceptance.stats(ProjectKey.parse(project) if project else None)
    gaps = gaps_by_version(stats)
    return jsonify(
        acceptance=[s.__dict__ for s in stats],
        bias=[
            {
                "project": project_key,
                "model_version": version,
                "gap": gap.gap,
                "interval": [gap.low, gap.high],
                "confidence": gap.confidence,
                "method": gap.method,
                "annotations": {"preannotated": gap.preannotated, "control": gap.control},
            }
            for (project_key, version), gap in gaps.items()
        ],
    )


@bp.get("/metrics")
def metrics() -> Response:
    return Response(_runtime().telemetry.render(), mimetype="text/plain; version=0.0.4")


def job_json(job: Any) -> dict[str, Any]:
    """A job as JSON for ``/jobs``."""
    return {
        "id": job.id,
        "project": str(job.project),
        "kind": job.kind,
        "status": job.status,
        "reason": job.reason,
        "coalesced": job.coalesced,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": dict(job.progress),
        "result": dict(job.result),
        "error": job.error,
        "worker": job.worker,
        "attempts": job.attempts,
    }
