"""``fit``: export a project's annotations per control, fine-tune, measure on the held-out tasks.

``RectangleLabels`` trains a detector, ``PolygonLabels`` a segmenter, ``KeyPointLabels`` a pose
model and a single-choice ``Choices`` a classifier (datasets: :mod:`prelabel_yolo.datasets`,
written under ``job.workdir/data`` and removed afterwards). Training starts from the project's
current weights (``job.base_dir``) or the control's base model; the result goes to
``job.workdir/<control>.pt`` and its metrics on ultralytics' validation split — the tasks core
held out (``job.holdout``) — (mAP50 and mAP50-95, or top-1 accuracy for classifiers) are the
version's metrics. Core's trainer then gates promotion on
:meth:`YoloBackend.evaluate <prelabel_yolo.backend.YoloBackend.evaluate>` (mAP50-95) of the
new and the current version on the project's held-out tasks, and keeps the previous version
for rollback.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prelabel import TrainJob
from prelabel.config import Control
from prelabel_yolo.controls import image_controls
from prelabel_yolo.datasets import Dataset, export_classes, export_dataset, export_poses
from prelabel_yolo.settings import YoloSettings
from prelabel_yolo.warmup import keep_threads

__all__ = ["TRAINABLE", "fit_controls"]

log = logging.getLogger(__name__)

#: Control type → the ultralytics task it trains.
TRAINABLE = {
    "rectanglelabels": "detect",
    "polygonlabels": "segment",
    "keypointlabels": "pose",
    "choices": "classify",
}


def _export(job: TrainJob, control: Control, model: Any, root: Path) -> Dataset:
    task = TRAINABLE[control.type]
    if task == "classify":
        return export_classes(job, control, root)
    if task == "pose":
        return export_poses(job, control, root, int(model.model.kpt_shape[0]))
    return export_dataset(job, control, root)


def _metrics(control: Control, result: Any) -> dict[str, float]:
    task = TRAINABLE[control.type]
    if task == "classify":
        return {f"{control.name}.top1": float(result.top1)}
    scores = getattr(result, {"segment": "seg", "pose": "pose"}.get(task, "box"))
    return {
        f"{control.name}.map50": float(scores.map50),
        f"{control.name}.map50_95": float(scores.map),
    }


def fit_controls(
    job: TrainJob, bases: Mapping[str, str], settings: YoloSettings, threads: int
) -> dict[str, float]:
    """Fine-tune every trainable control on ``threads`` torch threads; return metrics (empty
    when nothing trained)."""
    from ultralytics.models.yolo.model import YOLO

    controls = image_controls(job.label_config)
    # A keypoint control's grouping boxes come from its pose model, not from a detector.
    grouping = {c.attrs.get("model_bbox_control", "") for c in controls} - {""}
    metrics: dict[str, float] = {}
    for control in controls:
        task = TRAINABLE.get(control.type)
        if task is None or control.name not in bases or control.name in grouping:
            continue
        if control.multiple:
            log.info(
                "yolo: control %s: multiple-choice classification is not trained", control.name
            )
            continue
        model = YOLO(bases[control.name])
        keep_threads(model, threads)
        if model.task != task:
            log.info(
                "yolo: control %s: base %s cannot train for it", control.name, bases[control.name]
            )
            continue
        root = job.workdir / "data" / control.name
        dataset = _export(job, control, model, root)
        if dataset.train < settings.min_examples:
            log.info(
                "yolo: control %s has %d annotated training images; need %d.",
                control.name,
                dataset.train,
                settings.min_examples,
            )
            continue
        options: dict[str, Any] = {"device": settings.device} if settings.device else {}
        model.train(
            data=str(dataset.data),
            epochs=settings.epochs,
            imgsz=settings.train_imgsz,
            batch=settings.train_batch,
            workers=0,  # no dataloader processes inside the job runner
            plots=False,
            verbose=False,
            project=str(job.workdir / "runs"),
            name=control.name,
            exist_ok=True,
            **{**settings.train_options, **options},
        )
        trainer = model.trainer
        assert trainer is not None  # set by train()
        best = Path(trainer.best)
        target = job.workdir / f"{control.name}.pt"
        shutil.copyfile(best if best.is_file() else Path(trainer.last), target)
        tuned = YOLO(str(target))
        keep_threads(tuned, threads)
        result = tuned.val(
            data=str(dataset.data), imgsz=settings.train_imgsz, batch=settings.train_batch,
            plots=False, verbose=False, workers=0, project=str(job.workdir / "runs"),
            name=f"{control.name}-val", exist_ok=True, **options,
        )  # fmt: skip
        if task == "classify":
            # Class folders are choice indices; store the choices themselves as class names.
            tuned.model.names = dict(enumerate(control.label_names))
            tuned.save(target)
        metrics.update(_metrics(control, result))
        metrics[f"{control.name}.train_images"] = float(dataset.train)
        metrics[f"{control.name}.val_images"] = float(dataset.val)
        shutil.rmtree(job.workdir / "runs", ignore_errors=True)
    shutil.rmtree(job.workdir / "data", ignore_errors=True)
    return metrics
