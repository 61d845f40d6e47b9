"""Fine-tuning one control's token classifier on a project's annotated spans.

The starting point is the project's served version of the control (``job.base_dir``), else
the base NER model, else the pretrained encoder. The new model's classes are BIO tags over the
control's labels, in config order. Head rows carry over where the starting model already
predicts a label (through the control's ``LabelMap``: ``B-PER`` → ``B-Person``); labels it
lacks get fresh rows, so a base model grows to the project's label set without forgetting
what it knew. Spans become word labels through the tokenizer's offset mapping (the first token
of each word is labelled, the rest ignored by the loss, as at inference); long texts are cut
into the same overlapping windows as at inference.

By default the word-embedding matrix stays frozen: in a small pretrained encoder it is half the
parameters (and most of the optimizer's time), and a project's few hundred texts would only
over-fit it. A model trained from scratch needs it trained (``freeze_embeddings=False``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel import Control, LabelMap
from prelabel_ner.documents import Gold
from prelabel_ner.inference import windows, word_spans
from prelabel_ner.models import open_pretrained, prepare
from prelabel_ner.tags import OUTSIDE, TagSet, bio_tags

__all__ = [
    "IGNORE",
    "Example",
    "TrainOptions",
    "artifact_dir",
    "fine_tune",
    "grow_head",
    "word_labels",
]

log = logging.getLogger(__name__)

#: The label id the loss skips (special tokens, and tokens after a word's first).
IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One annotated text: its spans in code points."""

    text: str
    spans: list[Gold]


@dataclass(frozen=True)
class TrainOptions:
    """How to fine-tune (from the backend's settings)."""

    epochs: int
    batch_size: int
    learning_rate: float
    max_length: int
    overlap: int
    seed: int
    freeze_embeddings: bool = True


def artifact_dir(version: Path, control: str) -> Path:
    """Where a version keeps a control's model: its name, made safe for a file system."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", control)
    if safe != control or safe in ("", ".", ".."):
        safe = f"{safe}-{hashlib.sha256(control.encode()).hexdigest()[:8]}"
    return version / "controls" / safe


def word_labels(
    starts: Sequence[int], ends: Sequence[int], spans: Sequence[Gold], tag_ids: dict[str, int]
) -> list[int]:
    """BIO class ids for words ``[starts[i], ends[i])`` from labelled character spans.

    A word belongs to a span it overlaps; the first such word is ``B-``. Where spans overlap,
    the one that starts first (then the longer) wins: a token classifier tags one label per word.
    """
    labels = [tag_ids[OUTSIDE]] * len(starts)
    taken = [False] * len(starts)
    for start, end, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        words = [i for i in range(len(starts)) if starts[i] < end and ends[i] > start]
        if not words or any(taken[i] for i in words):
            continue
        for position, i in enumerate(words):
            labels[i] = tag_ids[f"{'B' if position == 0 else 'I'}-{label}"]
            taken[i] = True
    return labels


def grow_head(model: Any, source: TagSet, tags: list[str], control: Control, trained: bool) -> None:
    """Give ``model`` a classifier over ``tags``, keeping the rows it already has."""
    import torch

    old = model.classifier
    if not isinstance(old, torch.nn.Linear):
        raise TypeError(f"{type(model).__name__}.classifier is not a linear layer")
    new = torch.nn.Linear(old.in_features, len(tags))
    std = float(getattr(model.config, "initializer_range", 0.02))
    with torch.no_grad():
        new.weight.normal_(0.0, std)
        new.bias.zero_()
        if trained:
            kept = _inherited_rows(source, tags, control)
            for new_id, old_id in kept.items():
                new.weight[new_id] = old.weight[old_id]
                new.bias[new_id] = old.bias[old_id]
            log.info("ner: %d of %d classes start from the model's own", len(kept), len(tags))
    model.classifier = new.to(old.weight.device)
    model.num_labels = len(tags)
    model.config.num_labels = len(tags)
    model.config.id2label = dict(enumerate(tags))
    model.config.label2id = {tag: i for i, tag in enumerate(tags)}


def _inherited_rows(source: TagSet, tags: list[str], control: Control) -> dict[int, int]:
    """New class id → the source class predicting the same thing."""
    label_map = LabelMap.build(control, source.types)
    by_key = {(tag.prefix, tag.type): i for i, tag in enumerate(source.tags)}
    # A BIO B- is an S-/U- or B- elsewhere; an I- is an I-, E-/L- or (IO schemes) the bare type.
    fallbacks = {"B": ("B", "S", "I"), "I": ("I", "E", "B")}
    rows: dict[int, int] = {}
    for new_id, name in enumerate(tags):
        if name == OUTSIDE:
            if (OUTSIDE, "") in by_key:
                rows[new_id] = by_key[(OUTSIDE, "")]
            continue
        prefix, label = name.split("-", 1)
        for kind in (k for k in source.types if label_map.get(k) == label):
            match = next(
                (by_key[(p, kind)] for p in fallbacks[prefix] if (p, kind) in by_key), None
            )
            if match is not None:
                rows[new_id] = match
                break
    return rows


def _encode(
    prepared: Any, examples: Sequence[Example], tag_ids: dict[str, int], overlap: int
) -> list[tuple[list[int], list[int]]]:
    """Training sequences: token ids with special tokens, and one label per token."""
    encodings = prepared.tokenizer.encode_batch(
        [e.text for e in examples], add_special_tokens=False
    )
    sequences: list[tuple[list[int], list[int]]] = []
    prefix, suffix = list(prepared.prefix), list(prepared.suffix)
    for index, (example, encoding) in enumerate(zip(examples, encodings, strict=True)):
        starts, ends, firsts = word_spans(encoding)
        token_labels = [IGNORE] * len(encoding.ids)
        for first, label in zip(
            firsts, word_labels(starts, ends, example.spans, tag_ids), strict=True
        ):
            token_labels[first] = label
        for w in windows(index, len(encoding.ids), prepared.window, overlap):
            ids = prefix + encoding.ids[w.start : w.end] + suffix
            labels = [IGNORE] * len(prefix) + token_labels[w.start : w.end] + [IGNORE] * len(suffix)
            sequences.append((ids, labels))
    return sequences


def fine_tune(
    source: str, control: Control, examples: Sequence[Example], out: Path, options: TrainOptions
) -> dict[str, float]:
    """Fine-tune from ``source`` on ``examples`` and save the model into ``out``.

    Returns:
        Metrics: examples, spans, windows, epochs, final training loss, seconds.
    """
    import torch

    began = time.perf_counter()
    tokenizer, model = open_pretrained(source)
    architectures = getattr(model.config, "architectures", None) or []
    trained = any(a.endswith("ForTokenClassification") for a in architectures)
    tags = bio_tags(control.label_names)
    tag_ids = {tag: i for i, tag in enumerate(tags)}
    grow_head(model, TagSet.from_labels(model.config.id2label), tags, control, trained)
    prepared = prepare(source, tokenizer, model, max_length=options.max_length, device="cpu")
    sequences = _encode(prepared, examples, tag_ids, options.overlap)

    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    steps = options.epochs * -(-len(sequences) // options.batch_size)
    if options.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))),
    )
    model.train()
    loss_value = float("nan")
    for _ in range(options.epochs):
        order = torch.randperm(len(sequences), generator=generator).tolist()
        for first in range(0, len(order), options.batch_size):
            batch = [sequences[i] for i in order[first : first + options.batch_size]]
            longest = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), longest), prepared.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            labels = torch.full((len(batch), longest), IGNORE, dtype=torch.long)
            for row, (sequence, target) in enumerate(batch):
                ids[row, : len(sequence)] = torch.tensor(sequence)
                mask[row, : len(sequence)] = 1
                labels[row, : len(target)] = torch.tensor(target)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            loss_value = float(loss.detach())
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "examples": float(len(examples)),
        "spans": float(sum(len(e.spans) for e in examples)),
        "windows": float(len(sequences)),
        "epochs": float(options.epochs),
        "train_loss": loss_value,
        "seconds": round(time.perf_counter() - began, 3),
    }
