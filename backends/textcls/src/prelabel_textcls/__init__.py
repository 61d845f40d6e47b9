"""prelabel-textcls: text classification for Label Studio with scikit-learn."""

from prelabel_textcls.backend import TextClassifierBackend

__all__ = ["TextClassifierBackend"]
