"""Brush RLE codec: protocol §9.3 test vectors, a reference encoder, round trips, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.results import decode_rle, encode_rle, mask_to_rle, rle_to_mask

# --- §9.3 test vectors (generated with the SDK encoder, checked with its decoder) -------------

TOP_LEFT_2X2 = [0, 0, 0, 16, 57, 27, 252, 127, 246, 192, 0]
DIAGONAL_2X2 = [0, 0, 0, 16, 57, 27, 252, 127, 243, 128, 71, 254]
ROW_4X3 = [0, 0, 0, 48, 57, 27, 254, 19, 0, 159, 255, 9, 128, 0]
ALL_300X300 = [0, 5, 126, 64, 57, 27] + [255] * 17 + [254, 252, 127, 254]
SINGLE_5 = [0, 0, 0, 1, 57, 27, 248, 0, 160]
LITERAL_123 = [0, 0, 0, 3, 57, 27, 248, 64, 32, 64, 96]


def _row_mask() -> np.ndarray:
    mask = np.zeros((3, 4), dtype=bool)
    mask[1, 1:3] = True
    return mask


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ([[1, 0], [0, 0]], TOP_LEFT_2X2),
        ([[1, 0], [0, 1]], DIAGONAL_2X2),
        (_row_mask(), ROW_4X3),
        (np.ones((300, 300), dtype=np.uint8), ALL_300X300),
    ],
    ids=["top-left-2x2", "diagonal-2x2", "row-4x3", "all-300x300"],
)
def test_mask_vectors_encode_and_decode(mask, expected):
    mask = np.asarray(mask, dtype=bool)
    assert mask_to_rle(mask) == expected
    assert encode_rle(np.repeat(np.where(mask, 255, 0).ravel(), 4)) == expected
    height, width = mask.shape
    np.testing.assert_array_equal(rle_to_mask(expected, width, height), mask)


def test_vector_top_left_decodes_to_values():
    assert decode_rle(TOP_LEFT_2X2).tolist() == [255] * 4 + [0] * 12


def test_vector_300x300_decodes_to_360000_values():
    values = decode_rle(ALL_300X300)
    assert values.size == 360000
    assert (values == 255).all()


def test_vector_single_value():
    assert encode_rle([5]) == SINGLE_5
    assert decode_rle(SINGLE_5).tolist() == [5]


def test_vector_literal_block_decodes():
    assert decode_rle(LITERAL_123).tolist() == [1, 2, 3]


def test_aligned_stream_gets_a_whole_zero_byte_of_padding():
    # 32 (N) + 21 (sizes) + 27 (one 16-bit repeat block) = 80 bits, already aligned.
    # N=300 -> 0,0,1,44; '11111'+'1'+'11' -> 255; len-1=299 -> 1,43; value 7; padding 0.
    assert encode_rle([7] * 300) == [0, 0, 1, 44, 57, 27, 255, 1, 43, 7, 0]


def test_every_stream_starts_with_count_and_sdk_sizes():
    rle = encode_rle(np.arange(70000) % 3)
    assert rle[:6] == [0, 1, 17, 112, 57, 27]


def test_empty_input_encodes_header_only():
    assert encode_rle([]) == [0, 0, 0, 0, 57, 27, 248]
    assert decode_rle([0, 0, 0, 0, 57, 27, 248]).size == 0


# --- an independent reference: the SDK algorithm, written with bit strings ------------------


def _reference_encode(values: list[int]) -> list[int]:
    out = f"{len(values):032b}" + "00111" + "0010" + "0011" + "0111" + "1111"
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    for value, length in runs:
        if length == 1:
            out += "0" + "00" + "000" + f"{value:08b}"
        elif length <= 8:
            out += "1" + "00" + f"{length - 1:03b}" + f"{value:08b}"
        elif length <= 16:
            out += "1" + "01" + f"{length - 1:04b}" + f"{value:08b}"
        elif length <= 256:
            out += "1" + "10" + f"{length - 1:08b}" + f"{value:08b}"
        else:
            while length > 65536:
                out += "1" + "11" + f"{65535:016b}" + f"{value:08b}"
                length -= 65536
            out += "1" + "11" + f"{length - 1:016b}" + f"{value:08b}"
    out += "0" * (8 - len(out) % 8)
    return _bits(out)


def _bits(stream: str) -> list[int]:
    stream += "0" * (-len(stream) % 8)
    return [int(stream[i : i + 8], 2) for i in range(0, len(stream), 8)]


@pytest.mark.parametrize(
    "length", [1, 2, 8, 9, 16, 17, 256, 257, 65535, 65536, 65537, 131072, 131073]
)
def test_run_length_boundaries_match_reference(length):
    values = [3] + [200] * length + [3]
    assert encode_rle(values) == _reference_encode(values)
    assert decode_rle(encode_rle(values)).tolist() == values


@pytest.mark.parametrize("seed", range(20))
def test_random_values_match_reference_and_round_trip(seed):
    rng = np.random.default_rng(seed)
    # Few distinct values and geometric run lengths give every block width a workout.
    runs = rng.geometric(rng.choice([0.5, 0.05, 0.005]), size=rng.integers(1, 60))
    values = np.repeat(rng.integers(0, 4, size=runs.size) * 85, runs).tolist()
    assert encode_rle(values) == _reference_encode(values)
    assert decode_rle(encode_rle(values)).tolist() == values


@pytest.mark.parametrize("seed", range(20))
def test_random_masks_round_trip(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 80, size=2)
    noise = rng.random((height, width)) < rng.random()
    blob = np.hypot(*np.ogrid[:height, :width]) < rng.integers(1, 100)
    for mask in (noise, blob, noise ^ blob):
        rle = mask_to_rle(mask)
        assert rle == _reference_encode(np.repeat(np.where(mask, 255, 0).ravel(), 4).tolist())
        np.testing.assert_array_equal(rle_to_mask(rle, width, height), mask)


def test_full_hd_mask_round_trips():
    rows, cols = np.ogrid[:1080, :1920]
    mask = ((rows - 500) ** 2 + (cols - 900) ** 2 < 300**2) | ((cols > 100) & (rows < 900))
    rle = mask_to_rle(mask)
    assert rle[:4] == [0, 0x7E, 0x90, 0x00]  # N = 1920 * 1080 * 4 = 8294400
    np.testing.assert_array_equal(rle_to_mask(rle, 1920, 1080), mask)


# --- decoding what the editor writes -----------------------------------------------------------

SIZES_3_4_8_16 = "00111" + "0010" + "0011" + "0111" + "1111"


def test_decode_editor_style_rgba_with_literal_block():
    # A 2x1 image: pixel 0 painted red (255, 0, 0, 255), pixel 1 empty. The editor's encoder
    # writes mixed values as one literal block: '0', k=00, len-1=3, then four 8-bit words.
    literal = "".join(["0", "00", "011", "11111111", "00000000", "00000000", "11111111"])
    zeros = "".join(["1", "00", "011", "00000000"])
    rle = _bits(f"{8:032b}" + SIZES_3_4_8_16 + literal + zeros)
    assert decode_rle(rle).tolist() == [255, 0, 0, 255, 0, 0, 0, 0]
    np.testing.assert_array_equal(rle_to_mask(rle, 2, 1), [[True, False]])


def test_decode_reads_run_widths_from_the_header():
    # rleSizes [1, 2, 3, 4]; one repeat block with k=2 (3 bits): len-1=4, value 9.
    stream = f"{5:032b}" + "00111" + "0000" + "0001" + "0010" + "0011" + "1" + "10" + "100"
    rle = _bits(stream + "00001001")
    assert rle == [0, 0, 0, 5, 56, 9, 30, 129, 32]
    assert decode_rle(rle).tolist() == [9] * 5


def test_decode_accepts_smaller_word_size():
    # wordSize 4: one literal block of two words 0xA, 0x5.
    stream = f"{2:032b}" + "00011" + "0010" + "0011" + "0111" + "1111" + "0" + "00" + "001"
    assert decode_rle(_bits(stream + "1010" + "0101")).tolist() == [10, 5]


def test_rle_to_mask_uses_only_the_alpha_channel():
    values = [255, 255, 255, 0, 0, 0, 0, 1]  # white but transparent, then alpha 1
    np.testing.assert_array_equal(rle_to_mask(encode_rle(values), 2, 1), [[False, True]])


def test_decode_ignores_trailing_bytes_and_accepts_bytes_and_arrays():
    assert decode_rle([*TOP_LEFT_2X2, 1, 2, 3]).tolist() == [255] * 4 + [0] * 12
    assert decode_rle(bytes(ROW_4X3)).size == 48
    assert decode_rle(np.array(ROW_4X3, dtype=np.int64)).size == 48


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 3, 5, 8])
def test_decode_truncated_stream(cut):
    with pytest.raises(ValueError, match="truncated"):
        decode_rle(ROW_4X3[:-cut])


def test_decode_truncated_literal_block():
    with pytest.raises(ValueError, match="truncated"):
        decode_rle(LITERAL_123[:-2])


def test_decode_block_past_declared_count():
    with pytest.raises(ValueError, match="overruns the declared count 2"):
        decode_rle([0, 0, 0, 2, *TOP_LEFT_2X2[4:]])


def test_decode_refuses_words_over_8_bits():
    with pytest.raises(ValueError, match="word size 16"):
        decode_rle([0, 0, 0, 16, 0b01111001, *TOP_LEFT_2X2[5:]])


@pytest.mark.parametrize(
    "bad", [[0, 0, 0, 1, 57, 27, 256], [0, -1, 0], [[0, 0]], [0.5, 1.0], ["a"]]
)
def test_decode_refuses_non_byte_items(bad):
    with pytest.raises(ValueError):
        decode_rle(bad)


def test_encode_refuses_non_byte_values():
    with pytest.raises(ValueError, match=r"0\.\.255"):
        encode_rle([0, 256])
    with pytest.raises(ValueError, match="one-dimensional"):
        encode_rle(np.zeros((2, 2), dtype=np.uint8))


def test_rle_to_mask_size_mismatch():
    with pytest.raises(ValueError, match="holds 48 values but a 4x4 RGBA mask needs 64"):
        rle_to_mask(ROW_4X3, 4, 4)


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[0, 255], [255, 0]], dtype=np.uint8),
        [[0, 1], [1, 0]],
        np.array([[0.0, 1.0], [1.0, 0.0]]),
        np.array([[False, True], [True, False]]),
    ],
    ids=["uint8-255", "int-list", "float-0-1", "bool"],
)
def test_mask_dtypes_give_the_same_stream(mask):
    assert mask_to_rle(mask) == mask_to_rle(np.array([[False, True], [True, False]]))


def test_mask_refuses_probabilities_and_wrong_rank():
    with pytest.raises(ValueError, match="threshold it first"):
        mask_to_rle(np.array([[0.2, 0.9]]))
    with pytest.raises(ValueError, match="2-D"):
        mask_to_rle(np.zeros(4, dtype=bool))
