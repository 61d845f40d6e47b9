"""``fit``: export a project's annotations to a YOLO dataset, fine-tune, measure mAP.

Per control: ``RectangleLabels`` (axis-aligned boxes; a rotated box is exported as the
axis-aligned box around it) trains a detector, ``PolygonLabels`` a segmenter. The dataset
is written to ``job.workdir/data/<control>`` (removed after training); annotated images are split into train and a
held-out validation share (deterministic by task id) on which mAP is measured. Training
starts from the project's current weights (``job.base_dir``) or the base model, and the
result goes to ``job.workdir/<control>.pt``; core's trainer then gates promotion on
agreement with its own held-out tasks and keeps the previous version for rollback.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prelabel import TrainJob
from prelabel.config import Control
from prelabel_yolo.images import open_image

if TYPE_CHECKING:
    from prelabel_yolo.backend import YoloBackend

__all__ = ["export_dataset", "fit_controls", "yolo_labels"]

log = logging.getLogger(__name__)

#: Control type → (LS result type, ultralytics task).
TRAINABLE = {
    "rectanglelabels": ("rectanglelabels", "detect"),
    "polygonlabels": ("polygonlabels", "segment"),
}


def _latest(task: Mapping[str, Any]) -> Mapping[str, Any] | None:
    annotations = task.get("annotations") or []
    if not annotations:
        return None
    latest: Mapping[str, Any] = max(
        annotations, key=lambda a: str(a.get("updated_at") or a.get("created_at") or "")
    )
    return latest


def _box_line(value: Mapping[str, Any], size: tuple[int, int]) -> list[float]:
    """Normalised ``cx cy w h`` of an LS rectangle (the axis-aligned hull if rotated)."""
    width, height = size
    x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
    w, h = float(value["width"]) * width / 100, float(value["height"]) * height / 100
    angle = math.radians(float(value.get("rotation") or 0.0))
    cos, sin = math.cos(angle), math.sin(angle)
    # Corners rotated clockwise around the top-left corner (x, y), in pixels (protocol §9.2).
    corners = [
        (x + dx * cos - dy * sin, y + dx * sin + dy * cos)
        for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))
    ]
    xs = [min(max(cx, 0.0), width) for cx, _ in corners]
    ys = [min(max(cy, 0.0), height) for _, cy in corners]
    x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
    return [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]


def yolo_labels(
    control: Control, result: Sequence[Mapping[str, Any]], size: tuple[int, int]
) -> list[str]:
    """YOLO label-file lines for ``control``'s regions in an annotation ``result``."""
    kind = TRAINABLE[control.type][0]
    index = {name: i for i, name in enumerate(control.label_names)}
    lines: list[str] = []
    for item in result:
        if item.get("from_name") != control.name or item.get("type") != kind:
            continue
        value = item.get("value") or {}
        labels = value.get(kind) or []
        if not labels or labels[0] not in index:
            continue
        if kind == "rectanglelabels":
            numbers = _box_line(value, size)
            if numbers[2] <= 0 or numbers[3] <= 0:
                continue
        else:
            points = value.get("points") or []
            if len(points) < 3:
                continue
            numbers = [min(max(float(c) / 100, 0.0), 1.0) for point in points for c in point]
        lines.append(" ".join([str(index[labels[0]]), *(f"{n:.6f}" for n in numbers)]))
    return lines


def _is_val(task_id: Any, fraction: float) -> bool:
    digest = hashlib.sha256(f"yolo-val:{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def export_dataset(
    job: TrainJob, control: Control, root: Path, val_fraction: float
) -> tuple[Path, int, int]:
    """Write ``root/images|labels/train|val`` and ``root/data.yaml``; return (yaml, train, val).

    Every task with an annotation is used; one without regions of this control is a
    negative example (an empty label file).
    """
    key = control.objects[0].value_key or ""
    rows: list[tuple[Any, Any, list[str]]] = []
    for task in job.tasks:
        latest = _latest(task)
        if latest is None:
            continue
        image = open_image(task, key, job.media)
        if image is None:
            continue
        rows.append(
            (task.get("id"), image, yolo_labels(control, latest.get("result") or [], image.size))
        )
    val_ids = {tid for tid, _, _ in rows if _is_val(tid, val_fraction)}
    if not val_ids and len(rows) > 1:
        val_ids = {rows[-1][0]}  # mAP needs at least one held-out image
    if len(val_ids) == len(rows):
        val_ids.discard(rows[0][0])
    for task_id, image, lines in rows:
        split = "val" if task_id in val_ids else "train"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        image.save(root / "images" / split / f"{task_id}.jpg", quality=95)
        (root / "labels" / split / f"{task_id}.txt").write_text("\n".join(lines))
    names = "".join(f"  {i}: {name!r}\n" for i, name in enumerate(control.label_names))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return data, len(rows) - len(val_ids), len(val_ids)


def fit_controls(
    job: TrainJob, bases: Mapping[str, str], settings: YoloBackend.Settings
) -> dict[str, float]:
    """Fine-tune every trainable control; return metrics (empty when nothing trained)."""
    from ultralytics.models.yolo.model import YOLO

    from prelabel_yolo.backend import image_controls

    metrics: dict[str, float] = {}
    for control in image_controls(job.label_config):
        if control.type not in TRAINABLE or control.name not in bases:
            continue
        root = job.workdir / "data" / control.name
        data, n_train, n_val = export_dataset(job, control, root, settings.val_fraction)
        if n_train + n_val < settings.min_examples or n_val == 0:
            log.info(
                "yolo: control %s has %d annotated images; need %d.",
                control.name,
                n_train + n_val,
                settings.min_examples,
            )
            continue
        model = YOLO(bases[control.name])
        if model.task != TRAINABLE[control.type][1]:
            log.info(
                "yolo: control %s: base %s cannot train for it", control.name, bases[control.name]
            )
            continue
        options: dict[str, Any] = {"device": settings.device} if settings.device else {}
        train_options = {**settings.train_options, **options}
        model.train(
            data=str(data),
            epochs=settings.epochs,
            imgsz=settings.train_imgsz,
            batch=settings.train_batch,
            workers=0,  # no dataloader processes inside the job runner
            plots=False,
            verbose=False,
            project=str(job.workdir / "runs"),
            name=control.name,
            exist_ok=True,
            **train_options,
        )
        trainer = model.trainer
        assert trainer is not None  # set by train()
        best = Path(trainer.best)
        weights = best if best.is_file() else Path(trainer.last)
        target = job.workdir / f"{control.name}.pt"
        shutil.copyfile(weights, target)
        tuned = YOLO(str(target))
        result = tuned.val(
            data=str(data), imgsz=settings.train_imgsz, batch=settings.train_batch,
            plots=False, verbose=False, workers=0, project=str(job.workdir / "runs"),
            name=f"{control.name}-val", exist_ok=True, **options,
        )  # fmt: skip
        scores = result.seg if TRAINABLE[control.type][1] == "segment" else result.box
        metrics[f"{control.name}.map50"] = float(scores.map50)
        metrics[f"{control.name}.map50_95"] = float(scores.map)
        metrics[f"{control.name}.train_images"] = float(n_train)
        metrics[f"{control.name}.val_images"] = float(n_val)
        shutil.rmtree(job.workdir / "runs", ignore_errors=True)
    shutil.rmtree(job.workdir / "data", ignore_errors=True)
    return metrics
