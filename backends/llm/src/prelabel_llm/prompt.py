"""Prompts: a default built from the config and the task, or a template with task fields.

A template names task data keys in braces (``{text}``, ``{title}``, any key) and ``{labels}``
(each control with its allowed values). Other braces are left as written, so JSON examples
in a template need no escaping. When a template names none of the objects' data keys, the
task's content is appended after it, so a prompt typed as "Classify the sentiment" works.
Images are never put in the text: they follow as image parts for vision models.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prelabel import TaskDataError
from prelabel.config import LabelConfig, ObjectTag
from prelabel.media import MediaResolver
from prelabel_llm.providers import ImagePart
from prelabel_llm.schema import TAXONOMY_SEPARATOR, AnswerFormat

__all__ = ["SYSTEM", "TaskInput", "describe_controls", "interactive_prompt", "task_input"]

SYSTEM = (
    "You pre-label data for human annotators in Label Studio. Fill every field of the answer "
    "schema. Use only the allowed values, exactly as written. For text spans, copy each quote "
    "character for character from the task text. If you are unsure, still give your best answer."
)

_TEXT_OBJECTS = frozenset({"text", "hypertext", "paragraphs"})
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class TaskInput:
    """One task, ready to send.

    Attributes:
        parts: the user message (text and images).
        texts: each text object's text, by object name (spans are located in it).
    """

    parts: tuple[str | ImagePart, ...]
    texts: Mapping[str, str]


def describe_controls(fmt: AnswerFormat) -> str:
    """``{labels}``: one line per control with what it takes."""
    lines = []
    for control in fmt.controls:
        if control.tag == "Taxonomy":
            allowed = ", ".join(TAXONOMY_SEPARATOR.join(p) for p in control.taxonomy_paths())
        else:
            allowed = ", ".join(control.label_names)
        kind = {
            "Choices": "several of" if control.multiple else "one of",
            "Labels": "spans of the text labelled with",
            "Taxonomy": "one or more of",
        }.get(control.tag)
        what = f"{kind}: {allowed}" if kind else control.tag.lower()
        lines.append(f"- {control.name} ({what})")
    return "\n".join(lines)


def interactive_prompt(interaction: Sequence[Mapping[str, Any]], control: str) -> str | None:
    """The prompt an annotator typed into the ``control`` TextArea, from an interactive call."""
    for item in interaction:
        if item.get("from_name") == control and item.get("type") == "textarea":
            lines = item.get("value", {}).get("text", [])
            text = "\n".join(str(line) for line in lines).strip()
            if text:
                return text
    return None


def _object_text(task: Mapping[str, Any], obj: ObjectTag, media: MediaResolver) -> str:
    value = task.get("data", {}).get(obj.value_key or "")
    if isinstance(value, str) and obj.attrs.get("valueType", "").lower() == "url":
        # MediaError (a TaskDataError) names the URL, the cause and the fix.
        return media.read_bytes(value, task_id=task.get("id")).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # Paragraphs: [{"author": ..., "text": ...}, ...]
        return "\n".join(
            str(v.get("text", "")) if isinstance(v, Mapping) else str(v) for v in value
        )
    raise TaskDataError(
        f"task {task.get('id')}: data key {obj.value_key!r} (for <{obj.tag} name="
        f"{obj.name!r}>) is missing or not text"
    )


def _image(task: Mapping[str, Any], obj: ObjectTag, media: MediaResolver) -> ImagePart:
    value = task.get("data", {}).get(obj.value_key or "")
    if not isinstance(value, str) or not value:
        raise TaskDataError(f"task {task.get('id')}: data key {obj.value_key!r} has no image URL")
    data = media.read_bytes(value, task_id=task.get("id"))
    kind = next((mime for magic, mime in _MAGIC if data.startswith(magic)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "image/webp"
    if kind is None:
        raise TaskDataError(
            f"task {task.get('id')}: {value[:80]!r} is not a PNG, JPEG, GIF or WebP image, "
            "the formats vision models accept"
        )
    return ImagePart(kind, base64.b64encode(data).decode("ascii"))


def task_input(
    task: Mapping[str, Any],
    config: LabelConfig,
    fmt: AnswerFormat,
    media: MediaResolver,
    template: str | None,
) -> TaskInput:
    """The user message for ``task``: the prompt (default or ``template``) and its media.

    Raises:
        TaskDataError: a data key is missing, or media cannot be fetched or is no image.
    """
    used = {o.name: o for c in fmt.controls for o in c.objects if o.value_key is not None}
    texts: dict[str, str] = {}
    images: list[tuple[ObjectTag, ImagePart]] = []
    for obj in used.values():
        if obj.tag.lower() in _TEXT_OBJECTS:
            texts[obj.name] = _object_text(task, obj, media)
        elif obj.tag.lower() == "image":
            images.append((obj, _image(task, obj, media)))
    by_key: dict[str, str] = {
        obj.value_key: texts[name]
        for name, obj in used.items()
        if name in texts and obj.value_key is not None
    }
    content = "\n\n".join(f"{used[name].value_key}:\n{text}" for name, text in texts.items())
    labels = describe_controls(fmt)
    if template is None:
        head = f"Label this task. Fields to fill:\n{labels}"
        prompt = f"{head}\n\n{content}" if content else head
    else:
        data = {k: v for k, v in task.get("data", {}).items() if isinstance(k, str)}
        values = {**{k: str(v) for k, v in data.items()}, **by_key, "labels": labels}
        named = set(_PLACEHOLDER.findall(template))
        prompt = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
        if content and not named & set(by_key):
            prompt = f"{prompt}\n\n{content}"
    parts: list[str | ImagePart] = [prompt]
    for obj, image in images:
        parts += [f"{obj.value_key}:", image]
    return TaskInput(tuple(parts), texts)
