"""Builders for segments of time: ``Labels`` on ``Audio`` and ``TimeSeriesLabels``."""

from __future__ import annotations

from datetime import datetime

from prelabel.config import Control
from prelabel.results import _checks
from prelabel.results._assemble import make_region
from prelabel.results._prediction import Region

__all__ = ["audio_span", "timeseries_span"]


def audio_span(
    control: Control,
    *,
    start: float,
    end: float,
    label: str,
    channel: int = 0,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled segment of an ``Audio`` object, for a ``Labels`` control.

    Args:
        control: a ``Labels`` control on an ``Audio`` object.
        start: seconds from the start of the audio, ``>= 0``.
        end: seconds, ``> start``.
        label: one of the control's labels.
        channel: the audio channel the segment is on (0 for the first or only one).
        score: confidence in [0, 1].
        to_name: the ``Audio`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A ``labels`` region with value ``{start, end, channel, labels}``, as the LS audio
        editor saves it.
    """
    _checks.require_tag(control, "audio_span", "Labels")
    _checks.target_object(control, to_name, "audio_span", "Audio")
    begin = _checks.finite(start, "start")
    finish = _checks.finite(end, "end")
    if not 0.0 <= begin < finish:
        raise ValueError(f"need 0 <= start < end (seconds), got start={begin}, end={finish}")
    value = {
        "start": begin,
        "end": finish,
        "channel": _checks.integer(channel, "channel"),
        **_checks.labels_value(control, label),
    }
    return make_region(control, value, score=score, to_name=to_name, region_id=region_id)


def _instant(value: float | str | datetime, what: str, time_format: str | None) -> float | str:
    if time_format:
        if isinstance(value, datetime):
            return value.strftime(time_format)
        if isinstance(value, str) and value:
            return value
        raise ValueError(
            f"{what} must be a datetime or a string in the TimeSeries' timeFormat "
            f"{time_format!r}, got {value!r}"
        )
    if isinstance(value, str | datetime):
        raise ValueError(
            f"{what} must be a number (the time column's value) when the TimeSeries has no "
            f"timeFormat, got {value!r}"
        )
    return _checks.finite(value, what)


def timeseries_span(
    control: Control,
    *,
    start: float | str | datetime,
    end: float | str | datetime,
    label: str,
    score: float | None = None,
    to_name: str | None = None,
    region_id: str | None = None,
) -> Region:
    """A labelled segment or instant of a ``TimeSeries``, for a ``TimeSeriesLabels`` control.

    Times are in the units of the series' time column, as LS saves them: numbers when the
    ``TimeSeries`` has no ``timeFormat``; with one, strings in that format (a ``datetime`` is
    formatted with it; LS's d3 format directives such as ``%Y-%m-%d %H:%M:%S`` match
    Python's ``strftime``).

    Args:
        control: a ``TimeSeriesLabels`` control.
        start: where the segment starts.
        end: where it ends, ``>= start`` (equal: an instant).
        label: one of the control's labels.
        score: confidence in [0, 1].
        to_name: the ``TimeSeries`` object, by default the control's first ``toName``.
        region_id: the region id, by default a fresh one.

    Returns:
        A ``timeserieslabels`` region with value ``{start, end, instant, timeserieslabels}``.
    """
    _checks.require_tag(control, "timeseries_span", "TimeSeriesLabels")
    series = _checks.target_object(control, to_name, "timeseries_span", "TimeSeries")
    time_format = series.attrs.get("timeFormat") or series.attrs.get("timeformat")
    begin, finish = _instant(start, "start", time_format), _instant(end, "end", time_format)
    # Formatted strings need not sort as times, so only numbers and datetimes are compared.
    numbers_reversed = isinstance(begin, float) and isinstance(finish, float) and begin > finish
    datetimes_reversed = isinstance(start, datetime) and isinstance(end, datetime) and start > end
    if numbers_reversed or datetimes_reversed:
        raise ValueError(f"need start <= end, got start={start!r}, end={end!r}")
    value = {
        "start": begin,
        "end": finish,
        "instant": begin == finish,
        **_checks.labels_value(control, label),
    }
    return make_region(control, value, score=score, to_name=to_name, region_id=region_id)
