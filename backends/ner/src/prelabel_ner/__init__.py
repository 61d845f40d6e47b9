"""prelabel-ner: named-entity recognition for Label Studio with transformers."""

from prelabel_ner.backend import NerBackend

__all__ = ["NerBackend"]
