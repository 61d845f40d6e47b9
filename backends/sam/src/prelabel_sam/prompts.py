"""The annotator's smart regions (``params.context.result``, protocol §5) as SAM prompts.

Label Studio sends the regions the annotator just drew with a smart tool: ``keypointlabels``
clicks (``is_positive`` false for a negative click) and ``rectanglelabels`` boxes, in percent
of the image. They become objects to segment, per image:

* no box: one object from every click;
* one box: one object from the box and every click;
* several boxes (recent editors send every smart box of the control): one object per box, each
  with the clicks inside it; clicks inside no box make one more object.

An object needs a box or a positive click (negative clicks alone select nothing). Its label is
its box's, else that of its first positive click. Other region types are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prelabel.metrics import region_box

__all__ = ["Click", "ObjectPrompt", "object_prompts"]

#: ``(x, y, width, height)`` in percent of the image.
PercentBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Click:
    """A click in percent of the image; ``positive`` is False for a negative click."""

    x: float
    y: float
    positive: bool
    label: str | None = None


@dataclass
class ObjectPrompt:
    """What SAM segments as one object on one image.

    Attributes:
        image: the ``Image`` object's name (the regions' ``to_name``).
        label: the label to give the mask (the prompt's), ``None`` when the prompt had none.
        clicks: positive and negative clicks.
        box: an axis-aligned box in percent (a rotated box is replaced by its hull).
    """

    image: str
    label: str | None = None
    clicks: list[Click] = field(default_factory=list)
    box: PercentBox | None = None

    def points_px(self, width: int, height: int) -> tuple[list[list[float]], list[int]]:
        """Click coordinates in pixels of a ``width`` x ``height`` image, and SAM's labels."""
        coords = [[c.x / 100 * width, c.y / 100 * height] for c in self.clicks]
        return coords, [1 if c.positive else 0 for c in self.clicks]

    def box_px(self, width: int, height: int) -> list[float] | None:
        """The box as ``[x0, y0, x1, y1]`` pixels, clipped to the image."""
        if self.box is None:
            return None
        x, y, w, h = self.box
        x0, x1 = sorted((x / 100 * width, (x + w) / 100 * width))
        y0, y1 = sorted((y / 100 * height, (y + h) / 100 * height))
        return [
            min(max(x0, 0.0), width),
            min(max(y0, 0.0), height),
            min(max(x1, 0.0), width),
            min(max(y1, 0.0), height),
        ]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _first_label(value: Mapping[str, Any], key: str) -> str | None:
    labels = value.get(key)
    if isinstance(labels, list) and labels and isinstance(labels[0], str):
        return labels[0]
    return None


def _click(item: Mapping[str, Any]) -> Click | None:
    value = item.get("value")
    if not isinstance(value, Mapping):
        return None
    x, y = _number(value.get("x")), _number(value.get("y"))
    if x is None or y is None:
        return None
    positive = item.get("is_positive", True) is not False
    return Click(x, y, positive, _first_label(value, "keypointlabels"))


def _box(item: Mapping[str, Any]) -> PercentBox | None:
    value = item.get("value")
    if not isinstance(value, Mapping):
        return None
    if any(_number(value.get(k)) is None for k in ("x", "y", "width", "height")):
        return None
    if _number(value.get("rotation", 0)) is None:
        return None
    box = region_box(item)
    return None if box is None or box[2] <= 0 or box[3] <= 0 else box


def _inside(click: Click, box: PercentBox) -> bool:
    x, y, w, h = box
    return x <= click.x <= x + w and y <= click.y <= y + h


def _from_clicks(image: str, clicks: list[Click]) -> ObjectPrompt | None:
    positive = [c for c in clicks if c.positive]
    if not positive:
        return None
    label = next((c.label for c in positive if c.label), None)
    return ObjectPrompt(image, label, clicks)


def object_prompts(items: Sequence[Mapping[str, Any]]) -> list[ObjectPrompt]:
    """The objects to segment, in the order their first region arrived (see module docs)."""
    clicks: dict[str, list[Click]] = {}
    boxes: dict[str, list[tuple[PercentBox, str | None]]] = {}
    for item in items:
        image = item.get("to_name")
        if not isinstance(image, str) or not image:
            continue
        kind = item.get("type")
        if kind == "keypointlabels":
            click = _click(item)
            if click is not None:
                clicks.setdefault(image, []).append(click)
                boxes.setdefault(image, [])
        elif kind == "rectanglelabels":
            box = _box(item)
            if box is not None:
                value = item["value"]
                boxes.setdefault(image, []).append((box, _first_label(value, "rectanglelabels")))
                clicks.setdefault(image, [])
    objects: list[ObjectPrompt] = []
    for image, image_boxes in boxes.items():
        image_clicks = clicks[image]
        if not image_boxes:
            found = _from_clicks(image, image_clicks)
            objects.extend([found] if found else [])
            continue
        if len(image_boxes) == 1:
            box, label = image_boxes[0]
            objects.append(ObjectPrompt(image, label, list(image_clicks), box))
            continue
        left = list(image_clicks)
        for box, label in image_boxes:
            mine = [c for c in left if _inside(c, box)]
            left = [c for c in left if c not in mine]
            objects.append(ObjectPrompt(image, label, mine, box))
        rest = _from_clicks(image, left)
        objects.extend([rest] if rest else [])
    for prompt in objects:
        if prompt.label is None:
            prompt.label = next((c.label for c in prompt.clicks if c.positive and c.label), None)
    return objects
