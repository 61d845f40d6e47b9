"""Tag schemes: a model's tags (``B-PER``, ``I-PER``, ``O``…) as entity types, and decoding.

A token-classification model names its classes in ``config.id2label``. Supported schemes:
BIO (IOB2), BIOES/IOBES (``S-``, ``E-``), BILOU (``U-``, ``L-``, read as ``S-``/``E-``), and IO
(bare type names such as ``PER``, read as ``I-PER``). Prefixes may be joined with ``-`` or
``_``. Decoding keeps adjacent entities of one type apart wherever the scheme marks a
boundary (``B-PER I-PER B-PER`` is two people); an ``I-`` without an open entity of its type
starts one, so a model's boundary slips lose no entity. Models this backend trains use BIO.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OUTSIDE", "Entity", "Tag", "TagSet", "bio_tags", "decode"]

OUTSIDE = "O"
_PREFIXED = re.compile(r"^([BIESLU])[-_](.+)$", re.IGNORECASE)
_CANONICAL = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}


@dataclass(frozen=True)
class Tag:
    """One model class: a prefix (``B``, ``I``, ``E``, ``S``, or ``O`` outside) and a type."""

    prefix: str
    type: str

    @classmethod
    def parse(cls, name: str) -> Tag:
        """Read a class name: ``"B-PER"``, ``"U_LOC"``, ``"O"``, or a bare type (``"PER"``)."""
        name = name.strip()
        if name.upper() == OUTSIDE:
            return cls(OUTSIDE, "")
        match = _PREFIXED.match(name)
        if match:
            return cls(_CANONICAL[match.group(1).upper()], match.group(2))
        return cls("I", name)


@dataclass(frozen=True)
class Entity:
    """Decoded words ``first..last`` (inclusive) of one entity type."""

    first: int
    last: int
    type: str


@dataclass(frozen=True)
class TagSet:
    """A model's classes read as tags.

    Attributes:
        tags: the tag of each class id.
        types: the entity types, in the order their first tag appears.
        type_of: for each class id, its column in :meth:`type_probabilities` (0: outside).
    """

    tags: tuple[Tag, ...]
    types: tuple[str, ...]
    type_of: tuple[int, ...] = field(repr=False)

    @classmethod
    def from_labels(cls, id2label: Mapping[int, str]) -> TagSet:
        """From a model config's ``id2label`` (ids must be ``0..n-1``).

        Raises:
            ValueError: the ids are not contiguous from 0.
        """
        ids = sorted(int(i) for i in id2label)
        if ids != list(range(len(ids))):
            raise ValueError(f"id2label ids must be 0..{len(ids) - 1}, got {ids}")
        tags = tuple(Tag.parse(str(id2label[i])) for i in ids)
        types: dict[str, int] = {}
        for tag in tags:
            if tag.prefix != OUTSIDE:
                types.setdefault(tag.type, len(types) + 1)
        type_of = tuple(types.get(tag.type, 0) if tag.prefix != OUTSIDE else 0 for tag in tags)
        return cls(tags, tuple(types), type_of)

    def type_probabilities(self, tag_probabilities: np.ndarray) -> np.ndarray:
        """Sum tag probabilities ``(n, tags)`` per type: ``(n, 1 + types)``, column 0 outside."""
        out = np.zeros((tag_probabilities.shape[0], 1 + len(self.types)), dtype=np.float64)
        for tag_id, column in enumerate(self.type_of):
            out[:, column] += tag_probabilities[:, tag_id]
        return out


def decode(tag_ids: Sequence[int], tagset: TagSet) -> list[Entity]:
    """Entities from one tag id per word, in order.

    ``B``/``S`` always start an entity and ``E``/``S`` end one; ``I``/``E`` continue an open
    entity of their type and otherwise start one; ``O`` ends any open entity.
    """
    entities: list[Entity] = []
    start: int | None = None
    kind = ""
    for index, tag_id in enumerate(tag_ids):
        tag = tagset.tags[tag_id]
        continues = start is not None and tag.type == kind and tag.prefix in ("I", "E")
        if start is not None and not continues:
            entities.append(Entity(start, index - 1, kind))
            start = None
        if tag.prefix == OUTSIDE:
            continue
        if start is None:
            start, kind = index, tag.type
        if tag.prefix in ("E", "S"):
            entities.append(Entity(start, index, kind))
            start = None
    if start is not None:
        entities.append(Entity(start, len(tag_ids) - 1, kind))
    return entities


def bio_tags(types: Sequence[str]) -> list[str]:
    """The classes of a BIO model over ``types``: ``O``, then ``B-t``, ``I-t`` for each type."""
    return [OUTSIDE, *(f"{prefix}-{kind}" for kind in types for prefix in ("B", "I"))]
