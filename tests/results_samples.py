"""Sample results for every control of LS's official templates, made by prelabel's builders.

Shared by ``test_results_templates.py`` (checked with ``prelabel.validation``) and the e2e test
that has a real Label Studio validate them. The task text holds emoji, a combining mark, CJK
and right-to-left script, so that text spans test the offsets LS stores (code points).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from prelabel import results as R
from prelabel.config import Control, LabelConfig, ObjectTag
from prelabel.results import Keyframe, Region

TEMPLATES = sorted(
    Path(str(resources.files("prelabel.testing") / "fixtures" / "ls-templates")).glob("*.xml")
)

TEXT = "Ann 😀 met Zoe\u0308 in 北京: שלום!"
# "Ann " 0-3, the emoji 4, " met " 5-9, "Zoe" 10-12, the combining mark 13, " in " 14-17:
# the quote is at code points 18..20 (UTF-16 would put it at 19..21).
QUOTE, QUOTE_AT = "北京", 18
PHRASES = ["Hi 😀 there", "Where is Bob?"]
SIZE = (64, 48)


def label_of(control: Control) -> str:
    return control.label_names[0] if control.label_names else "from-task"


def sample_task(config: LabelConfig) -> dict[str, Any]:
    """Task data for the template: text for text objects, phrases, labels for dynamic ones."""
    data: dict[str, Any] = {key: "https://example.org/media" for key in config.data_keys()}
    for obj in config.objects.values():
        if obj.value_key and obj.tag in ("Text", "HyperText"):
            data[obj.value_key] = TEXT
        elif obj.value_key and obj.tag == "Paragraphs":
            data[obj.value_key] = [{"author": "a", "text": phrase} for phrase in PHRASES]
    for control in config.controls.values():
        key = control.attrs.get("value", "")[1:]
        if control.dynamic_labels:
            data[key] = [{"value": "from-task"}]
    return data


def _on(config: LabelConfig, obj: ObjectTag, *tags: str) -> Control | None:
    return next(
        (c for c in config.controls.values() if c.tag in tags and obj.name in c.to_name), None
    )


def _region_on(config: LabelConfig, obj: ObjectTag) -> list[Region]:
    """A region of ``obj`` for per-region controls to attach to, built by another control."""
    tool = _on(config, obj, "Rectangle", "RectangleLabels", "Labels", "TimeSeriesLabels", "Chat")
    assert tool is not None, f"no region-making control on {obj.name}"
    return sample_result(config, tool, to_name=obj.name)


def _span_on(control: Control, to_name: str | None) -> list[Region]:
    obj = control.object(to_name)
    label = label_of(control)
    if obj.tag == "Text":
        span = R.span(control, start=QUOTE_AT, end=QUOTE_AT + 2, label=label, source_text=TEXT)
        return [span]
    if obj.tag == "HyperText":
        return [
            R.hypertext_span(
                control,
                start="/text()[1]",
                end="/text()[1]",
                start_offset=QUOTE_AT,
                end_offset=QUOTE_AT + 2,
                text=QUOTE,
                label=label,
            )
        ]
    if obj.tag == "Audio":
        return [R.audio_span(control, start=0.5, end=2.0, label=label)]
    return []


def _labels(config: LabelConfig, control: Control, to_name: str | None) -> list[Region]:
    obj = control.object(to_name)
    if obj.tag == "Image":  # split format: the labels of an unlabelled tool's region
        tool = _on(config, obj, "Rectangle", "Polygon")
        assert tool is not None
        [box] = sample_result(config, tool)
        return [box, R.region_labels(control, box, label_of(control))]
    if obj.tag == "Video":  # a VideoRectangle's labels: they travel in its results
        box = _on(config, obj, "VideoRectangle")
        assert box is not None
        key = Keyframe(frame=1, x=10, y=10, width=20, height=30)
        return [
            R.video_rectangle(
                box,
                control,
                [key],
                label=label_of(control),
                frames_count=25,
                duration=1.0,
                framerate=25.0,
            )
        ]
    return _span_on(control, to_name)


def _image(config: LabelConfig, control: Control) -> list[Region]:
    label = label_of(control) if control.type.endswith("labels") else None
    kind = control.type.removesuffix("labels")
    if kind == "rectangle":
        return [R.rectangle(control, x=10, y=10, width=20, height=30, image_size=SIZE, label=label)]
    if kind == "polygon":
        points = [(10.0, 10.0), (50.0, 10.0), (30.0, 40.0)]
        return [R.polygon(control, points, image_size=SIZE, label=label)]
    if kind == "keypoint":
        return [R.keypoint(control, x=10, y=20, image_size=SIZE, label=label)]
    mask = np.zeros((SIZE[1], SIZE[0]), dtype=np.uint8)
    mask[5:10, 5:20] = 1
    return [R.brush(control, mask, label=label, image_size=SIZE)]


def _classification(config: LabelConfig, control: Control, to_name: str | None) -> list[Region]:
    region: Region | None = None
    base: list[Region] = []
    if control.per_region:
        base = _region_on(config, control.object(to_name))
        region = base[-1]
    kind = control.type
    if kind == "choices":
        made = R.choices(control, [label_of(control)], region=region)
    elif kind == "rating":
        made = R.rating(control, 1, region=region)
    elif kind == "taxonomy":
        made = R.taxonomy(control, [list(control.taxonomy_paths()[0])], region=region)
    else:
        made = R.textarea(control, ["a transcription"], region=region)
    return [*base, made]


BUILDERS: dict[str, Callable[[LabelConfig, Control, str | None], list[Region]]] = {
    "labels": _labels,
    "hypertextlabels": lambda config, c, to: _span_on(c, to),
    "paragraphlabels": lambda config, c, to: [
        R.paragraph_span(
            c, phrases=PHRASES, start=0, end=1, start_offset=3, end_offset=5, label=label_of(c)
        )
    ],
    "timeserieslabels": lambda config, c, to: [
        R.timeseries_span(
            c,
            start=datetime(2024, 1, 1, 12, 0) if c.object().attrs.get("timeFormat") else 1.0,
            end=datetime(2024, 1, 1, 12, 5) if c.object().attrs.get("timeFormat") else 3.0,
            label=label_of(c),
        )
    ],
    "timelinelabels": lambda config, c, to: [R.timeline_span(c, start=2, end=9, label=label_of(c))],
    "videorectangle": lambda config, c, to: _labels(
        config, _on(config, c.object(), "Labels") or c, c.object().name
    ),
    "ocrlabels": lambda config, c, to: [
        R.ocr_region(c, x=5, y=5, width=30, height=4, label=label_of(c), page_index=0, text="x")
    ],
    "pairwise": lambda config, c, to: [R.pairwise(c, "left")],
    "ranker": lambda config, c, to: [
        R.ranker(c, {c.buckets[0]: ["1"], "_": ["2"]} if c.buckets else ["2", "1"])
    ],
    "chatmessage": lambda config, c, to: [R.chat_message(c, role="user", content="Hello 😀")],
    **{
        kind: lambda config, c, to: _image(config, c)
        for kind in (
            "rectangle",
            "rectanglelabels",
            "polygon",
            "polygonlabels",
            "keypointlabels",
            "brushlabels",
        )
    },
    **{kind: _classification for kind in ("choices", "rating", "taxonomy", "textarea")},
}


def sample_result(
    config: LabelConfig, control: Control, to_name: str | None = None
) -> list[Region]:
    """Results for ``control``: its own last, after the region it needs (if any)."""
    return BUILDERS[control.type](config, control, to_name)


PAIRS = [
    (path, name) for path in TEMPLATES for name in LabelConfig.parse(path.read_text()).controls
]
