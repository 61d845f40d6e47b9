"""The answer format, derived from the labeling config: a JSON schema and its parser.

Each fillable control becomes one required property named after the control:

* ``Choices`` → one of the exact choice names (``enum``), or a list of them (``choice="multiple"``);
  choices and labels from task data (``value="$options"``) are each task's own
  (:meth:`AnswerFormat.for_task`);
* ``Labels`` on a ``Text`` → a list of ``{"text": <exact quote>, "label": <label>}``; every
  whole-word occurrence of the quote in the task text is labelled, at exact offsets;
* ``TextArea`` → a string (an empty string means no transcription);
* ``Rating`` → an integer from 1 to ``maxRating``; ``Number`` → a number within ``min``/``max``;
* ``Taxonomy`` → a list of paths written ``"Animal > Cat"``, each one a node of the taxonomy.

An answer that breaks the schema (malformed JSON, a value outside the vocabulary, a quote that
is not in the text) raises :class:`InvalidAnswer`; nothing is guessed or fuzzily matched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from prelabel import Region
from prelabel import results as R
from prelabel.config import Control, Label, LabelConfig

__all__ = [
    "FILLABLE",
    "TAXONOMY_SEPARATOR",
    "AnswerFormat",
    "InvalidAnswer",
    "Values",
    "find_quote",
]

#: Control tags the backend can fill.
FILLABLE = frozenset({"Choices", "Labels", "TextArea", "Rating", "Number", "Taxonomy"})
#: How a taxonomy path is written in the answer.
TAXONOMY_SEPARATOR = " > "
_TEXT_OBJECTS = frozenset({"text", "hypertext", "paragraphs"})
_DEFAULT_MAX_RATING = 5

#: A parsed answer: per control name, a canonical (hashable) value, for voting across samples.
Values = dict[str, Any]


class InvalidAnswer(ValueError):
    """The model's answer does not fit the schema; the message says why (it is sent back)."""


def _fillable(control: Control, skip: frozenset[str]) -> bool:
    if control.tag not in FILLABLE or control.name in skip or control.per_region:
        return False
    if control.tag in ("Choices", "Labels", "Taxonomy") and not control.labels:
        # Labels from task data have a vocabulary per task (not for a Taxonomy: its tree).
        return control.dynamic_labels and control.tag != "Taxonomy" and _reads(control)
    return _reads(control)


def _reads(control: Control) -> bool:
    obj = control.objects[0] if control.objects else None
    if obj is None or obj.value_key is None:
        return False
    if control.tag == "Labels":
        return obj.tag.lower() == "text"
    # What a model can read: text and images (not audio, video, time series).
    return obj.tag.lower() in _TEXT_OBJECTS or obj.tag.lower() == "image"


@dataclass(frozen=True)
class AnswerFormat:
    """The controls an answer fills, their JSON schema, and the parser back to regions.

    Attributes:
        controls: the fillable controls, in document order.
    """

    controls: tuple[Control, ...]

    @classmethod
    def from_config(cls, config: LabelConfig, *, skip: Sequence[str] = ()) -> AnswerFormat:
        """The controls of ``config`` the model fills (``skip``: input controls, e.g. the prompt)."""
        skipped = frozenset(skip)
        return cls(tuple(c for c in config.controls.values() if _fillable(c, skipped)))

    def for_task(self, data: Mapping[str, Any]) -> AnswerFormat:
        """This format for one task: controls with labels from task data take the task's
        labels (:meth:`Control.task_label_names`); without any, they are left out."""
        controls = []
        for control in self.controls:
            if control.dynamic_labels:
                names = control.task_label_names(data)
                if not names:
                    continue
                control = replace(control, labels=tuple(Label(n, None, {}) for n in names))
            controls.append(control)
        return AnswerFormat(tuple(controls))

    def schema(self) -> dict[str, Any]:
        """A JSON schema (strict-mode compatible: every property required, no extras)."""
        return {
            "type": "object",
            "properties": {c.name: _property(c) for c in self.controls},
            "required": [c.name for c in self.controls],
            "additionalProperties": False,
        }

    def parse(self, raw: str | Mapping[str, Any], texts: Mapping[str, str]) -> Values:
        """Check an answer and return its canonical values per control.

        Args:
            raw: the answer as JSON text, or already decoded.
            texts: the task text of each ``Text`` object, by object name (for span quotes).

        Raises:
            InvalidAnswer: the answer breaks the schema; the message says how.
        """
        if isinstance(raw, str):
            try:
                answer = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidAnswer(f"the answer is not valid JSON ({exc.msg})") from None
        else:
            answer = raw
        if not isinstance(answer, Mapping):
            raise InvalidAnswer("the answer must be a JSON object")
        unknown = set(answer) - {c.name for c in self.controls}
        if unknown:
            raise InvalidAnswer(f"unexpected keys {sorted(unknown)}")
        values: Values = {}
        for control in self.controls:
            if control.name not in answer:
                raise InvalidAnswer(f"missing key {control.name!r}")
            values[control.name] = _canonical(control, answer[control.name], texts)
        return values

    def regions(
        self, values: Values, texts: Mapping[str, str], scores: Mapping[str, float | None]
    ) -> list[Region]:
        """Build LS regions from parsed values; ``scores`` gives each control's confidence."""
        out: list[Region] = []
        for control in self.controls:
            out.extend(_build(control, values[control.name], texts, scores.get(control.name)))
        return out


def _property(control: Control) -> dict[str, Any]:
    names = list(control.label_names)
    if control.tag == "Choices":
        one = {"type": "string", "enum": names}
        if control.multiple:
            return {"type": "array", "items": one, "description": "every choice that applies"}
        return {**one, "description": "the one choice that applies"}
    if control.tag == "Labels":
        return {
            "type": "array",
            "description": "spans to label: each text is copied exactly from the task text",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "label": {"type": "string", "enum": names},
                },
                "required": ["text", "label"],
                "additionalProperties": False,
            },
        }
    if control.tag == "TextArea":
        return {"type": "string", "description": "free text; empty when nothing applies"}
    if control.tag == "Rating":
        return {"type": "integer", "minimum": 1, "maximum": _max_rating(control)}
    if control.tag == "Number":
        prop: dict[str, Any] = {"type": "number"}
        for key, bound in (("minimum", "min"), ("maximum", "max")):
            if control.attrs.get(bound):
                prop[key] = float(control.attrs[bound])
        return prop
    paths = [TAXONOMY_SEPARATOR.join(path) for path in control.taxonomy_paths()]
    return {
        "type": "array",
        "items": {"type": "string", "enum": paths},
        "description": f"taxonomy nodes, each written as its path joined by {TAXONOMY_SEPARATOR!r}",
    }


def _max_rating(control: Control) -> int:
    raw = control.attrs.get("maxRating", "")
    return int(raw) if raw.strip() else _DEFAULT_MAX_RATING


def _require(ok: bool, control: Control, message: str) -> None:
    if not ok:
        raise InvalidAnswer(f"{control.name!r}: {message}")


def _canonical(control: Control, value: Any, texts: Mapping[str, str]) -> Any:
    """The value as a hashable canonical form, or :class:`InvalidAnswer`."""
    allowed = set(control.label_names)
    if control.tag == "Choices":
        picked = value if control.multiple else [value]
        _require(isinstance(picked, list), control, "must be a list of choices")
        _require(bool(picked), control, "pick at least one choice")
        for item in picked:
            _require(item in allowed, control, f"{item!r} is not one of {sorted(allowed)}")
        _require(len(set(picked)) == len(picked), control, "choices repeat")
        # Order-insensitive, so two samples picking the same set agree.
        return tuple(sorted(picked)) if control.multiple else picked[0]
    if control.tag == "Labels":
        _require(isinstance(value, list), control, "must be a list of {text, label} objects")
        text = texts.get(control.objects[0].name, "")
        spans: set[tuple[int, int, str]] = set()
        for item in value:
            _require(
                isinstance(item, Mapping) and set(item) == {"text", "label"},
                control,
                f"each item needs exactly 'text' and 'label', got {item!r}",
            )
            quote, label = item["text"], item["label"]
            _require(label in allowed, control, f"label {label!r} is not one of {sorted(allowed)}")
            _require(isinstance(quote, str) and bool(quote.strip()), control, "empty quote")
            found = find_quote(text, quote)
            _require(bool(found), control, f"{quote!r} does not occur in the text")
            spans.update((start, end, label) for start, end in found)
        return frozenset(spans)
    if control.tag == "TextArea":
        _require(isinstance(value, str), control, "must be a string")
        return value.strip()
    if control.tag == "Taxonomy":
        _require(isinstance(value, list) and bool(value), control, "must be a non-empty list")
        known = {TAXONOMY_SEPARATOR.join(p): p for p in control.taxonomy_paths()}
        for item in value:
            _require(item in known, control, f"{item!r} is not a taxonomy path")
        return tuple(sorted({tuple(known[item]) for item in value}))
    # Rating and Number: bool is an int subclass in Python, but never a valid answer here.
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    _require(numeric, control, f"must be a number, got {value!r}")
    if control.tag == "Rating":
        _require(float(value).is_integer(), control, f"must be an integer, got {value!r}")
        _require(1 <= value <= _max_rating(control), control, f"{value} is out of range")
        return int(value)
    low, high = control.attrs.get("min"), control.attrs.get("max")
    _require(not low or value >= float(low), control, f"{value} is below min={low}")
    _require(not high or value <= float(high), control, f"{value} is above max={high}")
    return value


def find_quote(text: str, quote: str) -> list[tuple[int, int]]:
    """Python offsets of every whole-word occurrence of ``quote`` in ``text``.

    "Whole word": the characters just outside the match are not letters or digits when the
    quote's own edge is one, so ``"US"`` does not match inside ``"USA"``.
    """
    head = r"(?<!\w)" if quote[:1].isalnum() else ""
    tail = r"(?!\w)" if quote[-1:].isalnum() else ""
    pattern = re.compile(head + re.escape(quote) + tail)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def _build(
    control: Control, value: Any, texts: Mapping[str, str], score: float | None
) -> list[Region]:
    if control.tag == "Choices":
        picked = list(value) if control.multiple else [value]
        return [R.choices(control, picked, score=score)]
    if control.tag == "Labels":
        text = texts.get(control.objects[0].name, "")
        return [
            R.span(
                control,
                start=start,
                end=end,
                text=text[start:end],
                label=label,
                source_text=text,
                score=score,
            )
            for start, end, label in sorted(value)
        ]
    if control.tag == "TextArea":
        return [R.textarea(control, [value], score=score)] if value else []
    if control.tag == "Taxonomy":
        return [R.taxonomy(control, [list(path) for path in value], score=score)]
    if control.tag == "Rating":
        return [R.rating(control, value, score=score)]
    return [R.number(control, value, score=score)]
