"""The yolo backend's settings (``PRELABEL_YOLO_*``, or per project in LS's extra_params)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from prelabel import BackendSettings
from prelabel.settings import ServerOnly

__all__ = ["KINDS", "YoloSettings"]

#: Model kinds with a default model setting (``<kind>_model``).
KINDS = ("detect", "segment", "pose", "classify")


class YoloSettings(BackendSettings):
    """Options (env ``PRELABEL_YOLO_*`` or per project via LS's extra_params)."""

    detect_model: str = Field(
        default="yolov8n.pt", description="Default model for RectangleLabels."
    )
    segment_model: str = Field(
        default="yolov8n-seg.pt", description="Default model for PolygonLabels/BrushLabels."
    )
    pose_model: str = Field(default="yolov8n-pose.pt", description="Default for KeyPointLabels.")
    classify_model: str = Field(default="yolov8n-cls.pt", description="Default for Choices.")
    tracker: Literal["bytetrack", "botsort"] = Field(
        default="bytetrack", description="Default model_tracker of VideoRectangle controls."
    )
    video_stride: int = Field(
        default=1, ge=1, description="Run the model on every n-th video frame."
    )
    video_max_frames: int = Field(
        default=1000,
        ge=0,
        description="Most frames run per video; longer videos get a larger stride (0: no limit).",
    )
    preload: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["detect"],
        description="Kinds whose default model load at start (comma-separated; others load on first use).",
    )
    score_threshold: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Default model_score_threshold (ultralytics conf).",
    )
    uncertainty_floor: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Boxes between this and the threshold count toward uncertainty.",
    )
    iou: float = Field(default=0.7, gt=0.0, le=1.0, description="NMS IoU threshold.")
    max_det: int = Field(default=300, ge=1, description="Most regions per image and control.")
    imgsz: int = Field(default=640, ge=32, description="Inference image size.")
    batch_size: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        default="auto",
        description="Images per forward pass; auto: 1 on OpenVINO, 4 on PyTorch (raise it on a GPU).",
    )
    device: str = Field(default="", description="torch device ('cpu', '0'…); empty: auto.")
    # Server-only: it decides how the process loads every model.
    runtime: Annotated[Literal["auto", "torch", "openvino"], ServerOnly()] = Field(
        default="auto",
        description="Forward-pass engine: auto is OpenVINO on a CPU (about 2x PyTorch), else torch.",
    )
    tuned_cache_size: int = Field(
        default=4, ge=1, description="Fine-tuned per-project models kept in memory."
    )
    epochs: int = Field(default=30, ge=1, description="Fine-tuning epochs.")
    train_imgsz: int = Field(default=640, ge=32, description="Fine-tuning image size.")
    train_batch: int = Field(default=8, ge=1, description="Fine-tuning batch size.")
    min_examples: int = Field(default=4, ge=2, description="Fewest annotated images to train.")
    # Server-only: ultralytics reads paths from it (cfg, model, save_dir…).
    train_options: Annotated[dict[str, Any], ServerOnly()] = Field(
        default_factory=dict,
        description='Extra ultralytics train arguments as JSON, e.g. {"mosaic": 0, "lr0": 0.003}.',
    )

    @field_validator("preload", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
        return value
