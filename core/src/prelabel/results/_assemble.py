"""Assembling validated regions, and attaching per-region results to the region they describe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prelabel.config import Control
from prelabel.results._checks import check_score, resolve_to_name
from prelabel.results._prediction import Region, new_region_id


def make_region(
    control: Control,
    value: Mapping[str, Any],
    *,
    score: float | None,
    to_name: str | None,
    region_id: str | None = None,
    with_id: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Region:
    """Assemble a validated region for ``control``; ``with_id`` gives it a fresh id if needed."""
    if region_id is None and with_id:
        region_id = new_region_id()
    return Region(
        from_name=control.name,
        to_name=resolve_to_name(control, to_name),
        type=control.type,
        value=value,
        id=region_id,
        score=check_score(score),
        extra=dict(extra or {}),
    )


def image_region(
    control: Control,
    value: dict[str, Any],
    size: tuple[int, int],
    score: float | None,
    to_name: str | None,
    region_id: str | None,
    extra: dict[str, Any] | None = None,
) -> Region:
    """Assemble an image region: ``make_region`` plus the image's natural size."""
    dims = {"original_width": size[0], "original_height": size[1], "image_rotation": 0}
    return make_region(
        control,
        value,
        score=score,
        to_name=to_name,
        region_id=region_id,
        extra={**dims, **(extra or {})},
    )
