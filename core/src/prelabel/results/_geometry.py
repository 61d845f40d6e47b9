"""Builders for image regions other than boxes: polygons, keypoints, ellipses, brush masks.

LS stores image coordinates as percentages of the image's natural size (``original_width``
x ``original_height``, after EXIF orientation), which every image region also carries. The
``*_from_pixels`` variants convert from model pixel output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import image_region
from prelabel.results._prediction import Region
from prelabel.results.brush import mask_to_rle

__all__ = [
    "brush",
    "ellipse",
    "keypoint",
    "keypoint_from_pixels",
    "polygon",
    "polygon_from_pixels",
]


def polygon(
    control: Control,
    points: Sequence[tuple[float, float]],
    *,
    image_size: tuple[int, int],
    label: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A closed polygon in percentages, for a ``PolygonLabels`` or ``Polygon`` control.

    Args:
        control: a ``PolygonLabels`` (``label`` required) or ``Polygon`` control.
        points: at least 3 ``(x, y)`` vertices, % of the image width and height.
        image_size: the image's natural ``(width, height)`` in pixels.
        label: one of the control's labels, or ``None`` for ``Polygon``.
        score: confidence in [0, 1].
        to_name: the ``Image`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A region with value ``{points, closed[, polygonlabels]}``.
    """
    _checks.require_tag(control, "polygon", "PolygonLabels", "Polygon")
    size = _checks.image_size(image_size)
    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(points)}")
    vertices = []
    for index, point in enumerate(points):
        if len(point) != 2:
            raise ValueError(f"point {index} must be (x, y), got {point!r}")
        vertices.append(
            [
                _checks.percent(point[0], f"point {index} x"),
                _checks.percent(point[1], f"point {index} y"),
            ]
        )
    value = {"points": vertices, "closed": True, **_checks.labels_value(control, label)}
    return image_region(control, value, size, score, to_name, region_id)


def polygon_from_pixels(
    control: Control,
    points_px: Sequence[tuple[float, float]],
    *,
    image_size: tuple[int, int],
    label: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A polygon from pixel vertices; arguments otherwise as for :func:`polygon`."""
    width, height = _checks.image_size(image_size)
    points = [
        (_pixel(p, 0, "x") / width * 100.0, _pixel(p, 1, "y") / height * 100.0) for p in points_px
    ]
    return polygon(
        control,
        points,
        image_size=image_size,
        label=label,
        score=score,
        to_name=to_name,
        region_id=region_id,
    )


def keypoint(
    control: Control,
    *,
    x: float,
    y: float,
    image_size: tuple[int, int],
    label: str | None = None,
    width: float = 0.5,
    parent_id: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A point in percentages, for a ``KeyPointLabels`` or ``KeyPoint`` control.

    Args:
        control: a ``KeyPointLabels`` (``label`` required) or ``KeyPoint`` control.
        x: % of the image width.
        y: % of the image height.
        image_size: the image's natural ``(width, height)`` in pixels.
        label: one of the control's labels, or ``None`` for ``KeyPoint``.
        width: display size of the dot, % of the image width (cosmetic).
        parent_id: id of the region this point belongs to (e.g. a person's box).
        score: confidence in [0, 1].
        to_name: the ``Image`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A region with value ``{x, y, width[, keypointlabels]}``.
    """
    _checks.require_tag(control, "keypoint", "KeyPointLabels", "KeyPoint")
    size = _checks.image_size(image_size)
    value = {
        "x": _checks.percent(x, "x"),
        "y": _checks.percent(y, "y"),
        "width": _checks.positive(width, "width"),
        **_checks.labels_value(control, label),
    }
    parent = {} if parent_id is None else {"parentID": parent_id}
    return image_region(control, value, size, score, to_name, region_id, parent)


def keypoint_from_pixels(
    control: Control,
    *,
    x: float,
    y: float,
    image_size: tuple[int, int],
    label: str | None = None,
    width: float = 0.5,
    parent_id: str | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A point from pixel coordinates; arguments otherwise as for :func:`keypoint`."""
    image_width, image_height = _checks.image_size(image_size)
    return keypoint(
        control,
        x=_checks.finite(x, "x") / image_width * 100.0,
        y=_checks.finite(y, "y") / image_height * 100.0,
        image_size=image_size,
        label=label,
        width=width,
        parent_id=parent_id,
        score=score,
        to_name=to_name,
        region_id=region_id,
    )


def ellipse(
    control: Control,
    *,
    x: float,
    y: float,
    radius_x: float,
    radius_y: float,
    image_size: tuple[int, int],
    label: str | None = None,
    rotation: float = 0.0,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """An ellipse in percentages, for an ``EllipseLabels`` or ``Ellipse`` control.

    Args:
        control: an ``EllipseLabels`` (``label`` required) or ``Ellipse`` control.
        x: centre, % of the image width.
        y: centre, % of the image height.
        radius_x: % of the image width, > 0 and at most 50 (LS caps radii at 50).
        radius_y: % of the image height, > 0 and at most 50.
        image_size: the image's natural ``(width, height)`` in pixels.
        label: one of the control's labels, or ``None`` for ``Ellipse``.
        rotation: degrees clockwise around the centre; normalised to [0, 360).
        score: confidence in [0, 1].
        to_name: the ``Image`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A region with value ``{x, y, radiusX, radiusY, rotation[, ellipselabels]}``.
    """
    _checks.require_tag(control, "ellipse", "EllipseLabels", "Ellipse")
    size = _checks.image_size(image_size)
    value = {
        "x": _checks.percent(x, "x"),
        "y": _checks.percent(y, "y"),
        "radiusX": _radius(radius_x, "radius_x"),
        "radiusY": _radius(radius_y, "radius_y"),
        "rotation": _checks.degrees(rotation),
        **_checks.labels_value(control, label),
    }
    return image_region(control, value, size, score, to_name, region_id)


def brush(
    control: Control,
    mask: npt.ArrayLike,
    *,
    label: str | None = None,
    image_size: tuple[int, int] | None = None,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A mask, for a ``BrushLabels`` or ``Brush`` control.

    Args:
        control: a ``BrushLabels`` (``label`` required) or ``Brush`` control.
        mask: rows x columns, at the image's natural size (see
            :func:`~prelabel.results.mask_to_rle` for the accepted dtypes).
        label: one of the control's labels, or ``None`` for ``Brush``.
        image_size: the image's natural ``(width, height)``; when given, the mask must match
            it (a mask at the model's input size is the classic brush bug).
        score: confidence in [0, 1].
        to_name: the ``Image`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A region with value ``{format: "rle", rle, [brushlabels]}``; ``original_width`` and
        ``original_height`` are the mask's columns and rows.
    """
    _checks.require_tag(control, "brush", "BrushLabels", "Brush")
    labels = _checks.labels_value(control, label)
    pixels = np.asarray(mask)
    rle = mask_to_rle(pixels)
    rows, columns = pixels.shape
    if rows == 0 or columns == 0:
        raise ValueError(f"mask has no pixels (shape {pixels.shape})")
    if image_size is not None and _checks.image_size(image_size) != (columns, rows):
        raise ValueError(
            f"mask is {columns}x{rows} (width x height) but the image is "
            f"{image_size[0]}x{image_size[1]}; resize the mask to the image's natural size"
        )
    value = {"format": "rle", "rle": rle, **labels}
    return image_region(control, value, (columns, rows), score, to_name, region_id)


def _radius(value: float, what: str) -> float:
    # label_studio_sdk's EllipseValue caps radiusX and radiusY at 50 (% of the image side).
    radius = _checks.positive(value, what)
    if radius > 50.0 + _checks.PERCENT_TOLERANCE:
        raise ValueError(f"{what} must be at most 50 (% of the image side), got {radius}")
    return min(radius, 50.0)


def _pixel(point: tuple[float, float], axis: int, what: str) -> float:
    if len(point) != 2:
        raise ValueError(f"points must be (x, y) pairs, got {point!r}")
    return _checks.finite(point[axis], what)
