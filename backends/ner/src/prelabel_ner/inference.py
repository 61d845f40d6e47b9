"""Running a token classifier over many texts: windows, length-sorted batches, word probabilities.

Each text is tokenized once, whole. A text longer than the model's window is cut into windows
that overlap by ``overlap`` tokens; every token takes its probabilities from the window in
which it sits farthest from a cut (the overlap is split at its middle), so each token is
classified exactly once, with context on both sides, and entities are decoded afterwards over
the whole text: none is lost or doubled at a window border. Windows from all texts are sorted
by length and run in batches, so padding stays small.

A word (the tokenizer's pre-tokenization unit) takes the probabilities of its first token, the
convention token-classification models are trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prelabel_ner.models import LoadedModel

__all__ = ["TaggedText", "Window", "tag_texts", "windows", "word_spans"]


@dataclass(frozen=True)
class TaggedText:
    """A text's words and the model's class probabilities for each.

    Attributes:
        starts: each word's first character (code points).
        ends: each word's end (exclusive).
        probabilities: ``(words, classes)`` class probabilities.
        tokens: how many tokens the text has (without special tokens).
    """

    starts: np.ndarray
    ends: np.ndarray
    probabilities: np.ndarray
    tokens: int


@dataclass(frozen=True)
class Window:
    """Tokens ``start..end`` of a text run together; tokens ``keep_from..keep_to`` are kept."""

    text: int
    start: int
    end: int
    keep_from: int
    keep_to: int


def windows(text: int, length: int, size: int, overlap: int) -> list[Window]:
    """Cut ``length`` tokens into windows of at most ``size`` sharing ``overlap`` tokens.

    The last window ends at the text's end (it may share more than ``overlap`` tokens with
    the one before); each shared stretch is split at its middle between the two windows.
    """
    if length <= 0:
        return []
    overlap = max(0, min(overlap, size // 2))
    step = size - overlap
    spans: list[tuple[int, int]] = []
    start = 0
    while start + size < length:
        spans.append((start, start + size))
        start += step
    spans.append((max(0, length - size), length))
    out: list[Window] = []
    for i, (a, b) in enumerate(spans):
        keep_from = a if i == 0 else (a + spans[i - 1][1]) // 2
        keep_to = b if i == len(spans) - 1 else (spans[i + 1][0] + b) // 2
        out.append(Window(text, a, b, keep_from, keep_to))
    return out


def tag_texts(
    model: LoadedModel, texts: Sequence[str], *, batch_size: int, overlap: int
) -> list[TaggedText]:
    """Class probabilities for every word of ``texts``, in one length-sorted batched pass."""
    import torch

    encodings = model.tokenizer.encode_batch(list(texts), add_special_tokens=False)
    classes = len(model.tagset.tags)
    token_probabilities = [np.zeros((len(e.ids), classes), dtype=np.float32) for e in encodings]
    work = [
        w for i, e in enumerate(encodings) for w in windows(i, len(e.ids), model.window, overlap)
    ]
    work.sort(key=lambda w: w.end - w.start, reverse=True)
    prefix, suffix = list(model.prefix), list(model.suffix)
    with torch.inference_mode():
        for first in range(0, len(work), batch_size):
            batch = work[first : first + batch_size]
            longest = max(w.end - w.start for w in batch) + len(prefix) + len(suffix)
            ids = torch.full((len(batch), longest), model.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, w in enumerate(batch):
                sequence = prefix + encodings[w.text].ids[w.start : w.end] + suffix
                ids[row, : len(sequence)] = torch.tensor(sequence)
                mask[row, : len(sequence)] = 1
            logits = model.model(
                input_ids=ids.to(model.device), attention_mask=mask.to(model.device)
            ).logits
            probabilities = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for row, w in enumerate(batch):
                offset = len(prefix) - w.start
                token_probabilities[w.text][w.keep_from : w.keep_to] = probabilities[
                    row, w.keep_from + offset : w.keep_to + offset
                ]
    return [_tagged(e, p) for e, p in zip(encodings, token_probabilities, strict=True)]


def word_spans(encoding: Any) -> tuple[list[int], list[int], list[int]]:
    """Words of a ``tokenizers`` encoding: ``(starts, ends, first token index)`` of each.

    A word spans its tokens' characters; tokens without a word or without characters (special
    or empty tokens) belong to none.
    """
    starts: list[int] = []
    ends: list[int] = []
    firsts: list[int] = []
    previous: int | None = None
    for index, (word, (start, end)) in enumerate(
        zip(encoding.word_ids, encoding.offsets, strict=True)
    ):
        if word is None or end <= start:
            continue
        if word != previous or not firsts:
            starts.append(start)
            ends.append(end)
            firsts.append(index)
            previous = word
        else:
            ends[-1] = max(ends[-1], end)
    return starts, ends, firsts


def _tagged(encoding: Any, probabilities: np.ndarray) -> TaggedText:
    starts, ends, firsts = word_spans(encoding)
    return TaggedText(
        starts=np.asarray(starts, dtype=np.int64),
        ends=np.asarray(ends, dtype=np.int64),
        probabilities=probabilities[firsts],
        tokens=len(probabilities),
    )
