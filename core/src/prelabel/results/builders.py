"""Region builders: one function per LS result type, bound to the control it fills.

Each builder takes the target :class:`~prelabel.config.Control` and returns a
:class:`~prelabel.results.Region` in LS's own units, after checking that the control's tag
and object fit, that labels belong to it (any label for labels from task data), that
coordinates are in the range LS accepts and that the score is in [0, 1]; any violation is a
backend bug and raises ``ValueError`` naming the control and the allowed values. ``to_name``
defaults to the control's first ``toName``. Regions that LS can select or link (spans, image
and video regions, chat messages) get a fresh id unless ``region_id`` is given; results of a
``perRegion`` control take the id of the ``region=`` they describe.
"""

from __future__ import annotations

from prelabel.results._attached import region_labels
from prelabel.results._chat import chat_message
from prelabel.results._classification import choices, number, rating, taxonomy, textarea
from prelabel.results._comparison import pairwise, ranker
from prelabel.results._geometry import (
    brush,
    ellipse,
    keypoint,
    keypoint_from_pixels,
    polygon,
    polygon_from_pixels,
)
from prelabel.results._rectangles import (
    ocr_region,
    rectangle,
    rectangle_from_xywhr,
    rectangle_from_xyxy,
)
from prelabel.results._text import hypertext_span, offsets_from_utf16, paragraph_span, span
from prelabel.results._timed import audio_span, timeseries_span
from prelabel.results._video import Keyframe, timeline_span, video_rectangle

__all__ = [
    "Keyframe",
    "audio_span",
    "brush",
    "chat_message",
    "choices",
    "ellipse",
    "hypertext_span",
    "keypoint",
    "keypoint_from_pixels",
    "number",
    "ocr_region",
    "offsets_from_utf16",
    "pairwise",
    "paragraph_span",
    "polygon",
    "polygon_from_pixels",
    "ranker",
    "rating",
    "rectangle",
    "rectangle_from_xywhr",
    "rectangle_from_xyxy",
    "region_labels",
    "span",
    "taxonomy",
    "textarea",
    "timeline_span",
    "timeseries_span",
    "video_rectangle",
]
