"""Loading token-classification models, once per process.

A model is named by a Hugging Face id (``dslim/bert-base-NER``: from the local Hugging Face
cache, downloaded into it unless ``HF_HUB_OFFLINE=1``) or by a directory written with
``save_pretrained`` (fine-tuned versions are such directories): an absolute path, or a path
relative to ``PRELABEL_MODEL_DIR``, which ``..`` cannot leave. Base models are loaded once per
process and shared by every project; fine-tuned ones stay in an LRU of bounded size.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel import BackendLoadError
from prelabel_ner.tags import TagSet

__all__ = [
    "LoadedModel",
    "ModelCache",
    "open_model",
    "open_pretrained",
    "resolve_source",
]

log = logging.getLogger(__name__)

# tokenizer.model_max_length is a huge sentinel when a tokenizer declares no limit.
_NO_LIMIT = 1_000_000


@dataclass
class LoadedModel:
    """A token-classification model ready for inference.

    Attributes:
        key: what it was loaded from (a Hugging Face id or a directory).
        model: the ``transformers`` model, in eval mode on its device.
        tokenizer: a private copy of the fast tokenizer's ``tokenizers.Tokenizer`` with no
            truncation or padding (windows are cut by :mod:`prelabel_ner.inference`).
        tagset: the model's classes read as tags.
        window: content tokens per window (the model's limit less its special tokens).
        prefix: special-token ids that open every sequence (``[CLS]``).
        suffix: special-token ids that close it (``[SEP]``).
        pad_id: the padding token id.
    """

    key: str
    model: Any
    tokenizer: Any
    tagset: TagSet
    window: int
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pad_id: int

    @property
    def device(self) -> Any:
        """The torch device the model runs on."""
        return next(self.model.parameters()).device


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _not_found(name: str, exc: Exception) -> BackendLoadError:
    from huggingface_hub import constants

    if _offline():
        why = (
            f"it is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and downloads are "
            "off (HF_HUB_OFFLINE=1). Download it on a machine with network "
            f"(`hf download {name}`) and copy that cache here (or set HF_HOME), or save the "
            "model with save_pretrained() into a directory and name that directory instead"
        )
    else:
        why = f"{type(exc).__name__}: {exc}"
    return BackendLoadError(f"Could not load the model {name!r}: {why}.")


def resolve_source(name: str, home: Path) -> str:
    """The directory or Hugging Face id to load the model called ``name`` from.

    Args:
        name: an absolute directory, a directory relative to ``home``, or a Hugging Face id
            (what a relative name is when ``home`` has no such directory).
        home: the weights root (``PRELABEL_MODEL_DIR``).

    Raises:
        BackendLoadError: the name is empty, an absolute path that is not a directory, or a
            relative path leading out of ``home``.
    """
    name = name.strip()
    if not name:
        raise BackendLoadError("An empty model name was configured (PRELABEL_NER_MODEL/ENCODER).")
    path = Path(name).expanduser()
    if path.is_absolute():
        if not path.is_dir():
            raise BackendLoadError(f"The model directory {name!r} does not exist.")
        return str(path)
    base = home.resolve()
    candidate = (base / path).resolve()
    if not candidate.is_relative_to(base):
        raise BackendLoadError(
            f"Refusing model path {name!r}: relative paths are read only inside "
            f"PRELABEL_MODEL_DIR ({base})."
        )
    return str(candidate) if candidate.is_dir() else name


def open_pretrained(source: str) -> tuple[Any, Any]:
    """``(tokenizer, model)`` from a directory or Hugging Face id (see :func:`resolve_source`),
    with errors that say where the files go. An encoder gets a fresh token-classification head."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForTokenClassification.from_pretrained(source)
    except (OSError, ValueError) as exc:  # missing files, unknown ids, foreign checkpoints
        raise _not_found(source, exc) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise BackendLoadError(
            f"The model {source!r} has no fast tokenizer (tokenizer.json); the ner backend needs "
            "one for character offsets. Convert it with transformers and save it again."
        )
    return tokenizer, model


def _template(tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens around a single sequence, read off a one-token probe."""
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a", add_special_tokens=True).ids
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return tuple(full[:start]), tuple(full[start + len(plain) :])
    return (), ()


def prepare(key: str, tokenizer: Any, model: Any, *, max_length: int, device: str) -> LoadedModel:
    """Wrap a loaded tokenizer and model for inference (eval mode, on ``device``)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    # Some tokenizer.json files pad or truncate every sequence (to 128 tokens for
    # all-MiniLM-L6-v2); windows and padding are ours to choose.
    backend.no_truncation()
    backend.no_padding()
    prefix, suffix = _template(backend)
    limits = [max_length, getattr(model.config, "max_position_embeddings", None) or _NO_LIMIT]
    if 0 < int(getattr(tokenizer, "model_max_length", _NO_LIMIT) or _NO_LIMIT) < _NO_LIMIT:
        limits.append(int(tokenizer.model_max_length))
    window = min(limits) - len(prefix) - len(suffix)
    if window < 1:
        raise BackendLoadError(f"The model {key!r} takes sequences too short to hold any text.")
    model.eval()
    model.to(_device(device))
    return LoadedModel(
        key=key,
        model=model,
        tokenizer=backend,
        tagset=TagSet.from_labels(model.config.id2label),
        window=window,
        prefix=prefix,
        suffix=suffix,
        pad_id=int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
    )


def open_model(name: str, *, max_length: int, device: str) -> LoadedModel:
    """Load a trained token classifier for inference from a directory or Hugging Face id.

    Raises:
        BackendLoadError: the model cannot be found or loaded, has no fast tokenizer, or is
            an encoder without a trained token-classification head.
    """
    tokenizer, model = open_pretrained(name)
    architectures = getattr(model.config, "architectures", None) or []
    if not any(a.endswith("ForTokenClassification") for a in architectures):
        raise BackendLoadError(
            f"The model {name!r} is not a token-classification model (architectures: "
            f"{', '.join(architectures) or 'none'}); a pretrained encoder belongs in "
            "PRELABEL_NER_ENCODER, which projects fine-tune from."
        )
    loaded = prepare(name, tokenizer, model, max_length=max_length, device=device)
    log.info("Loaded %s (%d tags, window %d tokens)", name, len(loaded.tagset.tags), loaded.window)
    return loaded


def _device(name: str) -> Any:
    import torch

    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ModelCache:
    """Loaded models: base models for the whole process, fine-tuned ones in an LRU.

    Args:
        max_tuned: how many fine-tuned models stay loaded.
    """

    def __init__(self, max_tuned: int) -> None:
        self.max_tuned = max_tuned
        self._base: dict[tuple[str, int, str], LoadedModel] = {}
        self._tuned: OrderedDict[tuple[Path, int, str], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def base(self, name: str, *, max_length: int, device: str) -> LoadedModel:
        """The model called ``name``, loaded on first use (see :func:`open_model`)."""
        key = (name, max_length, device)
        with self._lock:
            found = self._base.get(key)
            if found is None:
                # Loading under the lock: two requests must not each load a copy.
                found = self._base[key] = open_model(name, max_length=max_length, device=device)
            return found

    def tuned(self, path: Path, *, max_length: int, device: str) -> LoadedModel:
        """A version directory written by ``fit`` (trusted: under the project's store)."""
        key = (path, max_length, device)
        with self._lock:
            found = self._tuned.get(key)
            if found is not None:
                self._tuned.move_to_end(key)
                return found
            found = self._tuned[key] = open_model(str(path), max_length=max_length, device=device)
            while len(self._tuned) > self.max_tuned:
                evicted, _ = self._tuned.popitem(last=False)
                log.debug("Unloaded fine-tuned model %s (LRU)", evicted[0])
            return found
