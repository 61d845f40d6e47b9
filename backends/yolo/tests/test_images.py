"""Image decoding: BGR pixels as ultralytics reads files, oriented as Label Studio shows them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from prelabel_yolo.images import decode_image

RED, BLUE = (255, 0, 0), (0, 0, 255)


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
