"""Builders for boxes: percentages, detector corners (``xyxy``), oriented boxes (``xywhr``) and
OCR boxes on PDF pages.

LS stores a box's ``width`` as % of the image width and its ``height`` as % of the image
height, each at most 100 (label_studio_sdk's value model), with the corner ``(x, y)`` inside
the image. A rotated box longer than the image is wide can still be stored as the same box
turned -90° (sides swapped, another corner as ``(x, y)``): on a portrait image that form fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import image_region, make_region
from prelabel.results._prediction import Region

__all__ = ["ocr_region", "rectangle", "rectangle_from_xywhr", "rectangle_from_xyxy"]


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
        height: % of the image height, > 0; ``y + height <= 100`` unless rotated. A rotated
            box whose width or height would exceed 100 is stored in an equivalent form
            (turned -90°, +90° or 180° about another corner) that fits, or refused.
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
    box_width = _checks.positive(width, "width")
    box_height = _checks.positive(height, "height")
    if rotation == 0.0:
        left, top = _checks.percent(x, "x"), _checks.percent(y, "y")
        # A rotated box may stick out past the right or bottom edge; an unrotated one may not.
        box_width = _checks.percent(left + box_width, "x + width") - left
        box_height = _checks.percent(top + box_height, "y + height") - top
    else:
        box = (_checks.finite(x, "x"), _checks.finite(y, "y"), box_width, box_height)
        left, top, box_width, box_height, rotation = _storable(box, rotation, size)
    value = {
        "x": left,
        "y": top,
        "width": box_width,
        "height": box_height,
        "rotation": rotation,
        **_checks.labels_value(control, label),
    }
    return image_region(control, value, size, score, to_name, region_id)


def _fits(value: float, low: float) -> bool:
    return low - _checks.PERCENT_TOLERANCE <= value <= 100.0 + _checks.PERCENT_TOLERANCE


def _storable(
    box: tuple[float, float, float, float], rotation: float, size: tuple[int, int]
) -> tuple[float, float, float, float, float]:
    """The first of a rotated box's four equivalent forms that LS can store.

    The same rectangle is ``(corner, rotation, w, h)``, ``(corner + h·v, rotation - 90, h, w)``,
    ``(corner + w·u, rotation + 90, h, w)`` and ``(corner + w·u + h·v, rotation + 180, w, h)``
    with ``u``, ``v`` its axes, computed in pixels (percentages of the two sides differ).
    """
    (image_width, image_height), (x, y, width, height) = size, box
    sx, sy = image_width / 100.0, image_height / 100.0
    w, h = width * sx, height * sy
    angle = math.radians(rotation)
    ux, uy = math.cos(angle), math.sin(angle)
    vx, vy = -uy, ux
    forms = (
        (0.0, 0.0, 0.0, w, h),
        (h * vx, h * vy, -90.0, h, w),
        (w * ux, w * uy, 90.0, h, w),
        (w * ux + h * vx, w * uy + h * vy, 180.0, w, h),
    )
    for dx, dy, turn, side_x, side_y in forms:
        left, top = x + dx / sx, y + dy / sy
        stored = (left, top, side_x / sx, side_y / sy)
        if all(_fits(v, 0.0) for v in stored):
            fit = [min(max(v, 0.0), 100.0) for v in stored]
            return fit[0], fit[1], fit[2], fit[3], _checks.degrees(rotation + turn)
    raise ValueError(
        f"a box of {w:.4g} x {h:.4g} px rotated {rotation:g}° cannot be stored on a "
        f"{image_width} x {image_height} image: LS keeps width and height within 100% of the "
        "image's width and height and the corner (x, y) inside it, and no equivalent form "
        "(turned -90°, +90° or 180°) fits"
    )


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


def ocr_region(
    control: Control,
    *,
    x: float,
    y: float,
    width: float,
    height: float,
    label: str,
    page_index: int,
    text: str | None = None,
    rotation: float = 0.0,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled box on a page of a ``Pdf``, for an ``OcrLabels`` control.

    ``OcrLabels`` is a Label Studio Enterprise tag (the Community editor does not draw it);
    the format is that of label_studio_sdk's value model for it, which LS validates against.

    Args:
        control: an ``OcrLabels`` control.
        x: left edge, % of the page width.
        y: top edge, % of the page height.
        width: % of the page width, > 0, ``x + width <= 100``.
        height: % of the page height, > 0, ``y + height <= 100``.
        label: one of the control's labels.
        page_index: the page, 0 for the first.
        text: the text the box covers (``ocrtext``), if known.
        rotation: degrees clockwise around ``(x, y)``; normalised to [0, 360).
        score: confidence in [0, 1].
        to_name: the ``Pdf`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        An ``ocrlabels`` region with value ``{x, y, width, height, rotation, pageIndex,
        [ocrtext,] ocrlabels}``.
    """
    _checks.require_tag(control, "ocr_region", "OcrLabels")
    left, top = _checks.percent(x, "x"), _checks.percent(y, "y")
    box_width = _checks.percent(left + _checks.positive(width, "width"), "x + width") - left
    box_height = _checks.percent(top + _checks.positive(height, "height"), "y + height") - top
    value: dict[str, object] = {
        "x": left,
        "y": top,
        "width": box_width,
        "height": box_height,
        "rotation": _checks.degrees(rotation),
        "pageIndex": _checks.integer(page_index, "page_index"),
    }
    if text is not None:
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {text!r}")
        value["ocrtext"] = text
    value.update(_checks.labels_value(control, label))
    return make_region(control, value, score=score, to_name=to_name, region_id=region_id)
