"""Builders for comparisons: ``Pairwise`` (left or right) and ``Ranker`` (ordered items, buckets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import make_region
from prelabel.results._prediction import Region

__all__ = ["pairwise", "ranker"]

# The Ranker column of items left in the original list (the LS editor's key for it).
UNRANKED = "_"


def pairwise(
    control: Control, selected: Literal["left", "right"], *, score: float | None = None
) -> Region:
    """Which of two objects is preferred, for a ``Pairwise`` control.

    ``to_name`` is the left object: the LS editor writes the control's own name there, but
    LS's prediction validation (label_studio_sdk's ``LabelInterface``) refuses a ``to_name``
    that is not an object, and the editor finds the result by ``from_name`` either way.

    Args:
        control: a ``Pairwise`` control (``toName="left,right"``).
        selected: ``"left"`` (the first toName) or ``"right"`` (the second).
        score: confidence in [0, 1].

    Returns:
        A ``pairwise`` region with value ``{"selected": selected}``.
    """
    _checks.require_tag(control, "pairwise", "Pairwise")
    if selected not in ("left", "right"):
        raise ValueError(f'selected must be "left" or "right", got {selected!r}')
    if len(control.to_name) != 2:
        raise ValueError(
            f"Pairwise {control.name!r} compares two objects; its toName has "
            f"{len(control.to_name)} ({', '.join(map(repr, control.to_name))})"
        )
    return make_region(control, {"selected": selected}, score=score, to_name=None, with_id=False)


def ranker(
    control: Control,
    ranking: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    score: float | None = None,
) -> Region:
    """Items of a ``List`` ranked, or sorted into buckets, for a ``Ranker`` control.

    Items are named by their ``id`` in the task's list. A Ranker without ``<Bucket>`` children
    ranks the whole list: pass the ids in order. With buckets, pass ``{bucket name: ids in
    order}``; ids in no bucket stay in the original list (the editor's ``"_"`` column).

    Args:
        control: a ``Ranker`` control.
        ranking: the ids in order, or the ids per bucket.
        score: confidence in [0, 1].

    Returns:
        A ``ranker`` region with value ``{"ranker": {column: [ids]}}``: the column is the
        control's name without buckets, else each bucket's name.
    """
    _checks.require_tag(control, "ranker", "Ranker")
    if isinstance(ranking, Mapping):
        if not control.buckets:
            raise ValueError(
                f"Ranker {control.name!r} has no <Bucket>s; pass the item ids in order"
            )
        columns = {str(name): list(ids) for name, ids in ranking.items()}
        unknown = set(columns) - {*control.buckets, UNRANKED}
        if unknown:
            raise ValueError(
                f"{sorted(unknown)} are not buckets of Ranker {control.name!r} "
                f"(its buckets: {', '.join(map(repr, control.buckets))})"
            )
    else:
        if control.buckets:
            raise ValueError(
                f"Ranker {control.name!r} sorts items into buckets "
                f"({', '.join(map(repr, control.buckets))}); pass {{bucket: [ids]}}"
            )
        columns = {control.name: _checks.strings(ranking, "ranking")}
    seen: set[str] = set()
    for ids in columns.values():
        for item in ids:
            if not isinstance(item, str) or not item:
                raise ValueError(f"item ids must be non-empty strings, got {item!r}")
            if item in seen:
                raise ValueError(f"item {item!r} is ranked twice")
            seen.add(item)
    if not seen:
        raise ValueError("ranking places no item")
    return make_region(control, {"ranker": columns}, score=score, to_name=None, with_id=False)
