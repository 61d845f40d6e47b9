"""prelabel.vision.images: BGR pixels as cv2.imread gives them, oriented as Label Studio shows them."""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prelabel import CoreSettings
from prelabel.media import MediaResolver
from prelabel.vision.images import batches, decode_image, image_url, read_image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _left_blue_right_red() -> Image.Image:
    image = Image.new("RGB", (60, 20), RED)
    image.paste(BLUE, (0, 0, 10, 20))
    return image


def test_png_is_decoded_to_bgr() -> None:
    pixels = decode_image(_encoded(_left_blue_right_red(), "PNG"))
    assert pixels.shape == (20, 60, 3) and pixels.dtype == np.uint8
    assert pixels[10, 5].tolist() == [255, 0, 0]  # blue, in BGR order
    assert pixels[10, 50].tolist() == [0, 0, 255]  # red


def test_exif_orientation_is_applied() -> None:
    """Orientation 6 (rotate 90° clockwise to view): the blue left strip ends up on top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encoded(_left_blue_right_red(), "JPEG", quality=100, exif=exif.tobytes())
    pixels = decode_image(data)
    assert pixels.shape == (60, 20, 3)
    top, bottom = pixels[5, 10].astype(int), pixels[50, 10].astype(int)
    assert top[0] > 200 and top[2] < 50  # blue
    assert bottom[2] > 200 and bottom[0] < 50  # red


def test_formats_opencv_cannot_read_fall_back_to_pillow() -> None:
    data = _encoded(_left_blue_right_red(), "ICO", sizes=[(60, 20)])
    pixels = decode_image(data)
    assert pixels.shape[2] == 3 and pixels.flags["C_CONTIGUOUS"]
    assert pixels[pixels.shape[0] // 2, 2].tolist() == [255, 0, 0]


def test_grayscale_and_alpha_become_three_channels() -> None:
    gray = decode_image(_encoded(Image.new("L", (8, 6), 128), "PNG"))
    rgba = decode_image(_encoded(Image.new("RGBA", (8, 6), (10, 20, 30, 0)), "PNG"))
    assert gray.shape == rgba.shape == (6, 8, 3)
    assert gray[0, 0].tolist() == [128, 128, 128] and rgba[0, 0].tolist() == [30, 20, 10]


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n truncated"])
def test_undecodable_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"decode|empty"):
        decode_image(data)


@pytest.mark.parametrize(("count", "size"), [(7, 3), (7, 1), (7, 10), (6, 3), (0, 4)])
def test_batches_cover_every_task_in_order(tmp_path: Path, count: int, size: int) -> None:
    media = MediaResolver(CoreSettings(model_dir=tmp_path))
    widths = [10 + i for i in range(count)]
    tasks = [
        {"id": i, "data": {"image": data_uri(_encoded(Image.new("RGB", (w, 4)), "PNG"))}}
        for i, w in enumerate(widths)
    ]
    seen = []
    for start, images in batches(tasks, {"img": "image"}, media, size):
        assert start == len(seen) and 0 < len(images["img"]) <= size
        seen += [image.shape[1] for image in images["img"] if image is not None]
    assert seen == widths


def test_a_single_batch_is_decoded_without_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prelabel.vision.images as images

    threads: list[str] = []
    decode = images._decode

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return decode(*args)

    monkeypatch.setattr(images, "_decode", recording)
    media = MediaResolver(CoreSettings(model_dir=tmp_path))
    tasks = [
        {"id": i, "data": {"image": data_uri(_encoded(Image.new("RGB", (4, 4)), "PNG"))}}
        for i in range(4)
    ]
    list(batches(tasks, {"img": "image"}, media, 8))
    assert threads == ["MainThread"]
    threads.clear()
    list(batches(tasks, {"img": "image"}, media, 2))
    # The first batch is needed at once; the next one is fetched while the model runs.
    assert threads[0] == "MainThread" and threads[1].startswith("image-fetch")


def test_read_image_gives_none_and_a_warning_for_missing_or_unreadable_images(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    media = MediaResolver(CoreSettings(model_dir=tmp_path))
    png = data_uri(_encoded(Image.new("RGB", (5, 3)), "PNG"))
    assert read_image({"id": 1, "data": {"image": png}}, "image", media).shape == (3, 5, 3)
    assert image_url({"id": 2, "data": {"image": ""}}, "image") is None
    assert read_image({"id": 2, "data": {}}, "image", media) is None
    broken = {"id": 3, "data": {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}}
    assert read_image(broken, "image", media) is None
    assert "task 2 has no image" in caplog.text
    assert "task 3: cannot read image" in caplog.text
