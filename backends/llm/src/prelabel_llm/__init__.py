"""prelabel-llm."""

from prelabel_llm.backend import LlmBackend

__all__ = ["LlmBackend"]
