"""Results attached to another region: per-region classifications and split-format labels.

The LS editor saves one result per control that describes a region, all with the region's
``id``; each repeats the region's own value (its geometry, span or message) beside the
control's key, and LS groups them back by id. A result whose value holds one key only is read
as a whole-object classification instead, which is why the geometry is repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import make_region
from prelabel.results._prediction import Region

__all__ = ["region_labels"]

# Result types that describe a region rather than being one.
_CLASSIFICATIONS = frozenset({"choices", "textarea", "rating", "number", "taxonomy", "datetime"})
# Unlabelled image tools a Labels control can name (label_studio_sdk's split-format partners).
_SPLIT_GEOMETRY = frozenset({"rectangle", "polygon", "ellipse", "keypoint", "brush"})


def _labels_of(region: Region) -> list[Any]:
    key = region.type if region.type.endswith("labels") else "labels"
    labels = region.value.get(key, region.value.get("labels"))
    return labels if isinstance(labels, list) else []


def attach(
    control: Control, value: Mapping[str, Any], region: Region, *, score: float | None
) -> Region:
    """``value`` of ``control`` on ``region``: same id, object and top-level keys, repeated
    geometry."""
    if region.type in _CLASSIFICATIONS:
        raise ValueError(
            f"region is a {region.type} result; attach {control.tag} {control.name!r} to the "
            "region itself (the span, box or message)"
        )
    if region.id is None:
        raise ValueError(f"region has no id; {control.tag} {control.name!r} attaches by id")
    if region.to_name not in control.to_name:
        raise ValueError(
            f"region is on {region.to_name!r}, not on a toName of {control.tag} "
            f"{control.name!r} ({', '.join(map(repr, control.to_name))})"
        )
    wanted = _checks.attr(control, "whenLabelValue")
    labels = _labels_of(region)
    if wanted and labels and wanted not in labels:
        raise ValueError(
            f'{control.tag} {control.name!r} has whenLabelValue="{wanted}": LS drops it from '
            f"regions labelled {labels!r}"
        )
    # The label list says what the region is; the attached result repeats only where it is
    # (a chat message's value is the message itself, not a label).
    label_keys = {"labels", region.type} if region.type.endswith("labels") else {"labels"}
    geometry = {key: item for key, item in region.value.items() if key not in label_keys}
    return Region(
        from_name=control.name,
        to_name=region.to_name,
        type=control.type,
        value={**geometry, **value},
        id=region.id,
        score=_checks.check_score(score),
        extra=dict(region.extra),
    )


def whole_or_attached(
    control: Control,
    value: Mapping[str, Any],
    region: Region | None,
    *,
    score: float | None,
    verb: str,
) -> Region:
    """A whole-object result, or one attached to ``region`` for a ``perRegion`` control.

    LS shows a ``perRegion`` control only beside a selected region, so a whole-object result
    for it would never be seen, and a region result for any other control is dropped.
    """
    if region is None:
        if control.per_region:
            raise ValueError(
                f'{control.tag} {control.name!r} has perRegion="true"; pass the region= it {verb}'
            )
        return make_region(control, value, score=score, to_name=None, with_id=False)
    if not control.per_region:
        raise ValueError(
            f'{control.tag} {control.name!r} {verb} whole objects; set perRegion="true" on it '
            "to attach its results to regions"
        )
    return attach(control, value, region, score=score)


def region_labels(
    control: Control, region: Region, label: str, *, score: float | None = None
) -> Region:
    """Labels of a ``Labels`` control for a region drawn by an unlabelled image tool.

    The split format of configs like LS's OCR template (``<Labels>`` beside ``<Rectangle>``
    and ``<Polygon>`` on one ``Image``): the tool's result holds the geometry, and this
    ``labels`` result, sharing its id, repeats the geometry with the label.

    Args:
        control: a ``Labels`` control on the region's image.
        region: the region, built for a ``Rectangle``, ``Polygon``, ``Ellipse``, ``KeyPoint``
            or ``Brush`` control.
        label: one of the control's labels.
        score: confidence in [0, 1].

    Returns:
        A ``labels`` region with the region's id and value ``{<geometry>, labels}``.
    """
    _checks.require_tag(control, "region_labels", "Labels")
    if region.type not in _SPLIT_GEOMETRY:
        raise ValueError(
            f"region_labels() labels regions of unlabelled image tools "
            f"({', '.join(sorted(_SPLIT_GEOMETRY))}); got a {region.type} region"
        )
    value = {"labels": [_checks.check_label(control, label)]}
    return attach(control, value, region, score=score)
