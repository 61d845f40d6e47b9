"""One converter per control type: ultralytics ``Results`` for one image → LS regions.

Each converter also reports the task's *decision distribution* for active learning: for
detection-like controls, ``[p, 1 - p]`` of the candidate whose confidence ``p`` is closest to
0.5, where candidates are every box at or above ``uncertainty_floor`` — including boxes
*below* the control's threshold, which are the likely missed objects; for ``Choices`` the
class distribution over the control's labels. Core's score policy turns it into ``score``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prelabel import UnsupportedConfig
from prelabel import results as R
from prelabel.config import Control, LabelConfig, LabelMap
from prelabel_yolo.models import LoadedModel

__all__ = [
    "COCO_KEYPOINTS",
    "TASKS_FOR",
    "ControlPlan",
    "Outcome",
    "PredictStats",
    "box_distribution",
    "convert",
    "image_controls",
    "keypoint_labels",
    "video_controls",
]

log = logging.getLogger(__name__)

#: Which ultralytics model tasks can fill each control.
TASKS_FOR: Mapping[str, tuple[str, ...]] = {
    "rectanglelabels": ("detect", "obb", "segment", "pose"),
    "polygonlabels": ("segment",),
    "brushlabels": ("segment",),
    "keypointlabels": ("pose",),
    "choices": ("classify",),
}

#: Keypoint order of COCO-pose models (``kpt_shape: [17, 3]``), used when labels set no ``model_index``.
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip


@dataclass
class PredictStats:
    """Counters the backend exposes: what the models found but LS was not shown."""

    unmapped: Counter[str] = field(default_factory=Counter)
    below_threshold: int = 0
    unreadable_images: int = 0
    unreadable_videos: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def drop(self, model_class: str) -> None:
        with self._lock:
            self.unmapped[model_class] += 1

    def add(self, *, below: int = 0, unreadable: int = 0, unreadable_videos: int = 0) -> None:
        with self._lock:
            self.below_threshold += below
            self.unreadable_images += unreadable
            self.unreadable_videos += unreadable_videos

    def merge(self, other: PredictStats) -> None:
        """Add the counts of ``other`` (one request's) to these."""
        with self._lock:
            self.unmapped.update(other.unmapped)
        self.add(
            below=other.below_threshold,
            unreadable=other.unreadable_images,
            unreadable_videos=other.unreadable_videos,
        )


@dataclass
class ControlPlan:
    """How one control is filled: its model, label map and inference options.

    Attributes:
        control: the control.
        model: the loaded model.
        label_map: model class → LS label (for ``KeyPointLabels``: the instance classes of
            the grouping box control, if any).
        conf: score threshold (``model_score_threshold``).
        iou: NMS IoU threshold.
        max_det: most regions per image.
        floor: lowest confidence that still counts toward uncertainty.
        box_control: for keypoints, the ``RectangleLabels`` control that groups each instance.
        keypoint_labels: for keypoints, keypoint index → LS label.
        point_size: for keypoints, the dot's width in % of the image width.
    """

    control: Control
    model: LoadedModel
    label_map: LabelMap
    conf: float
    iou: float
    max_det: int
    floor: float
    box_control: Control | None = None
    keypoint_labels: Mapping[int, str] = field(default_factory=dict)
    point_size: float = 0.5

    @property
    def object_name(self) -> str:
        return self.control.objects[0].name

    @property
    def run_conf(self) -> float:
        """The ``conf`` given to ultralytics: low enough to see the likely missed objects."""
        return min(self.conf, self.floor)


@dataclass
class Outcome:
    """Regions for one control on one image, and the decision distribution behind them."""

    regions: list[R.Region] = field(default_factory=list)
    distribution: list[float] | None = None


def keypoint_labels(control: Control, count: int) -> dict[int, str]:
    """Keypoint index → label.

    ``model_index`` on each ``<Label>``; else, for 17-point models, the labels named like COCO
    keypoints; else, when the model has exactly as many keypoints as the control has labels
    (as models fine-tuned by ``fit`` on custom keypoints do), the labels in document order.

    Raises:
        UnsupportedConfig: a ``model_index`` is not an integer in range.
    """
    mapping: dict[int, str] = {}
    for label in control.labels:
        raw = label.attrs.get("model_index")
        if raw is None:
            continue
        if not raw.strip().isdigit() or int(raw) >= count:
            raise UnsupportedConfig(
                f"KeyPointLabels {control.name!r}: label {label.name!r} has model_index={raw!r}; "
                f"it must be a keypoint index 0..{count - 1} of the pose model."
            )
        mapping[int(raw)] = label.name
    if not mapping and count == len(COCO_KEYPOINTS):
        folded = {name.casefold(): name for name in control.label_names}
        for index, name in enumerate(COCO_KEYPOINTS):
            variants = (name, name.replace("_", " "), name.replace("_", "-"))
            found = next((folded[v] for v in variants if v in folded), None)
            if found is not None:
                mapping[index] = found
    if not mapping and count == len(control.labels):
        mapping = dict(enumerate(control.label_names))
    return mapping


def box_distribution(confidences: Sequence[float]) -> list[float]:
    """``[p, 1 - p]`` for the confidence closest to 0.5; ``[1.0]`` when there is none."""
    if not confidences:
        return [1.0]  # nothing near the threshold: confident that the image holds no more
    closest = min(confidences, key=lambda p: abs(p - 0.5))
    return [closest, 1.0 - closest]


def _mapped(plan: ControlPlan, names: Sequence[str], cls: int, stats: PredictStats) -> str | None:
    label = plan.label_map.get(names[cls])
    if label is None:
        stats.drop(names[cls])
        log.debug("control %r: class %r has no label; dropped", plan.control.name, names[cls])
    return label


def _kept(
    plan: ControlPlan, confidences: Sequence[float], stats: PredictStats
) -> tuple[list[int], list[float]]:
    """Indices at or above the threshold, and every candidate confidence ≥ the floor."""
    kept = [i for i, p in enumerate(confidences) if p >= plan.conf]
    candidates = [p for p in confidences if p >= plan.floor]
    stats.add(below=len(confidences) - len(kept))
    return kept, candidates


def _rows(tensor: Any) -> list[Any]:
    return tensor.cpu().numpy().tolist()  # type: ignore[no-any-return]


def convert(plan: ControlPlan, result: Any, stats: PredictStats) -> Outcome:
    """Regions for ``plan.control`` from one ultralytics ``Results``."""
    height, width = result.orig_shape
    size = (int(width), int(height))
    names = plan.model.names
    kind = plan.control.type
    if kind == "choices":
        return _choices(plan, names, result, stats)
    if plan.model.task == "obb":
        return _oriented(plan, names, result, size, stats)
    boxes = result.boxes
    confidences = _rows(boxes.conf)
    kept, candidates = _kept(plan, confidences, stats)
    classes = [int(c) for c in _rows(boxes.cls)]
    outcome = Outcome(distribution=box_distribution(candidates))
    if kind == "rectanglelabels":
        xyxy = _rows(boxes.xyxy)
        for i in kept:
            label = _mapped(plan, names, classes[i], stats)
            if label is not None and xyxy[i][2] > xyxy[i][0] and xyxy[i][3] > xyxy[i][1]:
                outcome.regions.append(
                    R.rectangle_from_xyxy(
                        plan.control, xyxy[i], image_size=size, label=label, score=confidences[i]
                    )
                )
    elif kind == "polygonlabels":
        polygons = result.masks.xy if result.masks is not None else []
        for i in kept:
            label = _mapped(plan, names, classes[i], stats)
            points = [(min(max(x, 0.0), width), min(max(y, 0.0), height)) for x, y in polygons[i]]
            if label is not None and len(points) >= 3:
                outcome.regions.append(
                    R.polygon_from_pixels(
                        plan.control, points, image_size=size, label=label, score=confidences[i]
                    )
                )
    elif kind == "brushlabels":
        # retina_masks=True (see backend) makes masks full-resolution, as LS needs.
        masks = result.masks.data.cpu().numpy() > 0.5 if result.masks is not None else []
        for i in kept:
            label = _mapped(plan, names, classes[i], stats)
            if label is not None and masks[i].any():
                outcome.regions.append(
                    R.brush(
                        plan.control, masks[i], label=label, image_size=size, score=confidences[i]
                    )
                )
    elif kind == "keypointlabels":
        _keypoints(plan, names, result, size, kept, confidences, outcome, stats)
    return outcome


def _oriented(
    plan: ControlPlan, names: Sequence[str], result: Any, size: tuple[int, int], stats: PredictStats
) -> Outcome:
    confidences = _rows(result.obb.conf)
    kept, candidates = _kept(plan, confidences, stats)
    classes = [int(c) for c in _rows(result.obb.cls)]
    rows = _rows(result.obb.xywhr)
    outcome = Outcome(distribution=box_distribution(candidates))
    for i in kept:
        label = _mapped(plan, names, classes[i], stats)
        cx, cy, w, h, r = rows[i]
        if label is not None and w > 0 and h > 0:
            outcome.regions.append(
                R.rectangle_from_xywhr(
                    plan.control,
                    cx,
                    cy,
                    w,
                    h,
                    r,
                    image_size=size,
                    label=label,
                    score=confidences[i],
                )
            )
    return outcome


def _keypoints(
    plan: ControlPlan,
    names: Sequence[str],
    result: Any,
    size: tuple[int, int],
    kept: Sequence[int],
    confidences: Sequence[float],
    outcome: Outcome,
    stats: PredictStats,
) -> None:
    if result.keypoints is None:
        return
    points = _rows(result.keypoints.xy)
    point_conf = _rows(result.keypoints.conf) if result.keypoints.conf is not None else None
    xyxy = _rows(result.boxes.xyxy)
    classes = [int(c) for c in _rows(result.boxes.cls)]
    for i in kept:
        parent: str | None = None
        if plan.box_control is not None:
            label = _mapped(plan, names, classes[i], stats)
            if label is not None and xyxy[i][2] > xyxy[i][0] and xyxy[i][3] > xyxy[i][1]:
                box = R.rectangle_from_xyxy(
                    plan.box_control, xyxy[i], image_size=size, label=label, score=confidences[i]
                )
                outcome.regions.append(box)
                parent = box.id
        for k, (x, y) in enumerate(points[i]):
            score = point_conf[i][k] if point_conf is not None else confidences[i]
            label = plan.keypoint_labels.get(k)
            # Ultralytics reports an invisible keypoint at (0, 0) with a low confidence.
            if label is None or score < plan.conf or not (0 <= x <= size[0] and 0 <= y <= size[1]):
                continue
            outcome.regions.append(
                R.keypoint_from_pixels(
                    plan.control,
                    x=x,
                    y=y,
                    image_size=size,
                    label=label,
                    width=plan.point_size,
                    parent_id=parent,
                    score=score,
                )
            )


def _choices(plan: ControlPlan, names: Sequence[str], result: Any, stats: PredictStats) -> Outcome:
    probabilities = _rows(result.probs.data)
    by_label: dict[str, float] = {}
    for cls, p in enumerate(probabilities):
        label = plan.label_map.get(names[cls])
        if label is not None:
            # Several model classes may map to one label (predicted_values="cat,kitten").
            by_label[label] = by_label.get(label, 0.0) + p
    if not by_label:
        return Outcome()
    ranked = sorted(by_label.items(), key=lambda item: item[1], reverse=True)
    picked = [(label, p) for label, p in ranked if p >= plan.conf]
    if not plan.control.multiple:
        picked = picked[:1]
    stats.add(below=len(ranked) - len(picked) if plan.control.multiple else 0)
    outcome = Outcome(distribution=[p for _, p in ranked])
    if picked:
        score = min(1.0, min(p for _, p in picked))
        outcome.regions.append(R.choices(plan.control, [label for label, _ in picked], score=score))
    return outcome


def image_controls(config: LabelConfig) -> list[Control]:
    """Supported controls that point to an ``Image`` whose value is a task field.

    ``perRegion`` controls (a classification of each box) are not filled: their results
    describe regions, which whole-image classification does not make.
    """
    return [
        c
        for c in config.controls_of(*TASKS_FOR)
        if c.objects
        and c.objects[0].tag.lower() == "image"
        and c.objects[0].value_key
        and not c.per_region
    ]


def video_controls(config: LabelConfig) -> list[Control]:
    """``VideoRectangle`` controls that point to a ``Video`` whose value is a task field."""
    return [
        c
        for c in config.controls_of("VideoRectangle")
        if c.objects and c.objects[0].tag.lower() == "video" and c.objects[0].value_key
    ]
