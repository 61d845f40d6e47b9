"""Offline stand-ins for tests, benchmarks and ``prelabel check sam``: small SAM checkpoints
built locally with random weights, synthetic images, and the conformance scenarios.

No published SAM weights can be fetched here; the shapes below go through the same loading
path as the official checkpoints (see :mod:`prelabel_sam.model`).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from prelabel.testing import Scenario

__all__ = [
    "BRUSH_CONFIG",
    "POLYGON_CONFIG",
    "click",
    "conformance_scenarios",
    "data_uri",
    "rectangle",
    "save_checkpoint",
    "shapes_png",
]

#: ``segment_anything.build_sam._build_sam`` arguments: a tiny encoder (``set_image`` takes
#: about 0.25 s on a CPU core), and the encoder of the official ``vit_b`` checkpoint.
ENCODERS: dict[str, dict[str, Any]] = {
    "tiny": {
        "encoder_embed_dim": 64,
        "encoder_depth": 2,
        "encoder_num_heads": 2,
        "encoder_global_attn_indexes": [1],
    },
    "vit_b": {
        "encoder_embed_dim": 768,
        "encoder_depth": 12,
        "encoder_num_heads": 12,
        "encoder_global_attn_indexes": [2, 5, 8, 11],
    },
}

_LABELS = '<Label value="Car"/><Label value="Person"/>'
_PROMPTS = (
    f'<KeyPointLabels name="kp" toName="image" smart="true">{_LABELS}</KeyPointLabels>'
    f'<RectangleLabels name="box" toName="image" smart="true">{_LABELS}</RectangleLabels>'
)
BRUSH_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    f'<BrushLabels name="mask" toName="image">{_LABELS}</BrushLabels>{_PROMPTS}</View>'
)
POLYGON_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    f'<PolygonLabels name="outline" toName="image">{_LABELS}</PolygonLabels>{_PROMPTS}</View>'
)


def save_checkpoint(path: Path, encoder: str = "tiny", seed: int = 0) -> Path:
    """Build a SAM with random weights and ``encoder``'s shape; save its state dict at ``path``."""
    import torch
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(seed)
    sam = _build_sam(**ENCODERS[encoder])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sam.state_dict(), path)
    return path


def shapes_png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG of a bright rectangle and a disc on a noisy dark background."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    pixels[height // 5 : height // 2, width // 6 : width // 2] = (230, 40, 40)
    yy, xx = np.mgrid[:height, :width]
    disc = (xx - width * 0.7) ** 2 + (yy - height * 0.65) ** 2 < (min(width, height) * 0.2) ** 2
    pixels[disc] = (40, 40, 230)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """``png`` as a ``data:`` URI, a task data value the media resolver reads offline."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _smart(
    kind: str, from_name: str, value: dict[str, Any], size: tuple[int, int]
) -> dict[str, Any]:
    """A smart region as the editor sends it in ``params.context.result`` (protocol §5)."""
    return {
        "id": f"{from_name}-{value['x']}-{value['y']}",
        "from_name": from_name,
        "to_name": "image",
        "type": kind,
        "origin": "manual",
        "original_width": size[0],
        "original_height": size[1],
        "image_rotation": 0,
        "value": value,
    }


def click(
    x: float,
    y: float,
    *,
    positive: bool = True,
    label: str = "Car",
    size: tuple[int, int] = (0, 0),
    from_name: str = "kp",
) -> dict[str, Any]:
    """A smart keypoint click at ``(x, y)`` percent; ``positive=False`` for a negative one."""
    value = {"x": x, "y": y, "width": 0.5, "keypointlabels": [label]}
    return {**_smart("keypointlabels", from_name, value, size), "is_positive": positive}


def rectangle(
    x: float,
    y: float,
    width: float,
    height: float,
    *,
    label: str = "Car",
    rotation: float = 0.0,
    size: tuple[int, int] = (0, 0),
    from_name: str = "box",
) -> dict[str, Any]:
    """A smart rectangle in percent, rotated ``rotation`` degrees around its top-left corner."""
    value = {
        "x": x,
        "y": y,
        "width": width,
        "height": height,
        "rotation": rotation,
        "rectanglelabels": [label],
    }
    return _smart("rectanglelabels", from_name, value, size)


def conformance_scenarios() -> list[Scenario]:
    """Brush and polygon configs; clicks and a box; one task's image is unreadable."""
    from prelabel.testing import Scenario

    sizes = [(96, 64), (80, 80)]
    tasks: list[dict[str, Any]] = [
        {"id": i + 1, "data": {"image": data_uri(shapes_png(w, h, seed=i))}}
        for i, (w, h) in enumerate(sizes)
    ]
    tasks.append({"id": 3, "data": {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}})
    interaction = [
        click(30.0, 35.0, size=sizes[0]),
        click(70.0, 65.0, positive=False, size=sizes[0]),
        rectangle(10.0, 15.0, 40.0, 30.0, label="Person", size=sizes[0]),
    ]
    return [
        Scenario(label_config=BRUSH_CONFIG, tasks=tasks, interaction=interaction),
        Scenario(label_config=POLYGON_CONFIG, tasks=tasks, interaction=interaction),
    ]
