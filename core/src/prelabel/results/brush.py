"""Label Studio brush RLE codec, bit-exact with LS and its SDK (protocol §9.3).

LS stores a brush mask as the ``@thi.ng/rle-pack`` bit stream of the mask's flattened RGBA
pixel buffer. :func:`encode_rle` makes the same block choices as the SDK's encoder, so its
output matches the SDK's byte for byte; :func:`decode_rle` accepts any valid stream, including
the editor's multi-value literal blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["decode_rle", "encode_rle", "mask_to_rle", "rle_to_mask"]

_WORD_SIZE = 8
_RLE_SIZES = (3, 4, 8, 16)
# The 21 header bits after N: wordSize-1 (5 bits), then rleSizes[k]-1 (4 bits each).
_SIZES_FIELD = int(f"{_WORD_SIZE - 1:05b}" + "".join(f"{size - 1:04b}" for size in _RLE_SIZES), 2)
_MAX_BLOCK = 1 << _RLE_SIZES[-1]
_HEADER_BITS = 32 + 5 + 4 * 4
# Longest run each of the first three widths can hold; longer runs use the last width.
_WIDTH_LIMITS = np.array([1 << size for size in _RLE_SIZES[:3]])

_ByteValues: TypeAlias = bytes | Sequence[int] | npt.NDArray[np.integer[Any]]


def encode_rle(values: _ByteValues) -> list[int]:
    """Encode byte values (0..255) as an LS RLE byte list, exactly as the SDK's encoder does.

    Args:
        values: the flat value buffer (for a mask: RGBA bytes, 4 per pixel).

    Returns:
        The encoded stream as a list of ints in 0..255, ready for ``value["rle"]``.

    Raises:
        ValueError: ``values`` is not one-dimensional, holds values outside 0..255, or has
            2**32 or more items.
    """
    flat = _as_bytes_array(values, "values")
    if flat.size == 0:
        return _pack(0, np.zeros(0, np.uint8), np.zeros(0, np.int64))
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    lengths = np.diff(np.append(starts, flat.size))
    return _pack(flat.size, flat[starts], lengths)


def decode_rle(rle: _ByteValues) -> npt.NDArray[np.uint8]:
    """Decode an LS RLE stream into its flat array of values.

    Reads the word size and run-length widths from the header rather than assuming the SDK's,
    accepts repeat and multi-value literal blocks, stops after the declared number of values
    and ignores trailing bytes.

    Args:
        rle: the stream, as found in ``value["rle"]``.

    Returns:
        The decoded values, one-dimensional ``uint8``.

    Raises:
        ValueError: the stream is truncated, a block runs past the declared length, the word
            size is over 8 bits, or an item is not a byte value.
    """
    data = _as_bytes_array(rle, "rle")
    end = data.size * 8
    if end < _HEADER_BITS:
        raise ValueError(f"RLE is truncated: {data.size} bytes cannot hold the 7-byte header")
    # Fields are read by slicing a '0'/'1' string and parsing with int(..., 2): the fastest
    # pure-Python bit reader. The zero tail keeps slices of one block's fixed-width fields
    # (at most 27 bits) full-length; `end` still detects truncation.
    bits = (np.unpackbits(data) + ord("0")).tobytes().decode("ascii") + "0" * 32
    count = int(bits[:32], 2)
    word_size = int(bits[32:37], 2) + 1
    if word_size > _WORD_SIZE:
        raise ValueError(f"RLE word size {word_size} is not supported (at most 8 bits)")
    rle_sizes = [int(bits[pos : pos + 4], 2) + 1 for pos in range(37, _HEADER_BITS, 4)]
    values: list[int] = []
    repeats: list[int] = []
    pos, done = _HEADER_BITS, 0
    while done < count:
        head = int(bits[pos : pos + 3], 2)
        size = rle_sizes[head & 3]
        length = int(bits[pos + 3 : pos + 3 + size], 2) + 1
        pos += 3 + size
        if done + length > count:
            raise ValueError(
                f"corrupt RLE: a block of {length} values at value {done} overruns the "
                f"declared count {count}"
            )
        if head >> 2:
            values.append(int(bits[pos : pos + word_size], 2))
            repeats.append(length)
            pos += word_size
        else:
            stop = pos + length * word_size
            values.extend(
                int(bits[p : p + word_size], 2) for p in range(pos, min(stop, end), word_size)
            )
            repeats.extend([1] * length)
            pos = stop
        if pos > end:
            raise ValueError(
                f"RLE is truncated: {data.size} bytes end inside the block for value {done} "
                f"of {count}"
            )
        done += length
    return np.repeat(np.array(values, np.uint8), np.array(repeats, np.int64))


def mask_to_rle(mask: npt.ArrayLike) -> list[int]:
    """Encode a 2-D mask the way LS expects a brush region (255 in all four RGBA channels).

    Args:
        mask: rows x columns; ``bool``, integers (non-zero is in the mask) or floats that are
            all 0 or 1. Its shape must be the image's natural size (height, width).

    Returns:
        The RLE byte list for ``value["rle"]``.

    Raises:
        ValueError: ``mask`` is not 2-D, or is a float mask with values other than 0 and 1.
    """
    pixels = _as_bool_mask(mask).ravel()
    if pixels.size == 0:
        return encode_rle(b"")
    # All four channels of a pixel are equal, so the value runs are the pixel runs times 4;
    # detecting them on pixels avoids building the 4x larger RGBA buffer.
    starts = np.concatenate(([0], np.flatnonzero(pixels[1:] != pixels[:-1]) + 1))
    lengths = np.diff(np.append(starts, pixels.size)) * 4
    run_values = np.where(pixels[starts], 255, 0).astype(np.uint8)
    return _pack(pixels.size * 4, run_values, lengths)


def rle_to_mask(rle: _ByteValues, width: int, height: int) -> npt.NDArray[np.bool_]:
    """Decode an LS brush RLE into a boolean ``height x width`` mask (alpha channel > 0).

    Args:
        rle: the stream, as found in ``value["rle"]``.
        width: ``original_width`` of the region.
        height: ``original_height`` of the region.

    Raises:
        ValueError: the stream is invalid or does not hold exactly ``width * height * 4``
            values.
    """
    flat = decode_rle(rle)
    if flat.size != width * height * 4:
        raise ValueError(
            f"RLE holds {flat.size} values but a {width}x{height} RGBA mask needs "
            f"{width * height * 4}"
        )
    return flat.reshape(height, width, 4)[:, :, 3] > 0


def _as_bytes_array(data: _ByteValues, what: str) -> npt.NDArray[np.uint8]:
    if isinstance(data, bytes):
        return np.frombuffer(data, np.uint8)
    array = np.asarray(data)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, np.uint8)
    if array.dtype.kind not in "biu":
        raise ValueError(f"{what} must hold integers in 0..255, got dtype {array.dtype}")
    if array.min() < 0 or array.max() > 255:
        raise ValueError(f"{what} must hold integers in 0..255")
    return array.astype(np.uint8, copy=False)


def _as_bool_mask(mask: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {array.shape}")
    if array.dtype == np.bool_:
        return array
    if array.dtype.kind == "f" and not ((array == 0) | (array == 1)).all():
        raise ValueError("float mask must hold only 0 and 1; threshold it first (mask > 0.5)")
    in_mask: npt.NDArray[np.bool_] = array != 0
    return in_mask


def _pack(
    count: int, run_values: npt.NDArray[np.uint8], run_lengths: npt.NDArray[np.int64]
) -> list[int]:
    """Write the stream for the given runs with the SDK's block choice and padding."""
    if count >= 1 << 32:
        raise ValueError(f"RLE can hold at most 2**32 - 1 values, got {count}")
    # Like the SDK: the width is chosen per run, and a length-1 run is a literal block (repeat
    # flag 0) in the narrowest width. A run longer than the widest field is split into full
    # blocks plus a remainder that keeps the widest field and the repeat flag, even when short.
    run_index = np.searchsorted(_WIDTH_LIMITS, run_lengths)
    blocks_per_run = (run_lengths + _MAX_BLOCK - 1) // _MAX_BLOCK
    values = np.repeat(run_values, blocks_per_run).astype(np.uint32)
    size_index = np.repeat(run_index, blocks_per_run)
    repeat = np.repeat(run_lengths > 1, blocks_per_run).astype(np.uint32)
    lengths = np.full(values.size, _MAX_BLOCK, np.int64)
    lengths[np.cumsum(blocks_per_run) - 1] = run_lengths - _MAX_BLOCK * (blocks_per_run - 1)
    sizes = np.array(_RLE_SIZES, np.uint32)[size_index]
    codes = (
        repeat << (2 + sizes + _WORD_SIZE)
        | size_index.astype(np.uint32) << (sizes + _WORD_SIZE)
        | (lengths - 1).astype(np.uint32) << _WORD_SIZE
        | values
    )
    widths = 3 + sizes + _WORD_SIZE
    codes = np.concatenate((np.array([count, _SIZES_FIELD], np.uint32), codes))
    widths = np.concatenate((np.array([32, _HEADER_BITS - 32], np.uint32), widths))
    return _write_fields(codes.astype(np.uint64), widths.astype(np.uint64))


def _write_fields(codes: npt.NDArray[np.uint64], widths: npt.NDArray[np.uint64]) -> list[int]:
    """Concatenate fields of 14 to 32 bits MSB-first, padded as the SDK pads the stream."""
    ends = np.cumsum(widths)
    starts = ends - widths
    # A field starting at bit `s % 8` of byte `s // 8` lies within that byte and the next
    # four: shift it into place in a 40-bit window and OR the window's five bytes in. Every
    # field is at least 14 bits, so no two start in the same byte: the indices of one
    # fancy-indexed OR are distinct, which numpy needs for it to be exact.
    window = codes << (np.uint64(40) - (starts & np.uint64(7)) - widths)
    first = (starts >> np.uint64(3)).astype(np.intp)
    # The SDK always pads with 8 - (bits % 8) zero bits: a whole zero byte when aligned.
    size = int(ends[-1]) // 8 + 1
    stream = np.zeros(size + 4, np.uint8)
    for byte, shift in enumerate(range(32, -1, -8)):
        stream[first + byte] |= (window >> np.uint64(shift)).astype(np.uint8)
    packed: list[int] = stream[:size].tolist()
    return packed
