"""From word probabilities to a control's labelled spans, their scores and the task's uncertainty.

Entity types map to a control's labels through core's :class:`~prelabel.LabelMap`
(``predicted_values``, then the label's name, ignoring case); entities of an unmapped type are
dropped and counted.

Scores are entity-level: a word's class probabilities are summed per label (``B-PER`` and
``I-PER`` both say "Person"; unmapped types count as "no entity"), a span's distribution is
the mean over its words, and its score is the probability of its label. The task's
distribution for core's score policy is the least confident of the spans and of the words
left outside every span: a near-miss (a word at 55 % "no entity") makes a task as uncertain
as a doubtful entity, which is what uncertainty sampling should surface in NER, where
missed entities cost annotators the most.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from prelabel import LabelMap
from prelabel_ner.inference import TaggedText
from prelabel_ner.tags import TagSet, decode

__all__ = ["FoundSpan", "Spans", "find_spans"]


@dataclass(frozen=True)
class FoundSpan:
    """A labelled span: ``text[start:end]`` in code points, its label and score in [0, 1]."""

    start: int
    end: int
    label: str
    score: float


@dataclass
class Spans:
    """What a control gets from one text.

    Attributes:
        spans: the labelled spans, in text order.
        distribution: the least confident label distribution (``[none, label…]``), or
            ``None`` for a text without words.
        unmapped: entities dropped because their type has no label, by type.
    """

    spans: list[FoundSpan] = field(default_factory=list)
    distribution: list[float] | None = None
    unmapped: Counter[str] = field(default_factory=Counter)


def _label_columns(tagset: TagSet, label_map: LabelMap) -> tuple[np.ndarray, list[str]]:
    """A ``(1 + types, 1 + labels)`` 0/1 matrix folding type columns into label columns."""
    labels = sorted(
        {label for label in label_map.mapping.values()}, key=label_map.label_names.index
    )
    fold = np.zeros((1 + len(tagset.types), 1 + len(labels)))
    fold[0, 0] = 1.0
    for column, kind in enumerate(tagset.types, start=1):
        label = label_map.get(kind)
        fold[column, 0 if label is None else 1 + labels.index(label)] = 1.0
    return fold, labels


def find_spans(tagged: TaggedText, tagset: TagSet, label_map: LabelMap) -> Spans:
    """Decode, map and score one text's entities for one control."""
    out = Spans()
    if not len(tagged.starts):
        return out
    fold, labels = _label_columns(tagset, label_map)
    by_label = tagset.type_probabilities(tagged.probabilities) @ fold
    inside = np.zeros(len(tagged.starts), dtype=bool)
    candidates: list[np.ndarray] = []
    for entity in decode(tagged.probabilities.argmax(axis=1).tolist(), tagset):
        label = label_map.get(entity.type)
        if label is None:
            out.unmapped[entity.type] += 1
            continue
        distribution = by_label[entity.first : entity.last + 1].mean(axis=0)
        inside[entity.first : entity.last + 1] = True
        candidates.append(distribution)
        out.spans.append(
            FoundSpan(
                start=int(tagged.starts[entity.first]),
                end=int(tagged.ends[entity.last]),
                label=label,
                score=float(min(1.0, max(0.0, distribution[1 + labels.index(label)]))),
            )
        )
    outside = by_label[~inside]
    if len(outside):
        candidates.append(outside[int(outside.max(axis=1).argmin())])
    least = min(candidates, key=lambda d: float(d.max()))
    out.distribution = [float(p) for p in least]
    return out
