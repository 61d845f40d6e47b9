"""prelabel-sam: interactive segment-anything for Label Studio, with cached image embeddings."""

from prelabel_sam.backend import SamBackend

__all__ = ["SamBackend"]
