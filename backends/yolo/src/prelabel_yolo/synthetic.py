"""Synthetic images with known boxes (coloured rectangles on noise), as ``data:`` URIs.

Used by ``prelabel check yolo`` (no media server needed) and by the tests and benchmarks.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from prelabel.testing import Scenario

__all__ = [
    "COLOURS",
    "Shape",
    "box_result",
    "coco_scenario",
    "data_uri",
    "moving_box_video",
    "shapes_image",
]

#: Fill colour (RGB) of each shape class.
COLOURS = {"red": (230, 30, 30), "blue": (30, 30, 230)}


@dataclass(frozen=True)
class Shape:
    """A drawn rectangle: class name and pixel corners ``(x1, y1, x2, y2)``, x2/y2 exclusive."""

    label: str
    box: tuple[int, int, int, int]


def shapes_image(
    rng: np.random.Generator, width: int, height: int, labels: Sequence[str]
) -> tuple[bytes, list[Shape]]:
    """A PNG of dark noise with one filled rectangle per label, and the rectangles drawn.

    Rectangles take 1/5 to 1/3 of each side and may overlap (later ones on top).
    """
    from PIL import Image

    pixels = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    shapes: list[Shape] = []
    for label in labels:
        w = int(rng.integers(width // 5, width // 3))
        h = int(rng.integers(height // 5, height // 3))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        pixels[y : y + h, x : x + w] = COLOURS[label]
        shapes.append(Shape(label, (x, y, x + w, y + h)))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue(), shapes


def moving_box_video(
    rng: np.random.Generator,
    path: Path,
    *,
    frames: int,
    size: tuple[int, int],
    fps: float,
    start: tuple[int, int, int, int],
    step: tuple[float, float],
) -> list[tuple[int, int, int, int]]:
    """Write an MJPG ``.avi`` of a red rectangle moving over fresh dark noise each frame.

    Args:
        rng: noise source.
        path: where to write (``.avi``).
        frames: number of frames.
        size: ``(width, height)`` in pixels.
        fps: the file's frame rate.
        start: the rectangle on frame 0, pixel corners ``(x1, y1, x2, y2)``, x2/y2 exclusive.
        step: ``(dx, dy)`` pixels per frame.

    Returns:
        The rectangle drawn on each frame.
    """
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write MJPG video to {path}")
    drawn: list[tuple[int, int, int, int]] = []
    red_bgr = COLOURS["red"][::-1]
    try:
        for k in range(frames):
            dx, dy = round(step[0] * k), round(step[1] * k)
            box = (start[0] + dx, start[1] + dy, start[2] + dx, start[3] + dy)
            pixels = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
            pixels[box[1] : box[3], box[0] : box[2]] = red_bgr
            writer.write(pixels)
            drawn.append(box)
    finally:
        writer.release()
    return drawn


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,…`` for PNG bytes (core's media resolver decodes it)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def box_result(
    shapes: Sequence[Shape], size: tuple[int, int], control: str = "label", image: str = "image"
) -> list[dict[str, Any]]:
    """An LS annotation result with one ``rectanglelabels`` region per shape."""
    width, height = size
    return [
        {
            "id": f"r{i}",
            "from_name": control,
            "to_name": image,
            "type": "rectanglelabels",
            "original_width": width,
            "original_height": height,
            "value": {
                "x": s.box[0] / width * 100,
                "y": s.box[1] / height * 100,
                "width": (s.box[2] - s.box[0]) / width * 100,
                "height": (s.box[3] - s.box[1]) / height * 100,
                "rotation": 0,
                "rectanglelabels": [s.label],
            },
        }
        for i, s in enumerate(shapes)
    ]


COCO_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image" model_score_threshold="0.01">
    <Label value="Person" predicted_values="person"/>
    <Label value="Vehicle" predicted_values="car,truck,bus"/>
  </RectangleLabels>
</View>"""


def coco_scenario() -> Scenario:
    """Boxes for COCO detectors on synthetic images; one task's image is unreadable."""
    from prelabel.testing import Scenario, annotated_task

    rng = np.random.default_rng(7)
    images = [shapes_image(rng, 160, 120, ["red", "blue"]) for _ in range(6)]
    tasks: list[dict[str, Any]] = [
        {"id": i + 1, "data": {"image": data_uri(png)}} for i, (png, _) in enumerate(images[:2])
    ]
    tasks.append({"id": 3, "data": {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}})
    train = [
        annotated_task(
            10 + i,
            {"image": data_uri(png)},
            box_result(
                [Shape("Vehicle" if s.label == "red" else "Person", s.box) for s in shapes],
                (160, 120),
            ),
        )
        for i, (png, shapes) in enumerate(images)
    ]
    return Scenario(
        label_config=COCO_CONFIG,
        tasks=tasks,
        train_tasks=train,
        settings={"epochs": 1, "train_imgsz": 96, "imgsz": 160, "min_examples": 4},
    )
