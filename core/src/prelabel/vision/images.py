"""Read task images, and fetch/decode them in a background thread one batch ahead of inference.

Images are decoded to ``(height, width, 3)`` BGR ``uint8`` arrays, the layout ``cv2.imread``
gives (and ultralytics works on). OpenCV applies the EXIF orientation, so the array has the
size Label Studio shows the image at (protocol §9.3); formats OpenCV cannot read fall back to
Pillow. A task whose image cannot be read gets ``None`` (and a warning naming the URL), never
an exception.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from prelabel.errors import MediaError

if TYPE_CHECKING:
    from prelabel.media import MediaResolver

__all__ = ["Batch", "ImageArray", "batches", "decode_image", "image_url", "read_image"]

log = logging.getLogger(__name__)

#: An ``(height, width, 3)`` BGR ``uint8`` image.
ImageArray = np.ndarray[Any, np.dtype[np.uint8]]
#: Decoded images of one batch of tasks: ``images[object name][i]`` for the batch's i-th task.
Batch = Mapping[str, list[ImageArray | None]]


def decode_image(data: bytes) -> ImageArray:
    """BGR pixels of an encoded image, EXIF-oriented.

    Raises:
        ValueError: neither OpenCV nor Pillow can decode ``data``.
    """
    import cv2

    if not data:
        raise ValueError("the image file is empty")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is not None:
        return cast(ImageArray, image)  # IMREAD_COLOR: always 8-bit, 3 channels
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as raw:
            rgb = np.asarray(ImageOps.exif_transpose(raw).convert("RGB"))
    # ImportError: ultralytics patches Image.open to try a HEIF plugin on unknown formats.
    except (OSError, UnidentifiedImageError, ImportError) as exc:
        raise ValueError(f"not an image OpenCV or Pillow can decode ({exc})") from exc
    return np.ascontiguousarray(rgb[..., ::-1])


def image_url(task: Mapping[str, Any], key: str) -> str | None:
    """The task's ``data[key]`` when it is a non-empty string (an image URL), else ``None``."""
    url = (task.get("data") or {}).get(key)
    return url if isinstance(url, str) and url else None


def read_image(task: Mapping[str, Any], key: str, media: MediaResolver) -> ImageArray | None:
    """The task's image for data key ``key`` (see :func:`decode_image`), or ``None``."""
    url = image_url(task, key)
    if url is None:
        log.warning("task %s has no image in data[%r]", task.get("id"), key)
        return None
    try:
        return decode_image(media.read_bytes(url, task_id=task.get("id")))
    except (MediaError, OSError, ValueError) as exc:
        log.warning("task %s: cannot read image %.200s: %s", task.get("id"), url, exc)
        return None


def _decode(
    tasks: Sequence[Mapping[str, Any]], keys: Mapping[str, str], media: MediaResolver
) -> dict[str, list[ImageArray | None]]:
    return {name: [read_image(t, key, media) for t in tasks] for name, key in keys.items()}


def batches(
    tasks: Sequence[Mapping[str, Any]],
    keys: Mapping[str, str],
    media: MediaResolver,
    size: int,
) -> Iterator[tuple[int, Batch]]:
    """``(start index, images)`` for consecutive batches of ``size`` tasks.

    The first batch is decoded in the calling thread (the model waits for it anyway); each
    later one is fetched and decoded by a background thread while the caller works on the
    one before.

    Args:
        tasks: the tasks of the call.
        keys: object name → task-data key of every image object a control reads.
        media: the resolver that fetches task media.
        size: tasks per batch.
    """
    starts = list(range(0, len(tasks), size))
    if len(starts) <= 1:  # nothing to overlap with: a thread would only add its start-up
        if starts:
            yield 0, _decode(tasks, keys, media)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-fetch") as pool:
        current = _decode(tasks[:size], keys, media)  # the model is idle until this is ready
        for n, start in enumerate(starts):
            pending: Future[dict[str, list[ImageArray | None]]] | None = None
            if n + 1 < len(starts):
                nxt = starts[n + 1]
                pending = pool.submit(_decode, tasks[nxt : nxt + size], keys, media)
            yield start, current
            if pending is not None:
                current = pending.result()
