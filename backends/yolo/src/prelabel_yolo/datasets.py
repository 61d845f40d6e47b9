"""LS annotations → ultralytics datasets, one exporter per model task.

* detect / segment (``RectangleLabels`` / ``PolygonLabels``): ``images|labels/train|val`` and a
  ``data.yaml``; a rotated box is exported as the axis-aligned box around it, and an annotated
  image without regions of the control is a negative image.
* pose (``KeyPointLabels``): the same layout with ``kpt_shape``; each instance is a box of the
  control's ``model_bbox_control`` with the keypoints whose ``parentID`` is that box, or, without
  a box control, all keypoints of the image inside their padded bounding box.
* classify (single-choice ``Choices``): ``train|val/<class index>/<task>.jpg``; images without a
  choice of the control are left out.

Training tasks (``job.tasks``) go to ``train``; the tasks core held out for the promotion gate
(``job.holdout``) are ultralytics' ``val`` split, so the epoch kept is the one that does best on
the same tasks the gate scores. A project too small for a holdout validates on its training
images (the best fit is kept; nothing is held back from training).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel import TrainJob
from prelabel.annotations import judged_annotation, judged_result
from prelabel.config import Control
from prelabel.vision.images import ImageArray, read_image
from prelabel_yolo.controls import COCO_KEYPOINTS, keypoint_labels

__all__ = [
    "COCO_FLIP",
    "Dataset",
    "export_classes",
    "export_dataset",
    "export_poses",
    "keypoint_layout",
    "pose_labels",
    "yolo_labels",
]

#: Left/right swap of the 17 COCO keypoints, for ultralytics' horizontal-flip augmentation.
COCO_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
#: Padding around the keypoints of an instance without a box, as a share of the image side.
POSE_PAD = 0.05


@dataclass(frozen=True)
class Dataset:
    """An exported dataset: what ultralytics' ``data=`` takes, and the split sizes."""

    data: Path
    train: int
    val: int


def _annotated(
    job: TrainJob, control: Control
) -> Iterator[tuple[Any, ImageArray, Sequence[Mapping[str, Any]], bool]]:
    """``(task id, image, judged result, held out?)`` of every annotated, readable task."""
    key = control.objects[0].value_key or ""
    for held, tasks in ((False, job.tasks), (True, job.holdout)):
        for task in tasks:
            result = judged_result(task)
            image = read_image(task, key, job.media) if judged_annotation(task) else None
            if image is not None:
                yield task.get("id"), image, result, held


def _splits(held: bool, any_held: bool) -> tuple[str, ...]:
    """Where an image goes: held-out ones validate; without any, training images do too."""
    if held:
        return ("val",)
    return ("train",) if any_held else ("train", "val")


def _size(image: ImageArray) -> tuple[int, int]:
    """``(width, height)`` in pixels."""
    return int(image.shape[1]), int(image.shape[0])


def _save(image: ImageArray, path: Path) -> None:
    import cv2

    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"could not write training image {path}")


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


def _line(cls: int, numbers: Sequence[float]) -> str:
    return " ".join([str(cls), *(f"{n:.6f}" for n in numbers)])


def yolo_labels(
    control: Control, result: Sequence[Mapping[str, Any]], size: tuple[int, int]
) -> list[str]:
    """Detect/segment label-file lines for ``control``'s regions in an annotation ``result``."""
    kind = control.type
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
        lines.append(_line(index[labels[0]], numbers))
    return lines


def keypoint_layout(control: Control, base_count: int) -> tuple[int, dict[str, int], bool]:
    """How ``control``'s labels sit in the model's keypoint vector.

    The base model's layout when its keypoints map to labels (``model_index``, COCO names);
    else one keypoint per label, in label order.

    Returns:
        The keypoint count, label → index, and whether the layout is COCO's (flippable).
    """
    mapping = keypoint_labels(control, base_count)
    if mapping:
        coco = base_count == len(COCO_KEYPOINTS) and not any(
            "model_index" in label.attrs for label in control.labels
        )
        return base_count, {label: i for i, label in mapping.items()}, coco
    return len(control.labels), {name: i for i, name in enumerate(control.label_names)}, False


def pose_labels(
    control: Control,
    box_control: Control | None,
    result: Sequence[Mapping[str, Any]],
    layout: tuple[int, Mapping[str, int]],
    size: tuple[int, int],
) -> list[str]:
    """Pose label-file lines: ``cls cx cy w h`` then ``x y v`` per keypoint, normalised.

    Args:
        control: the ``KeyPointLabels`` control.
        box_control: its ``model_bbox_control``, whose boxes group keypoints by ``parentID``.
        result: the annotation's result.
        layout: keypoint count and label → keypoint index (see :func:`keypoint_layout`).
        size: the image's ``(width, height)`` (a rotated box's hull is computed in pixels).
    """
    count, index = layout
    points: dict[str | None, dict[int, tuple[float, float]]] = {}
    for item in result:
        value = item.get("value") or {}
        labels = value.get("keypointlabels") or []
        if item.get("from_name") != control.name or not labels or labels[0] not in index:
            continue
        parent = item.get("parentID") if box_control is not None else None
        slot = points.setdefault(parent, {})
        xy = (
            min(max(float(value["x"]) / 100, 0.0), 1.0),
            min(max(float(value["y"]) / 100, 0.0), 1.0),
        )
        slot.setdefault(index[labels[0]], xy)
    instances: list[tuple[int, list[float], dict[int, tuple[float, float]]]] = []
    if box_control is None:
        if points.get(None):
            found = points[None]
            xs, ys = [x for x, _ in found.values()], [y for _, y in found.values()]
            x1, x2 = max(min(xs) - POSE_PAD, 0.0), min(max(xs) + POSE_PAD, 1.0)
            y1, y2 = max(min(ys) - POSE_PAD, 0.0), min(max(ys) + POSE_PAD, 1.0)
            instances.append((0, [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], found))
    else:
        classes = {name: i for i, name in enumerate(box_control.label_names)}
        for item in result:
            value = item.get("value") or {}
            labels = value.get("rectanglelabels") or []
            if item.get("from_name") != box_control.name or not labels or labels[0] not in classes:
                continue
            box = _box_line(value, size)
            if box[2] > 0 and box[3] > 0:
                instances.append((classes[labels[0]], box, points.get(item.get("id"), {})))
    lines = []
    for cls, box, found in instances:
        numbers = list(box)
        for k in range(count):
            x, y = found.get(k, (0.0, 0.0))
            numbers += [
                x,
                y,
                2.0 if k in found else 0.0,
            ]  # 2: labelled and visible; 0: not labelled
        lines.append(_line(cls, numbers))
    return lines


def _write_detection(
    root: Path, rows: Sequence[tuple[Any, ImageArray, list[str], bool]], yaml_tail: str
) -> Dataset:
    any_held = any(held for *_, held in rows)
    for task_id, image, lines, held in rows:
        for split in _splits(held, any_held):
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            _save(image, root / "images" / split / f"{task_id}.jpg")
            (root / "labels" / split / f"{task_id}.txt").write_text("\n".join(lines))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\n{yaml_tail}")
    held_out = sum(held for *_, held in rows)
    return Dataset(data, len(rows) - held_out, held_out)


def _names_yaml(names: Sequence[str]) -> str:
    return "names:\n" + "".join(f"  {i}: {name!r}\n" for i, name in enumerate(names))


def export_dataset(job: TrainJob, control: Control, root: Path) -> Dataset:
    """A detect (``RectangleLabels``) or segment (``PolygonLabels``) dataset under ``root``."""
    rows = [
        (task_id, image, yolo_labels(control, result, _size(image)), held)
        for task_id, image, result, held in _annotated(job, control)
    ]
    return _write_detection(root, rows, _names_yaml(control.label_names))


def export_poses(job: TrainJob, control: Control, root: Path, base_count: int) -> Dataset:
    """A pose dataset under ``root`` for a ``KeyPointLabels`` control (see :func:`pose_labels`)."""
    box_name = control.attrs.get("model_bbox_control")
    box_control = job.label_config.control(box_name) if box_name else None
    count, index, coco = keypoint_layout(control, base_count)
    rows = [
        (
            task_id,
            image,
            pose_labels(control, box_control, result, (count, index), _size(image)),
            held,
        )
        for task_id, image, result, held in _annotated(job, control)
    ]
    names = box_control.label_names if box_control is not None else (control.name,)
    tail = f"kpt_shape: [{count}, 3]\n" + (f"flip_idx: {list(COCO_FLIP)}\n" if coco else "")
    return _write_detection(root, rows, tail + _names_yaml(names))


def export_classes(job: TrainJob, control: Control, root: Path) -> Dataset:
    """A classification dataset under ``root`` for a single-choice ``Choices`` control.

    Class folders are the choices' indices (``000``, ``001``…), so any label text works as a
    class; ``fit`` writes the label names into the trained weights.
    """
    index = {name: i for i, name in enumerate(control.label_names)}
    rows: list[tuple[Any, ImageArray, int, bool]] = []
    for task_id, image, result, held in _annotated(job, control):
        chosen = [
            item.get("value", {}).get("choices") or []
            for item in result
            if item.get("from_name") == control.name and item.get("type") == "choices"
        ]
        if chosen and len(chosen[0]) == 1 and chosen[0][0] in index:
            rows.append((task_id, image, index[chosen[0][0]], held))
    for split in ("train", "val"):
        for i in range(len(index)):
            (root / split / f"{i:03d}").mkdir(parents=True, exist_ok=True)
    any_held = any(held for *_, held in rows)
    for task_id, image, cls, held in rows:
        for split in _splits(held, any_held):
            _save(image, root / split / f"{cls:03d}" / f"{task_id}.jpg")
    held_out = sum(held for *_, held in rows)
    return Dataset(root, len(rows) - held_out, held_out)
