"""The doctor's media check: one real media URL of each kind in the project downloads.

The URLs come from the project's first tasks, raw (as ``/predict`` gets them), and are fetched
through :class:`~prelabel.media.MediaResolver`, exactly as the backend fetches them: uploads,
local files (from ``LOCAL_FILES_DOCUMENT_ROOT`` or through LS), cloud storage through LS's
presign endpoint, other hosts if allowed. The resolver given has a scratch cache, so a file
downloaded earlier proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prelabel._doctor.report import Finding
from prelabel._ls.redact import safe_url
from prelabel.config import LabelConfig
from prelabel.errors import MediaError, UpstreamError
from prelabel.media import CLOUD_SCHEMES, MediaResolver

__all__ = ["check_media", "media_values"]

#: Objects whose value is the content itself unless ``valueType="url"``.
TEXT_OBJECTS = frozenset({"text", "hypertext", "paragraphs", "table", "list", "chat"})


def kind_of(value: str, resolver: MediaResolver) -> str:
    """How a media value is fetched, in the words of the report."""
    lowered = value.lower()
    if lowered.startswith("data:"):
        return "data URI"
    if lowered.startswith(CLOUD_SCHEMES):
        return "cloud storage"
    if "/data/local-files" in value:
        return "local file"
    if "/data/upload/" in value or value.startswith(("upload/", "/upload/")):
        return "upload"
    if value.startswith("/") or (resolver.client and resolver.client.is_ls_url(value)):
        return "Label Studio"
    return "external URL"


def media_values(
    config: LabelConfig, tasks: Sequence[Mapping[str, Any]]
) -> Iterator[tuple[Any, str]]:
    """``(task id, value)`` of every media URL the config's objects read from ``tasks``."""
    keys = [
        o.value_key
        for o in config.objects.values()
        if o.value_key
        and (o.tag.lower() not in TEXT_OBJECTS or o.attrs.get("valueType", "").lower() == "url")
    ]
    for task in tasks:
        data = task.get("data") or {}
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and MediaResolver.is_media_url(value):
                yield task.get("id"), value


def check_media(
    config: LabelConfig, tasks: Sequence[Mapping[str, Any]], resolver: MediaResolver
) -> Finding:
    """Download the first media URL of each kind among ``tasks``."""
    if not tasks:
        return Finding("media", "skip", "the project has no tasks yet")
    tried: dict[str, str] = {}
    for task_id, value in media_values(config, tasks):
        kind = kind_of(value, resolver)
        if kind in tried:
            continue
        try:
            path = resolver.local_path(value, task_id=task_id)
        except (MediaError, UpstreamError) as exc:
            return Finding(
                "media",
                "fail",
                f"cannot download task {task_id}'s {kind} {safe_url(value)[:80]}",
                str(exc),
                [f"{k}: ok ({v})" for k, v in tried.items()],
            )
        where = (
            "read from LOCAL_FILES_DOCUMENT_ROOT"
            if kind == "local file" and not str(path).startswith(str(resolver.cache_dir))
            else f"{path.stat().st_size:,} bytes"
        )
        tried[kind] = f"{safe_url(value)[:70]}, {where}"
    if not tried:
        return Finding(
            "media", "skip", f"the first {len(tasks)} tasks carry their data inline (no media URL)"
        )
    return Finding(
        "media",
        "ok",
        f"downloaded one of each kind: {', '.join(tried)}",
        details=[f"{k}: {v}" for k, v in tried.items()],
    )
