"""prelabel-yolo: ultralytics YOLO detection, segmentation, pose and classification for Label Studio."""

from prelabel_yolo.backend import YoloBackend

__all__ = ["YoloBackend"]
