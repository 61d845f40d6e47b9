"""Loading segment-anything checkpoints, and the masks they give, against SamPredictor itself."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.build_sam import _build_sam

from prelabel import BackendLoadError
from prelabel.vision.images import decode_image
from prelabel_sam import SamBackend
from prelabel_sam.model import architecture, load_sam, resolve_device
from prelabel_sam.synthetic import ENCODERS, shapes_png


@pytest.mark.parametrize(
    ("kind", "embed_dim", "depth", "heads", "global_attn"),
    [
        ("vit_b", 768, 12, 12, (2, 5, 8, 11)),
        ("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
        ("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    ],
)
def test_the_official_encoders_are_read_from_their_weights(
    kind, embed_dim, depth, heads, global_attn
):
    # The registry's own builders, on the meta device: shapes without memory.
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        state = sam_model_registry[kind]().state_dict()
    shape = architecture(state)
    assert (shape.embed_dim, shape.depth, shape.num_heads) == (embed_dim, depth, heads)
    assert shape.global_attn_indexes == global_attn and shape.name == kind


def test_the_tiny_test_model_loads_through_the_same_path(model_dir):
    model = load_sam(str(model_dir / "tiny.pth"), "cpu")
    assert model.architecture.name == "vit-64x2"
    assert model.architecture.global_attn_indexes == (1,)
    assert model.device == "cpu" and not model.sam.training
    # On the CPU the mask decoder's convolutions run channels-last (the faster layout there).
    upscaling = model.sam.mask_decoder.output_upscaling[0].weight
    assert upscaling.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize(
    ("points", "labels", "box"),
    [
        ([[30.0, 30.0], [90.0, 60.0]], [1, 0], [10.0, 15.0, 70.0, 50.0]),
        ([[30.0, 30.0]], [1], None),
        ([], [], [10.0, 15.0, 70.0, 50.0]),
    ],
    ids=["clicks-and-box", "one-click", "box-only"],
)
def test_masks_match_segment_anythings_own_predictor(model_dir, points, labels, box):
    """The cached-embedding path gives SamPredictor's best mask and score for the same prompt."""
    model = load_sam(str(model_dir / "tiny.pth"), "cpu")
    image = decode_image(shapes_png(120, 90))
    embedding = model.embed(image)
    assert embedding.size == (120, 90) and embedding.original_size == (90, 120)
    assert embedding.input_size == (768, 1024) and embedding.nbytes == model.embedding_bytes
    mask, score = model.segment(embedding, points, labels, box)

    reference = _build_sam(**ENCODERS["tiny"])
    reference.load_state_dict(torch.load(model_dir / "tiny.pth", weights_only=True))
    predictor = SamPredictor(reference.eval())
    predictor.set_image(np.ascontiguousarray(image[..., ::-1]))  # RGB, as its docs show
    masks, scores, _ = predictor.predict(
        point_coords=np.array(points) if points else None,
        point_labels=np.array(labels) if points else None,
        box=np.array(box) if box else None,
    )
    best = int(np.argmax(scores))
    assert mask.shape == (90, 120) and mask.dtype == bool
    assert score == pytest.approx(float(scores[best]), abs=1e-4)
    assert (mask != masks[best]).mean() < 0.001


def test_a_missing_checkpoint_names_the_file_and_where_to_get_it(model_dir, monkeypatch):
    monkeypatch.setenv("PRELABEL_SAM_MODEL", "sam_vit_h_4b8939.pth")
    backend = SamBackend()
    with pytest.raises(BackendLoadError) as missing:
        backend.load()
    message = str(missing.value)
    assert str(model_dir.resolve() / "sam_vit_h_4b8939.pth") in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth" in message
    assert "PRELABEL_SAM_MODEL" in message


def test_a_checkpoint_outside_the_model_dir_is_refused(monkeypatch):
    monkeypatch.setenv("PRELABEL_SAM_MODEL", "../tiny.pth")
    with pytest.raises(BackendLoadError, match="only inside PRELABEL_MODEL_DIR"):
        SamBackend().load()


def test_files_that_are_not_sam_checkpoints_are_refused_naming_them(tmp_path: Path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(BackendLoadError, match=r"Could not read SAM checkpoint .*garbage\.pth"):
        load_sam(str(garbage), "cpu")

    other = tmp_path / "other.pth"
    torch.save({"backbone.weight": torch.zeros(2)}, other)
    with pytest.raises(BackendLoadError, match=r"other\.pth: it has no image_encoder"):
        load_sam(str(other), "cpu")

    truncated = tmp_path / "truncated.pth"
    with torch.device("meta"):
        state = _build_sam(**ENCODERS["tiny"]).state_dict()
    torch.save(
        {k: torch.zeros(v.shape) for k, v in state.items() if "mask_decoder" not in k}, truncated
    )
    with pytest.raises(BackendLoadError) as unfit:
        load_sam(str(truncated), "cpu")
    message = str(unfit.value)
    assert "does not fit its model" in message and "unexpected" in message
    assert re.search(
        r"\d+ weights \(mask_decoder\.[\w.]+, mask_decoder\.[\w.]+, mask_decoder", message
    )
    assert len(message) < 1000


def test_pickled_code_in_a_checkpoint_never_runs(tmp_path: Path):
    class Payload:
        def __reduce__(self):
            return (Path(tmp_path / "ran").write_text, ("pwned",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(BackendLoadError, match="Could not read SAM checkpoint"):
        load_sam(str(evil), "cpu")
    assert not (tmp_path / "ran").exists()


def test_devices_are_checked():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(BackendLoadError, match="not a torch device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(BackendLoadError, match="torch sees no CUDA device"):
            resolve_device("cuda")
