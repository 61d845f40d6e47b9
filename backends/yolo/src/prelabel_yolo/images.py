"""Fetch and decode task images in a background thread, one batch ahead of inference.

On CPU, inference dominates; fetching and decoding the next batch while the model runs on
the current one makes the server add next to nothing to ultralytics' own speed. A task
whose image cannot be read gets ``None`` (and a warning naming the URL), never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from prelabel import MediaError

if TYPE_CHECKING:
    from PIL.Image import Image

    from prelabel.media import MediaResolver

__all__ = ["Batch", "batches", "open_image"]

log = logging.getLogger(__name__)

#: Decoded images of one batch of tasks: ``images[object name][i]`` for the batch's i-th task.
Batch = Mapping[str, list["Image | None"]]


def open_image(task: Mapping[str, Any], key: str, media: MediaResolver) -> Image | None:
    """The task's image for data key ``key``, EXIF-rotated as LS shows it, or ``None``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    url = (task.get("data") or {}).get(key)
    if not isinstance(url, str) or not url:
        log.warning("yolo: task %s has no image in data[%r]", task.get("id"), key)
        return None
    try:
        path = media.local_path(url, task_id=task.get("id"))
        with Image.open(path) as raw:
            # LS measures regions on the EXIF-oriented image (protocol §9.3).
            image = ImageOps.exif_transpose(raw).convert("RGB")
    # ImportError: ultralytics patches Image.open to try a HEIF plugin on unknown formats.
    except (MediaError, OSError, UnidentifiedImageError, ValueError, ImportError) as exc:
        log.warning("yolo: task %s: cannot read image %.200s: %s", task.get("id"), url, exc)
        return None
    return image


def _decode(
    tasks: Sequence[Mapping[str, Any]], keys: Mapping[str, str], media: MediaResolver
) -> dict[str, list[Image | None]]:
    return {name: [open_image(t, key, media) for t in tasks] for name, key in keys.items()}


def batches(
    tasks: Sequence[Mapping[str, Any]],
    keys: Mapping[str, str],
    media: MediaResolver,
    size: int,
) -> Iterator[tuple[int, Batch]]:
    """``(start index, images)`` for consecutive batches of ``size`` tasks.

    Args:
        tasks: the tasks of the call.
        keys: object name → task-data key of every image object a control reads.
        media: the resolver that fetches task media.
        size: tasks per batch.
    """
    starts = list(range(0, len(tasks), size))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yolo-fetch") as pool:
        pending: Future[dict[str, list[Image | None]]] | None = None
        for n, start in enumerate(starts):
            current = pending or pool.submit(_decode, tasks[start : start + size], keys, media)
            if n + 1 < len(starts):
                nxt = starts[n + 1]
                pending = pool.submit(_decode, tasks[nxt : nxt + size], keys, media)
            yield start, current.result()
