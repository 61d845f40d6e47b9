"""Read a report from a backend's store: the SQLite file under ``PRELABEL_MODEL_DIR``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prelabel._engine.acceptance import AcceptanceTracker
from prelabel._engine.engines import open_database
from prelabel._engine.jobs import Job, JobQueue
from prelabel._engine.store import ProjectStore, VersionInfo
from prelabel.database import DB_NAME
from prelabel.errors import ConfigError
from prelabel.metrics.bias import BiasGap, agreement_gap, gaps_by_version
from prelabel.project import ProjectKey
from prelabel.report.model import (
    ALL_VERSIONS,
    ProjectReport,
    Record,
    TrainingRun,
    VersionPoint,
    summarise,
)

__all__ = ["pooled_gap", "report_from_store"]


def report_from_store(
    model_dir: Path, project: str | None = None, *, database_url: str | None = None
) -> list[ProjectReport]:
    """One report per project in the store at ``model_dir`` (only ``project`` when given).

    A bare project id (``"12"``) selects every generation of that id. With ``database_url``
    (``PRELABEL_DATABASE_URL``) the state is read from PostgreSQL instead of ``model_dir``.

    Raises:
        ConfigError: ``model_dir`` holds no prelabel store, or not that project.
    """
    if database_url is None and not (model_dir / DB_NAME).is_file():
        raise ConfigError(
            f"No prelabel store in {model_dir} (no {DB_NAME}): pass the directory the backend"
            " runs with (its PRELABEL_MODEL_DIR) as --model-dir."
        )
    database = open_database(database_url or model_dir / DB_NAME)
    # No clean-up of old work dirs: a report must not touch a running backend's files.
    store = ProjectStore(model_dir, database=database, tmp_max_age=math.inf)
    queue = JobQueue(database)
    acceptance = AcceptanceTracker(database)
    keys = set(store.projects()) | set(acceptance.projects())
    keys |= {job.project for job in queue.list(limit=queue.keep_finished)}
    if project is not None:
        wanted = ProjectKey.parse(project)
        keys = {k for k in keys if k == wanted or (wanted.generation is None and k.id == wanted.id)}
        if not keys:
            raise ConfigError(f"The store in {model_dir} has nothing about project {project}.")
    return [
        _project(key, store, queue, acceptance, model_dir)
        for key in sorted(keys, key=lambda k: (k.id, k.generation or 0))
    ]


def _project(
    key: ProjectKey,
    store: ProjectStore,
    queue: JobQueue,
    acceptance: AcceptanceTracker,
    model_dir: Path,
) -> ProjectReport:
    versions = list(reversed(store.versions(key)))
    metric = next((m for v in versions if (m := gate_metric(v.metrics))), None)
    records = [
        Record(r.model_version, r.group, r.agreement, r.labels, r.regions != 0)
        for r in acceptance.records(key)
    ]
    groups, labels = summarise(records)
    report = ProjectReport(
        project=str(key),
        source=f"store {model_dir}",
        curve_metric=f"held-out {metric}" if metric else "held-out score",
        learning_curve=[_point(v, metric) for v in versions],
        acceptance=groups,
        labels=labels,
        bias={
            ALL_VERSIONS: pooled_gap(records),
            **{
                version: gap for (_, version), gap in gaps_by_version(acceptance.stats(key)).items()
            },
        },
        scores=[s.score for s in acceptance.served_scores(key) if s.score is not None],
        training=[
            _run(job)
            for job in reversed(queue.list(key, limit=queue.keep_finished))
            if job.kind == "train"  # not the predict jobs that follow a promotion
        ],
    )
    if any(r.labels is None for r in records):
        report.notes.append(
            "Annotations recorded before this prelabel version kept no predicted labels:"
            " they count per version, not per label."
        )
    return report


def pooled_gap(records: list[Record]) -> BiasGap:
    """The gap over every version at once (groups are drawn per task, whatever the version).

    Only tasks where the model suggested something count: an empty prediction (e.g. an
    untrained model's) cannot be accepted, and agrees as little in either group.
    """
    groups: dict[str, list[float]] = {"preannotated": [], "control": []}
    for r in records:
        if r.suggested:
            groups.setdefault(r.group, []).append(r.agreement)
    pre, control = groups["preannotated"], groups["control"]
    return agreement_gap(
        (sum(pre) / len(pre) if pre else 0.0, len(pre)),
        (sum(control) / len(control) if control else 0.0, len(control)),
    )


def gate_metric(metrics: Mapping[str, float]) -> str | None:
    """The promotion gate's metric in a version's metrics (``holdout_<metric>``), if gated."""
    return next(
        (
            k.removeprefix("holdout_")
            for k in metrics
            if k.startswith("holdout_") and k != "holdout_tasks"
        ),
        None,
    )


def _point(version: VersionInfo, metric: str | None) -> VersionPoint:
    m = version.metrics
    counted = [m[k] for k in ("train_tasks", "holdout_tasks") if k in m]
    return VersionPoint(
        name=version.name,
        status=version.status,
        annotations=int(sum(counted)) if counted else None,
        value=m.get(f"holdout_{metric}") if metric else None,
    )


def _run(job: Job) -> TrainingRun:
    result: Mapping[str, Any] = job.result
    seconds = (
        job.finished_at - job.started_at
        if job.finished_at is not None and job.started_at is not None
        else None
    )
    version = result.get("version")
    outcome: str = job.status
    why = job.error or ""
    if job.status == "succeeded":
        outcome, why = _verdict(result)
    elif job.status == "failed":
        why = job.error or "failed without a message"
    return TrainingRun(
        job=job.id,
        trigger=job.reason,
        started_at=job.started_at,
        seconds=seconds,
        outcome=outcome,
        version=version if isinstance(version, str) else None,
        why=why,
    )


def _verdict(result: Mapping[str, Any]) -> tuple[str, str]:
    if not result.get("trained", True):
        return "not trained", str(result.get("reason", "nothing to train on"))
    metrics = result.get("metrics") or {}
    metric = gate_metric(metrics)
    if metric is None:
        return (
            "promoted" if result.get("promoted", True) else "rejected",
            "no held-out gate yet (too few annotated tasks)",
        )
    challenger, champion = metrics[f"holdout_{metric}"], metrics.get(f"champion_{metric}", 0.0)
    if result.get("promoted"):
        return "promoted", f"held-out {metric} {challenger:.3f} ≥ served version's {champion:.3f}"
    return "rejected", f"held-out {metric} {challenger:.3f} < served version's {champion:.3f}"
