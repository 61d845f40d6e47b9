"""Read a report from a Label Studio JSON export (tasks with predictions and annotations).

The export must carry the predictions' content. Label Studio 1.23's *Export* button and
``GET /api/projects/<id>/export`` list predictions by id only; a snapshot export created with
``serialization_options.predictions.only_id = false`` includes them (:data:`HOW_TO_EXPORT`).

An export holds what annotators were shown, not what the backend kept to itself, so it lacks
two things a store has: the control group's hidden predictions (no bias gap) and the
training history. Each annotation is compared with the prediction it was made from when LS
recorded one (``parent_prediction``), else with the newest prediction created before it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from prelabel.annotations import result_labels
from prelabel.errors import ConfigError
from prelabel.metrics.agreement import agreement
from prelabel.report.model import ProjectReport, Record, VersionPoint, summarise

__all__ = ["HOW_TO_EXPORT", "report_from_export"]

#: How to get an export that includes the predictions' content.
HOW_TO_EXPORT = (
    "create a snapshot export that includes them:\n"
    "  curl -X POST $LABEL_STUDIO_URL/api/projects/<id>/exports/ -H 'Authorization: Token <key>'"
    " -H 'Content-Type: application/json'"
    ' -d \'{"serialization_options": {"predictions": {"only_id": false}}}\'\n'
    "then download it with the export's id from the answer:\n"
    '  curl "$LABEL_STUDIO_URL/api/projects/<id>/exports/<export id>/download?exportType=JSON"'
    " -H 'Authorization: Token <key>' -o export.json"
)

_EPOCH = datetime.fromtimestamp(0).astimezone()


def report_from_export(path: Path) -> ProjectReport:
    """The report for the project exported to ``path`` (LS's *Export → JSON*).

    Raises:
        ConfigError: the file is not JSON or not a list of tasks.
    """
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read the Label Studio export {path}: {exc}") from None
    if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
        raise ConfigError(
            f"{path} is not a Label Studio JSON export: expected a list of tasks (Export → JSON"
            " in the project's Data Manager), not a JSON-MIN, CSV or COCO export."
        )
    records: list[Record] = []
    scores: list[float] = []
    first_served: dict[str, datetime] = {}
    annotated_at: list[datetime] = []
    unshown = 0
    if any(not isinstance(p, Mapping) for t in tasks for p in t.get("predictions") or []):
        raise ConfigError(
            f"{path} lists predictions by id only (Label Studio's Export button leaves their"
            f" content out); {HOW_TO_EXPORT}"
        )
    for task in tasks:
        predictions = _items(task, "predictions")
        for p in predictions:
            if isinstance(p.get("score"), int | float):
                scores.append(float(p["score"]))
            version = str(p.get("model_version") or "unknown")
            created = _time(p.get("created_at"))
            first_served[version] = min(first_served.get(version, created), created)
        for annotation in _items(task, "annotations"):
            if annotation.get("was_cancelled"):
                continue
            when = _time(annotation.get("created_at"))
            annotated_at.append(when)
            shown = _shown(predictions, annotation, when)
            if shown is None:
                unshown += 1
                continue
            result = [r for r in shown.get("result") or [] if isinstance(r, Mapping)]
            records.append(
                Record(
                    version=str(shown.get("model_version") or "unknown"),
                    group="preannotated",
                    agreement=agreement(result, annotation.get("result") or []),
                    labels=result_labels(result),
                )
            )
    groups, labels = summarise(records)
    means = {g.version: g.mean_agreement for g in groups}
    curve = [
        VersionPoint(
            name=version,
            status="served",
            annotations=sum(1 for t in annotated_at if t < served),
            value=means.get(version),
        )
        for version, served in sorted(first_served.items(), key=lambda item: item[1])
    ]
    return ProjectReport(
        project=path.stem,
        source=f"export {path}",
        curve_metric="agreement with the annotations made after it pre-annotated",
        learning_curve=curve,
        acceptance=groups,
        labels=labels,
        scores=scores,
        training=None,
        notes=[
            "From a Label Studio export: the control group's hidden predictions and the"
            " training history live only in the backend's store (run the report with"
            " --model-dir for the bias gap and training runs).",
            *(
                [
                    f"{unshown} annotations had no non-empty prediction before them and are not counted."
                ]
                if unshown
                else []
            ),
        ],
    )


def _items(task: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = task.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _time(value: Any) -> datetime:
    """An LS timestamp (ISO 8601, ``Z`` for UTC); missing or unreadable ones sort first."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _EPOCH
        return parsed if parsed.tzinfo else parsed.astimezone()
    return _EPOCH


def _shown(
    predictions: Sequence[Mapping[str, Any]], annotation: Mapping[str, Any], when: datetime
) -> Mapping[str, Any] | None:
    """The non-empty prediction the annotation started from (``parent_prediction``), else the
    newest one created before ``when``; ``None`` if there was none."""
    shown = [p for p in predictions if p.get("result")]
    parent = annotation.get("parent_prediction")
    for p in shown:
        if parent is not None and p.get("id") == parent:
            return p
    before = [p for p in shown if _time(p.get("created_at")) <= when]
    return max(before, key=lambda p: _time(p.get("created_at"))) if before else None
