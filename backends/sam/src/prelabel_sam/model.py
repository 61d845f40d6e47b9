"""segment-anything checkpoints: loading, image embeddings, and masks from prompts.

A checkpoint is loaded as tensors only (``torch.load(weights_only=True)``: no pickled code
runs), and the image encoder's shape is read from it: the official ``vit_h``, ``vit_l`` and
``vit_b`` files, and any other ViT SAM built by ``segment_anything`` (fine-tuned, or a small
one for tests), load through the same path. Every import of torch and segment_anything is
inside a function: importing this module is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from prelabel import BackendLoadError

__all__ = [
    "WHERE_TO_GET",
    "Architecture",
    "Embedding",
    "SamModel",
    "architecture",
    "load_sam",
    "resolve_device",
]

log = logging.getLogger(__name__)

#: The official checkpoints, by encoder.
OFFICIAL = {
    "vit_h": "sam_vit_h_4b8939.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_b": "sam_vit_b_01ec64.pth",
}
_DOWNLOADS = "https://dl.fbaipublicfiles.com/segment_anything/"
WHERE_TO_GET = (
    "Download a segment-anything checkpoint into PRELABEL_MODEL_DIR, e.g. "
    + "; ".join(f"{kind}: {_DOWNLOADS}{name}" for kind, name in OFFICIAL.items())
    + " — or name another file there in PRELABEL_SAM_MODEL."
)
_IMAGE_SIZE = 1024  # segment_anything's encoder input; 16-pixel patches give a 64 x 64 grid
_GRID = _IMAGE_SIZE // 16


@dataclass(frozen=True)
class Architecture:
    """The image encoder's shape, as ``segment_anything.build_sam`` takes it."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]

    @property
    def name(self) -> str:
        """``vit_b``, ``vit_l``, ``vit_h``, or a description of a non-standard encoder."""
        for kind, shape in _STANDARD.items():
            if shape == self:
                return kind
        return f"vit-{self.embed_dim}x{self.depth}"


_STANDARD = {
    "vit_h": Architecture(1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": Architecture(1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": Architecture(768, 12, 12, (2, 5, 8, 11)),
}


def architecture(state: Mapping[str, Any]) -> Architecture:
    """Read the encoder's shape from a SAM state dict.

    The embedding width is the patch projection's; blocks with global attention have relative
    position tables over the whole 64 x 64 grid (``2 * 64 - 1`` rows), windowed ones over a
    window; a table's width is the attention head size.

    Raises:
        ValueError: ``state`` is not a segment-anything ViT state dict.
    """
    patch = state.get("image_encoder.patch_embed.proj.weight")
    if patch is None or len(patch.shape) != 4:
        raise ValueError("it has no image_encoder.patch_embed: not a segment-anything SAM")
    embed_dim = int(patch.shape[0])
    tables: list[tuple[int, ...]] = []
    while f"image_encoder.blocks.{len(tables)}.attn.rel_pos_h" in state:
        tables.append(tuple(state[f"image_encoder.blocks.{len(tables)}.attn.rel_pos_h"].shape))
    if not tables:
        raise ValueError("its image encoder has no attention blocks with relative positions")
    head_dim = int(tables[0][1])
    return Architecture(
        embed_dim=embed_dim,
        depth=len(tables),
        num_heads=embed_dim // head_dim,
        global_attn_indexes=tuple(i for i, shape in enumerate(tables) if shape[0] == 2 * _GRID - 1),
    )


@dataclass(frozen=True)
class Embedding:
    """An image encoded by SAM's image encoder: all the mask decoder needs of the image.

    Attributes:
        features: the ``1 x 256 x 64 x 64`` embedding tensor, on the model's device.
        original_size: the image's ``(height, width)``.
        input_size: its ``(height, width)`` resized for the encoder (longer side 1024).
    """

    features: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        """Memory the features take (on the model's device)."""
        return int(self.features.element_size() * self.features.nelement())

    @property
    def size(self) -> tuple[int, int]:
        """The image's ``(width, height)``."""
        return self.original_size[1], self.original_size[0]


@dataclass
class SamModel:
    """A loaded SAM and what it needs to encode images and decode masks.

    Thread-safe: inference reads the weights only, and every call gets its own predictor.
    """

    key: str
    sam: Any
    architecture: Architecture
    device: str

    @property
    def embedding_bytes(self) -> int:
        """Memory one image's embedding takes."""
        return 4 * 256 * _GRID * _GRID

    def embed(self, image_bgr: npt.NDArray[np.uint8]) -> Embedding:
        """Encode one ``height x width x 3`` BGR image (the expensive step: one encoder pass)."""
        from segment_anything import SamPredictor

        predictor = SamPredictor(self.sam)
        predictor.set_image(image_bgr, image_format="BGR")
        height, width = image_bgr.shape[:2]
        return Embedding(predictor.features, (int(height), int(width)), tuple(predictor.input_size))

    def segment(
        self,
        embedding: Embedding,
        points: Sequence[Sequence[float]],
        point_labels: Sequence[int],
        box: Sequence[float] | None,
    ) -> tuple[npt.NDArray[np.bool_], float]:
        """The best of SAM's three masks for the prompt, and its predicted IoU.

        Args:
            embedding: the image's embedding.
            points: clicks as ``(x, y)`` pixels of the original image.
            point_labels: 1 for a positive click, 0 for a negative one.
            box: ``[x0, y0, x1, y1]`` pixels, or ``None``.

        Returns:
            A ``height x width`` mask at the image's size and the model's IoU estimate for it.
        """
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        # SamPredictor.predict's steps, except that only the chosen mask is upscaled to the
        # image and copied out: the predictor does that for all three (~10 ms a click).
        sam = self.sam
        resize = ResizeLongestSide(sam.image_encoder.img_size)
        device = embedding.features.device
        with torch.inference_mode():
            point_prompt = None
            if len(points):
                coords = resize.apply_coords(
                    np.asarray(points, np.float64), embedding.original_size
                )
                point_prompt = (
                    torch.as_tensor(coords, dtype=torch.float, device=device)[None],
                    torch.as_tensor(np.asarray(point_labels), dtype=torch.int, device=device)[None],
                )
            box_prompt = None
            if box is not None:
                boxes = resize.apply_boxes(np.asarray([box], np.float64), embedding.original_size)
                box_prompt = torch.as_tensor(boxes, dtype=torch.float, device=device)
            sparse, dense = sam.prompt_encoder(points=point_prompt, boxes=box_prompt, masks=None)
            low_res, iou = sam.mask_decoder(
                image_embeddings=embedding.features,
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )
            best = int(iou[0].argmax())
            logits = sam.postprocess_masks(
                low_res[:, best : best + 1], embedding.input_size, embedding.original_size
            )
            mask: npt.NDArray[np.bool_] = (logits[0, 0] > sam.mask_threshold).cpu().numpy()
        return mask, float(iou[0, best])


def _load_state(path: str) -> Mapping[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors for a corrupt or foreign file
        raise BackendLoadError(
            f"Could not read SAM checkpoint {path}: {exc}. It should be a segment-anything "
            f"checkpoint. {WHERE_TO_GET}"
        ) from exc
    if not isinstance(state, Mapping):
        raise BackendLoadError(
            f"SAM checkpoint {path} holds a {type(state).__name__}, not a state dict. {WHERE_TO_GET}"
        )
    return state


def _few(keys: Sequence[str]) -> str:
    """``"3 weights (a, b, c)"``, listing at most three."""
    shown = ", ".join(keys[:3]) + (", …" if len(keys) > 3 else "")
    return f"{len(keys)} weights ({shown})" if keys else "no weights"


def resolve_device(device: str) -> str:
    """The torch device to run on: ``device`` as given, or CUDA when available and none given.

    Raises:
        BackendLoadError: an unknown device, or CUDA asked for and not available.
    """
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise BackendLoadError(
            f"PRELABEL_SAM_DEVICE={device!r} is not a torch device ('cpu', 'cuda', 'cuda:1')."
        ) from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise BackendLoadError(
            f"PRELABEL_SAM_DEVICE={device!r}, but torch sees no CUDA device "
            f"(torch {torch.__version__}); use 'cpu' or leave it empty."
        )
    return str(parsed)


def load_sam(path: str, device: str, on_block: Callable[[], None] | None = None) -> SamModel:
    """Load a segment-anything checkpoint onto ``device``.

    Args:
        path: the checkpoint file.
        device: a torch device (see :func:`resolve_device`).
        on_block: called before each encoder block runs (lets background encoding yield).

    Raises:
        BackendLoadError: the file is not a segment-anything checkpoint; the message names it
            and where to get one.
    """
    import torch
    from segment_anything.build_sam import _build_sam

    state = _load_state(path)
    try:
        shape = architecture(state)
    except ValueError as exc:
        raise BackendLoadError(f"SAM checkpoint {path}: {exc}. {WHERE_TO_GET}") from exc
    sam = _build_sam(
        encoder_embed_dim=shape.embed_dim,
        encoder_depth=shape.depth,
        encoder_num_heads=shape.num_heads,
        encoder_global_attn_indexes=list(shape.global_attn_indexes),
    )
    try:
        missing, unexpected = sam.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        raise BackendLoadError(f"SAM checkpoint {path} does not fit its model: {exc}") from exc
    if missing or unexpected:
        raise BackendLoadError(
            f"SAM checkpoint {path} does not fit its model: {_few(missing)} missing, "
            f"{_few(unexpected)} unexpected. {WHERE_TO_GET}"
        )
    sam.to(device).eval()
    if torch.device(device).type == "cpu":
        # A click is one pass of the mask decoder, whose two transposed convolutions
        # (upscaling the mask) took a third of it; oneDNN runs them faster channels-last.
        sam.mask_decoder.to(memory_format=torch.channels_last)
    if on_block is not None:
        for block in sam.image_encoder.blocks:
            block.register_forward_pre_hook(lambda *_: on_block())
    log.info("Loaded SAM %s (%s) on %s", path, shape.name, device)
    return SamModel(path, sam, shape, device)
