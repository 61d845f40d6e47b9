"""The backend end to end on a tiny SAM: clicks and boxes to masks and polygons, cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prelabel import UnsupportedConfig
from prelabel._server import create_app
from prelabel.config import LabelConfig
from prelabel.results import rle_to_mask
from prelabel.settings import CoreSettings
from prelabel.testing import fixture, make_context
from prelabel_sam import SamBackend
from prelabel_sam.model import SamModel
from prelabel_sam.synthetic import (
    BRUSH_CONFIG,
    POLYGON_CONFIG,
    click,
    data_uri,
    rectangle,
    shapes_png,
)

SIZES = {1: (120, 90), 2: (100, 100), 3: (90, 60)}
TASKS = {
    n: {"id": n, "data": {"image": data_uri(shapes_png(w, h, seed=n))}}
    for n, (w, h) in SIZES.items()
}


@pytest.fixture
def encodes(monkeypatch):
    """How many images the image encoder ran on."""
    calls: list[tuple[int, int]] = []
    embed = SamModel.embed

    def counting(self, image):
        calls.append(image.shape[:2])
        return embed(self, image)

    monkeypatch.setattr(SamModel, "embed", counting)
    return calls


def interactive(backend, task, items, config=BRUSH_CONFIG, tmp_path=None, **extra):
    ctx = make_context(backend, config, media=tmp_path, interaction=items, extra_params=extra)
    (prediction,) = backend.predict([task], ctx)
    return [region.to_ls() for region in prediction.result], prediction


def test_a_click_gives_a_brush_mask_at_the_image_size(backend, encodes, tmp_path):
    regions, prediction = interactive(
        backend, TASKS[1], [click(30, 35, label="person")], tmp_path=tmp_path
    )
    (region,) = regions
    assert (region["from_name"], region["to_name"], region["type"]) == (
        "mask",
        "image",
        "brushlabels",
    )
    # Labelled with the prompt's label (mapped case-insensitively to the mask control's).
    assert region["value"]["brushlabels"] == ["Person"] and region["value"]["format"] == "rle"
    assert (region["original_width"], region["original_height"]) == SIZES[1]
    mask = rle_to_mask(region["value"]["rle"], *SIZES[1])
    assert mask.shape == (90, 120) and 0 < mask.sum() < mask.size
    assert 0.0 <= region["score"] <= 1.0 and prediction.region_score() == region["score"]
    assert encodes == [(90, 120)]


def test_later_clicks_on_the_image_reuse_its_embedding(backend, encodes, tmp_path):
    first, _ = interactive(backend, TASKS[1], [click(30, 35)], tmp_path=tmp_path)
    second, _ = interactive(
        backend, TASKS[1], [click(30, 35), click(70, 70, positive=False)], tmp_path=tmp_path
    )
    box, _ = interactive(backend, TASKS[1], [rectangle(50, 40, 40, 50)], tmp_path=tmp_path)
    assert encodes == [(90, 120)]
    stats = backend.stats()
    assert (stats.misses, stats.hits, stats.entries) == (1, 2, 1)
    # Each prompt still gets its own mask.
    masks = [rle_to_mask(r[0]["value"]["rle"], *SIZES[1]) for r in (first, second, box)]
    assert not np.array_equal(masks[0], masks[2])
    interactive(backend, TASKS[2], [click(50, 50)], tmp_path=tmp_path)
    assert encodes == [(90, 120), (100, 100)]


def test_every_box_of_the_context_is_segmented_with_its_label(backend, tmp_path):
    items = [
        rectangle(5, 5, 40, 40, label="Car"),
        rectangle(55, 50, 40, 45, label="Person"),
        click(20, 20),
    ]
    regions, _ = interactive(backend, TASKS[2], items, tmp_path=tmp_path)
    assert [r["value"]["brushlabels"] for r in regions] == [["Car"], ["Person"]]
    assert len({r["id"] for r in regions}) == 2


def test_polygons_are_chosen_by_the_config_and_stay_inside_the_image(backend, tmp_path):
    regions, _ = interactive(
        backend, TASKS[3], [click(30, 40, label="Car")], POLYGON_CONFIG, tmp_path
    )
    assert regions and all(r["type"] == "polygonlabels" for r in regions)
    for region in regions:
        assert region["value"]["polygonlabels"] == ["Car"]
        assert (region["original_width"], region["original_height"]) == SIZES[3]
        points = np.asarray(region["value"]["points"])
        assert len(points) >= 3 and (points >= 0).all() and (points <= 100).all()


def test_the_output_setting_picks_between_brush_and_polygon(backend, tmp_path):
    both = BRUSH_CONFIG.replace(
        "</BrushLabels>",
        '</BrushLabels><PolygonLabels name="outline" toName="image">'
        '<Label value="Car"/><Label value="Person"/></PolygonLabels>',
    )
    auto, _ = interactive(backend, TASKS[1], [click(30, 35)], both, tmp_path)
    polygons, _ = interactive(backend, TASKS[1], [click(30, 35)], both, tmp_path, output="polygon")
    assert {r["type"] for r in auto} == {"brushlabels"}
    assert polygons and {r["type"] for r in polygons} == {"polygonlabels"}
    with pytest.raises(UnsupportedConfig, match="PolygonLabels"):
        interactive(backend, TASKS[1], [click(30, 35)], BRUSH_CONFIG, tmp_path, output="polygon")


def test_a_batch_without_context_is_empty_and_prefetches_every_image(
    backend, encodes, tmp_path, caplog
):
    broken = {"id": 8, "data": {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}}
    tasks = [TASKS[1], TASKS[2], {"id": 9, "data": {}}, broken, TASKS[3]]
    ctx = make_context(backend, BRUSH_CONFIG, media=tmp_path)
    out = backend.predict(tasks, ctx)
    assert [p.result for p in out] == [[], [], [], [], []]
    assert backend.prefetcher.wait_idle(60)
    assert sorted(encodes) == sorted([(90, 120), (100, 100), (60, 90)])
    assert "cannot prefetch task 8's image" in caplog.text and "Traceback" not in caplog.text
    # The first click on a prefetched image encodes nothing.
    interactive(backend, TASKS[2], [click(50, 50)], tmp_path=tmp_path)
    assert len(encodes) == 3
    stats = backend.stats()
    assert (stats.prefetched, stats.prefetch_hits, stats.misses) == (3, 1, 0)


def test_an_interactive_call_without_prompts_is_an_empty_prediction(backend, encodes, tmp_path):
    for items in ([], [click(10, 10, positive=False)], [{"type": "choices", "value": {}}]):
        regions, prediction = interactive(backend, TASKS[1], items, tmp_path=tmp_path)
        assert regions == [] and prediction.region_score() is None


def test_an_unreadable_image_is_an_error_the_annotator_sees(backend, tmp_path):
    broken = {"id": 5, "data": {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}}
    with pytest.raises(ValueError, match="decode"):
        interactive(backend, broken, [click(10, 10)], tmp_path=tmp_path)
    # Over HTTP the click's only task failed, so /predict fails with the reason, which Label
    # Studio hands the editor as {"errors": [...]} (protocol §5).
    app = create_app(
        backend, CoreSettings(model_dir=tmp_path / "server"), load=False, start_jobs=False
    )
    body = fixture("predict_interactive_image")["json"]
    body.update(label_config=BRUSH_CONFIG, tasks=[broken])
    body["params"]["context"] = {"result": [click(10, 10)]}
    answer = app.test_client().post("/predict", json=body)
    assert answer.status_code == 500
    assert "not an image OpenCV or Pillow can decode" in answer.get_json()["message"]


def test_setup_refuses_configs_that_would_do_nothing(backend):
    no_mask = '<View><Image name="image" value="$image"/><KeyPointLabels name="kp" toName="image" smart="true"><Label value="Car"/></KeyPointLabels></View>'
    with pytest.raises(UnsupportedConfig, match="BrushLabels or PolygonLabels"):
        backend.check_config(LabelConfig.parse(no_mask))
    mismatch = BRUSH_CONFIG.replace(
        '<Label value="Person"/></KeyPointLabels>', '<Label value="Dog"/></KeyPointLabels>'
    )
    with pytest.raises(
        UnsupportedConfig, match=r"smart KeyPointLabels 'kp' has labels 'Dog'.*BrushLabels 'mask'"
    ):
        backend.check_config(LabelConfig.parse(mismatch))
    # Not smart: LS never sends it as a prompt, so its labels are its own business.
    backend.check_config(
        LabelConfig.parse(
            mismatch.replace('name="kp" toName="image" smart="true"', 'name="kp" toName="image"')
        )
    )
    # predicted_values maps a prompt label to a mask label.
    backend.check_config(
        LabelConfig.parse(
            mismatch.replace(
                '<Label value="Car"/><Label value="Person"/></BrushLabels>',
                '<Label value="Car"/><Label value="Person" predicted_values="Dog"/></BrushLabels>',
            )
        )
    )


def test_tasks_created_webhooks_prefetch_the_new_images(backend, encodes, tmp_path):
    app = create_app(
        backend, CoreSettings(model_dir=tmp_path / "server"), load=False, start_jobs=False
    )
    client = app.test_client()
    event = fixture("webhook_TASKS_CREATED")["json"]
    event["project"]["label_config"] = BRUSH_CONFIG
    event["tasks"] = [TASKS[3], TASKS[1]]
    response = client.post("/webhook", json=event)
    assert response.status_code == 200
    assert backend.prefetcher.wait_idle(60)
    assert encodes == [(60, 90), (90, 120)]  # in the order they were created
    assert backend.stats().prefetched == 2


def test_every_setting_is_documented():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in SamBackend.Settings.model_fields:
        assert f"PRELABEL_SAM_{name.upper()}" in readme, name


def test_load_puts_torch_on_the_core_thread_policy(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("PRELABEL_THREADS", "1")
        SamBackend().load()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_flood_of_prompts_is_cut_to_the_bound(backend, tmp_path, monkeypatch, caplog):
    import prelabel_sam.backend as module

    monkeypatch.setattr(module, "MAX_OBJECTS", 2)
    boxes = [rectangle(5 + 30 * i, 10, 20, 20) for i in range(3)]
    regions, _ = interactive(backend, TASKS[1], boxes, tmp_path=tmp_path)
    assert len(regions) == 2
    assert "3 objects prompted at once; segmenting the first 2" in caplog.text
