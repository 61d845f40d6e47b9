"""Region builders: one function per LS result type, bound to the control it fills.

Each builder takes the target :class:`~prelabel.config.Control` and returns a
:class:`~prelabel.results.Region` in LS's own units, after checking that the control's tag fits,
that labels belong to it, that coordinates are in range and that the score is in [0, 1]; any
violation is a backend bug and raises ``ValueError`` naming the control and the allowed values.
``to_name`` defaults to the control's first ``toName``. Regions that LS can select or link
(spans, image and video regions) get a fresh id unless ``region_id`` is given.
"""

from __future__ import annotations

from prelabel.results._classification import choices, number, rating, taxonomy, textarea
from prelabel.results._geometry import (
    brush,
    ellipse,
    keypoint,
    keypoint_from_pixels,
    polygon,
    polygon_from_pixels,
)
from prelabel.results._rectangles import rectangle, rectangle_from_xywhr, rectangle_from_xyxy
from prelabel.results._text import hypertext_span, span, utf16_offsets
from prelabel.results._video import Keyframe, video_rectangle

__all__ = [
    "Keyframe",
    "brush",
    "choices",
    "ellipse",
    "hypertext_span",
    "keypoint",
    "keypoint_from_pixels",
    "number",
    "polygon",
    "polygon_from_pixels",
    "rating",
    "rectangle",
    "rectangle_from_xywhr",
    "rectangle_from_xyxy",
    "span",
    "taxonomy",
    "textarea",
    "utf16_offsets",
    "video_rectangle",
]
