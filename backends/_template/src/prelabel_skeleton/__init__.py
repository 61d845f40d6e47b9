"""prelabel-skeleton: a prelabel backend for Label Studio."""

from prelabel_skeleton.backend import SkeletonBackend

__all__ = ["SkeletonBackend"]
