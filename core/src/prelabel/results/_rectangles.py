"""Builders for boxes: percentages, detector corners (``xyxy``) and oriented boxes (``xywhr``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._prediction import Region

__all__ = ["rectangle", "rectangle_from_xywhr", "rectangle_from_xyxy"]


def rectangle(
    control: Control,
    *,
    x: float,
    y: float,
    width: float,
    height: float,
    image_size: tuple[int, int],
    label: str | None = None,
    rotation: float = 0.0,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A box in percentages, for a ``RectangleLabels`` or ``Rectangle`` control.

    Args:
        control: a ``RectangleLabels`` (``label`` required) or ``Rectangle`` control.
        x: left edge of the unrotated box, % of the image width.
        y: top edge of the unrotated box, % of the image height.
        width: % of the image width, > 0; ``x + width <= 100`` unless rotated.
        height: % of the image height, > 0; ``y + height <= 100`` unless rotated.
        image_size: the image's natural ``(width, height)`` in pixels.
        label: one of the control's labels, or ``None`` for ``Rectangle``.
        rotation: degrees clockwise around the top-left corner ``(x, y)``, computed in pixel
            space; normalised to [0, 360).
        score: confidence in [0, 1].
        to_name: the ``Image`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A region with value ``{x, y, width, height, rotation[, rectanglelabels]}``.
    """
    _checks.require_tag(control, "rectangle", "RectangleLabels", "Rectangle")
    size = _checks.image_size(image_size)
    rotation = _checks.degrees(rotation)
    left, top = _checks.percent(x, "x"), _checks.percent(y, "y")
    box_width = _checks.positive(width, "width")
    box_height = _checks.positive(height, "height")
    if rotation == 0.0:
        # A rotated box may stick out past the right or bottom edge; an unrotated one may not.
        box_width = _checks.percent(left + box_width, "x + width") - left
        box_height = _checks.percent(top + box_height, "y + height") - top
    value = {
        "x": left,
        "y": top,
        "width": box_width,
        "height": box_height,
        "rotation": rotation,
        **_checks.labels_value(control, label),
    }
    return _checks.image_region(control, value, size, score, to_name, region_id)


def rectangle_from_xyxy(
    control: Control,
    xyxy: Sequence[float],
    *,
    image_size: tuple[int, int],
    label: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """An unrotated box from pixel corners ``(x1, y1, x2, y2)``, as detectors output.

    Arguments other than ``xyxy`` are those of :func:`rectangle`.
    """
    if len(xyxy) != 4:
        raise ValueError(f"xyxy must be (x1, y1, x2, y2), got {len(xyxy)} numbers")
    x1, y1, x2, y2 = (_checks.finite(v, "xyxy") for v in xyxy)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"xyxy must have x2 > x1 and y2 > y1, got {(x1, y1, x2, y2)}")
    width, height = _checks.image_size(image_size)
    return rectangle(
        control,
        x=x1 / width * 100.0,
        y=y1 / height * 100.0,
        width=(x2 - x1) / width * 100.0,
        height=(y2 - y1) / height * 100.0,
        image_size=image_size,
        label=label,
        score=score,
        to_name=to_name,
        region_id=region_id,
    )


def rectangle_from_xywhr(
    control: Control,
    cx: float,
    cy: float,
    w: float,
    h: float,
    r: float,
    *,
    image_size: tuple[int, int],
    label: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A rotated box from an oriented-box detector (Ultralytics OBB ``xywhr``), in pixels.

    Converts the centre form to LS's: the top-left corner before rotation, rotated
    clockwise around itself by ``r`` converted to degrees.

    Args:
        control: as for :func:`rectangle`.
        cx: centre x, pixels.
        cy: centre y, pixels.
        w: width along the box's own x axis, pixels.
        h: height along the box's own y axis, pixels.
        r: rotation in radians, clockwise in image coordinates (y down).
        image_size: the image's natural ``(width, height)`` in pixels.
        label: as for :func:`rectangle`.
        score: confidence in [0, 1].
        to_name: as for :func:`rectangle`.
        region_id: as for :func:`rectangle`.
    """
    cx, cy, r = _checks.finite(cx, "cx"), _checks.finite(cy, "cy"), _checks.finite(r, "r")
    w, h = _checks.positive(w, "w"), _checks.positive(h, "h")
    width, height = _checks.image_size(image_size)
    cos, sin = math.cos(r), math.sin(r)
    # The corner is the centre minus half the box's x axis (cos, sin) and half its y axis
    # (-sin, cos); in pixels, since the axes scale differently in percent.
    corner_x = cx - w / 2 * cos + h / 2 * sin
    corner_y = cy - w / 2 * sin - h / 2 * cos
    return rectangle(
        control,
        x=corner_x / width * 100.0,
        y=corner_y / height * 100.0,
        width=w / width * 100.0,
        height=h / height * 100.0,
        rotation=math.degrees(r),
        image_size=image_size,
        label=label,
        score=score,
        to_name=to_name,
        region_id=region_id,
    )
