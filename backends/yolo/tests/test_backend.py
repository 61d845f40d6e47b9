"""The backend end to end with real ultralytics models built offline."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prelabel import BackendLoadError, Evaluation, UnsupportedConfig
from prelabel.config import LabelConfig
from prelabel.testing import make_context
from prelabel_yolo import YoloBackend
from prelabel_yolo.models import ModelCache, resolve_weights
from prelabel_yolo.synthetic import Shape, box_result, data_uri, shapes_image

BOXES = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image" model_score_threshold="{conf}">
  <Label value="Person"/><Label value="Vehicle" predicted_values="car,truck"/>
</RectangleLabels></View>"""


def _backend(**settings: Any) -> YoloBackend:
    backend = YoloBackend(YoloBackend.load_settings(**settings))
    backend.load()
    return backend


def _images(
    n: int, seed: int = 0, size: tuple[int, int] = (320, 240)
) -> list[tuple[bytes, list[Shape]]]:
    rng = np.random.default_rng(seed)
    return [shapes_image(rng, size[0], size[1], ["red"]) for _ in range(n)]


def test_weights_resolve_only_inside_the_model_dir(model_dir: Path) -> None:
    assert resolve_weights("coco-random.pt", model_dir) == str(model_dir / "coco-random.pt")
    for bad in ("../coco-random.pt", "/etc/passwd", "sub/../../x.pt"):
        with pytest.raises(BackendLoadError, match="only inside PRELABEL_MODEL_DIR"):
            resolve_weights(bad, model_dir)
    with pytest.raises(BackendLoadError) as missing:
        resolve_weights("yolov8s.pt", model_dir)
    assert str(model_dir / "yolov8s.pt") in str(missing.value)
    assert "YOLO_OFFLINE" in str(missing.value)


@pytest.mark.parametrize(
    "name", ["media-cache/ab/evil.pt", "projects/1_2/data/x.pt", "tmp/work-1/best.pt"]
)
def test_weights_are_never_read_from_what_prelabel_writes(model_dir: Path, name: str) -> None:
    # A task URL ending in .pt lands in the media cache under a name anyone can compute;
    # a label config's model_path pointing there would unpickle a caller's file.
    planted = model_dir / name
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(b"not weights")
    try:
        with pytest.raises(BackendLoadError, match="never weights"):
            resolve_weights(name, model_dir)
    finally:
        planted.unlink()


def test_path_like_settings_are_server_only() -> None:
    assert {"train_options"} <= YoloBackend.Settings.server_only()
    assert "detect_model" not in YoloBackend.Settings.server_only()  # resolved as above


def test_load_reads_only_the_preloaded_model() -> None:
    backend = _backend(preload=["detect"])
    assert [Path(k).name for k in backend.models.loaded] == ["coco-random.pt"]


def test_setup_refuses_configs_it_cannot_fill(model_dir: Path) -> None:
    backend = _backend()
    no_match = BOXES.replace("Person", "Zebra-ish").replace(' predicted_values="car,truck"', "")
    with pytest.raises(UnsupportedConfig, match="person, bicycle, car"):
        backend.check_config(LabelConfig.parse(no_match.format(conf=0.25)))
    escape = BOXES.replace('name="label"', 'name="label" model_path="../../x.pt"')
    with pytest.raises(UnsupportedConfig, match="only inside PRELABEL_MODEL_DIR"):
        backend.check_config(LabelConfig.parse(escape.format(conf=0.25)))
    polygons = BOXES.replace("RectangleLabels", "PolygonLabels").replace(
        'name="label"', 'name="label" model_path="coco-random.pt"'
    )
    with pytest.raises(UnsupportedConfig, match="needs a segment model"):
        backend.check_config(LabelConfig.parse(polygons.format(conf=0.25)))


def test_threshold_reaches_ultralytics_and_batches_match_single_images(tmp_path: Path) -> None:
    from ultralytics import YOLO

    backend = _backend(batch_size=3)
    xml = BOXES.replace(
        '<Label value="Person"/>',
        '<Label value="Person" predicted_values="'
        + ",".join(YOLO(str(Path(backend.models.loaded[0]))).names.values())
        + '"/>',
    )
    conf = 1e-5  # untrained class biases start near 1e-5 (YOLOv8 init)
    images = _images(5)
    tasks = [{"id": i, "data": {"image": data_uri(png)}} for i, (png, _) in enumerate(images)]
    tasks.insert(2, {"id": 99, "data": {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}})
    ctx = make_context(backend, xml.format(conf=conf), media=tmp_path)
    batched = backend.predict(tasks, ctx)
    assert len(batched) == 6
    assert batched[2].result == []  # the unreadable image costs only its own task
    assert backend.stats.unreadable_images == 1

    direct = YOLO(backend.models.loaded[0])
    for task, prediction in zip(tasks, batched, strict=True):
        if task["id"] == 99:
            continue
        png = images[task["id"]][0]
        path = tmp_path / f"{task['id']}.png"
        path.write_bytes(png)
        found = direct.predict(str(path), conf=conf, imgsz=640, verbose=False)[0].boxes
        assert len(prediction.result) == len(found) > 0
        ours = sorted(r.score or 0.0 for r in prediction.result)
        assert ours == pytest.approx(sorted(found.conf.tolist()), abs=1e-3)
        single = backend.predict([task], ctx)[0]
        assert len(single.result) == len(prediction.result)


def test_classes_without_a_label_are_reported_to_metrics_per_class(tmp_path: Path) -> None:
    from ultralytics import YOLO

    backend = _backend()
    reported: list[tuple[str, str, int]] = []
    # Untrained, every box's best class is the first one, "person": leave it without a label.
    vehicles_only = BOXES.replace('<Label value="Person"/>', "")
    ctx = replace(
        make_context(backend, vehicles_only.format(conf=1e-5), media=tmp_path),
        on_dropped=lambda *drop: reported.append(drop),
    )
    png, _ = _images(1)[0]
    (prediction,) = backend.predict([{"id": 1, "data": {"image": data_uri(png)}}], ctx)

    path = tmp_path / "image.png"
    path.write_bytes(png)
    found = YOLO(backend.models.loaded[0]).predict(str(path), conf=1e-5, verbose=False)[0]
    classes = [found.names[int(c)] for c in found.boxes.cls]
    dropped = Counter(c for c in classes if c not in {"car", "truck"})
    assert dropped
    assert sorted(reported) == sorted(("unmapped", c, n) for c, n in dropped.items())
    assert len(prediction.result) == len(classes) - sum(dropped.values())


def test_fine_tuned_weights_are_lru_bounded(model_dir: Path) -> None:
    cache = ModelCache(model_dir, max_tuned=1, prepare=lambda *_: None)
    first = cache.tuned(model_dir / "coco-random.pt")
    cache.tuned(model_dir / "coco-random-seg.pt")
    assert [Path(k).name for k in cache.loaded] == ["coco-random-seg.pt"]
    base = cache.base("coco-random.pt")
    assert cache.base("coco-random.pt") is base and base is not first


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_fit_learns_to_find_the_drawn_shapes(
    trained: tuple[YoloBackend, Path, dict[str, float], str, set[int]], tmp_path: Path
) -> None:
    backend, version_dir, metrics, shapes_config, threads_seen = trained
    assert threads_seen == {backend.threads}  # through ultralytics' trainer and validator
    assert (version_dir / "label.pt").is_file()
    assert sorted(p.name for p in version_dir.iterdir()) == ["label.pt"]  # dataset and runs removed
    assert metrics["label.map50"] > 0.5
    rng = np.random.default_rng(123)  # images the model has never seen
    images = [shapes_image(rng, 96, 72, ["red"]) for _ in range(4)]
    tasks = [{"id": i, "data": {"image": data_uri(png)}} for i, (png, _) in enumerate(images)]
    ctx = make_context(backend, shapes_config, media=tmp_path, model_dir=version_dir)
    ctx.settings = backend.load_settings(imgsz=96)
    for (_, shapes), prediction in zip(images, backend.predict(tasks, ctx), strict=True):
        truth = shapes[0].box
        boxes = []
        for region in prediction.result:
            v = region.value
            x, y = v["x"] * 96 / 100, v["y"] * 72 / 100
            boxes.append((x, y, x + v["width"] * 96 / 100, y + v["height"] * 72 / 100))
        assert max((_iou(b, truth) for b in boxes), default=0.0) > 0.5, (truth, boxes)
        assert {r.value["rectanglelabels"][0] for r in prediction.result} == {"red"}


def test_evaluate_is_map50_95_and_agrees_with_ultralytics_val(
    trained: tuple[YoloBackend, Path, dict[str, float], str, set[int]], tmp_path: Path
) -> None:
    """The gate's score on held-out tasks matches ultralytics' own mAP50-95 on the same images."""
    from ultralytics import YOLO

    backend, version_dir, _, shapes_config, _ = trained
    rng = np.random.default_rng(7)  # images the model has never seen
    images = [shapes_image(rng, 96, 72, ["red"]) for _ in range(16)]
    tasks = [
        {
            "id": i,
            "data": {"image": data_uri(png)},
            "annotations": [{"result": box_result(shapes, (96, 72))}],
        }
        for i, (png, shapes) in enumerate(images)
    ]
    ctx = make_context(
        backend, shapes_config, media=tmp_path, model_dir=version_dir, extra_params={"imgsz": 96}
    )
    evaluation = backend.evaluate(tasks, ctx)
    assert evaluation.metric == "map50_95"
    ours = evaluation.value

    # The same images as an ultralytics dataset (labels written here, from the drawn shapes).
    for split in ("images", "labels"):
        (tmp_path / "data" / split).mkdir(parents=True)
    for i, (png, shapes) in enumerate(images):
        (tmp_path / "data" / "images" / f"{i}.png").write_bytes(png)
        x1, y1, x2, y2 = shapes[0].box
        line = f"0 {(x1 + x2) / 2 / 96} {(y1 + y2) / 2 / 72} {(x2 - x1) / 96} {(y2 - y1) / 72}"
        (tmp_path / "data" / "labels" / f"{i}.txt").write_text(line)
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path / 'data'}\ntrain: images\nval: images\nnames:\n  0: red\n"
    )
    theirs = YOLO(str(version_dir / "label.pt")).val(
        data=str(tmp_path / "data.yaml"), imgsz=96, batch=16, plots=False, verbose=False,
        workers=0, project=str(tmp_path / "runs"),
    ).box.map  # fmt: skip
    assert ours > 0.3, ours
    assert ours == pytest.approx(theirs, abs=0.03)

    # An untrained detector with COCO classes mapped onto the label scores next to nothing.
    untrained = shapes_config.replace('value="red"', 'value="red" predicted_values="person,car"')
    base = make_context(
        backend,
        untrained,
        media=tmp_path,
        extra_params={"imgsz": 96, "detect_model": "coco-random.pt"},
    )
    assert backend.evaluate(tasks, base).value < 0.05


def _annotated_tasks(images: list[tuple[bytes, list[Shape]]], boxes: bool) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "data": {"image": data_uri(png)},
            "annotations": [{"result": box_result(shapes, (96, 72)) if boxes else []}],
        }
        for i, (png, shapes) in enumerate(images)
    ]


def test_evaluate_without_annotated_boxes_scores_what_would_be_served(
    trained: tuple[YoloBackend, Path, dict[str, float], str, set[int]], tmp_path: Path
) -> None:
    """mAP is undefined without objects; then boxes served on images annotated empty cost."""
    backend, version_dir, _, shapes_config, _ = trained
    ctx = make_context(
        backend, shapes_config, media=tmp_path, model_dir=version_dir, extra_params={"imgsz": 96}
    )
    rng = np.random.default_rng(8)
    blank = backend.evaluate(
        _annotated_tasks([shapes_image(rng, 96, 72, []) for _ in range(6)], False), ctx
    )
    denied = backend.evaluate(
        _annotated_tasks([shapes_image(rng, 96, 72, ["red"]) for _ in range(6)], False), ctx
    )
    assert blank.metric == denied.metric == "agreement"
    assert blank.value >= 5 / 6  # noise alone: (next to) nothing served, nothing annotated
    assert denied.value <= 1 / 6  # a red box served where the annotator drew none


def test_evaluate_averages_map_and_agreement_over_controls(
    trained: tuple[YoloBackend, Path, dict[str, float], str, set[int]], tmp_path: Path
) -> None:
    backend, version_dir, _, shapes_config, _ = trained
    masks = (
        '<BrushLabels name="mask" toName="image">'
        '<Label value="blob" predicted_values="person,car"/></BrushLabels>'
    )
    mixed = shapes_config.replace("</View>", masks + "</View>")
    only_masks = '<View><Image name="image" value="$image"/>' + masks + "</View>"
    rng = np.random.default_rng(9)
    tasks = _annotated_tasks([shapes_image(rng, 96, 72, ["red"]) for _ in range(6)], True)

    def evaluate(config: str) -> Evaluation:
        ctx = make_context(
            backend, config, media=tmp_path, model_dir=version_dir, extra_params={"imgsz": 96}
        )
        return backend.evaluate(tasks, ctx)

    boxes, brush, both = evaluate(shapes_config), evaluate(only_masks), evaluate(mixed)
    assert (boxes.metric, brush.metric, both.metric) == (
        "map50_95",
        "agreement",
        "map50_95_and_agreement",
    )
    assert both.value == pytest.approx((boxes.value + brush.value) / 2)


def test_per_region_choices_are_not_filled() -> None:
    from prelabel_yolo.backend import image_controls

    # Choices with perRegion="true" classify each box: a whole-image class is not theirs.
    config = LabelConfig.parse(
        '<View><Image name="i" value="$image"/>'
        '<RectangleLabels name="box" toName="i"><Label value="car"/></RectangleLabels>'
        '<Choices name="state" toName="i" perRegion="true"><Choice value="parked"/></Choices>'
        '<Choices name="scene" toName="i"><Choice value="street"/></Choices></View>'
    )
    assert [c.name for c in image_controls(config)] == ["box", "scene"]


def test_label_coverage_says_which_classes_map_where_and_what_is_never_predicted() -> None:
    backend = _backend()
    xml = BOXES.format(conf=0.25).replace(
        "</RectangleLabels>",
        '<Label value="Unicorn"/></RectangleLabels>'
        '<RectangleLabels name="odd" toName="image"><Label value="Zebra-ish"/></RectangleLabels>',
    )
    coverage = {c.control: c for c in backend.label_coverage(LabelConfig.parse(xml))}
    label = coverage["label"]
    assert label.source == "classes"
    assert {k: v for k, v in label.mapping.items()} == {
        "person": "Person", "car": "Vehicle", "truck": "Vehicle",
    }  # fmt: skip
    assert label.unreachable == ("Unicorn",)
    assert len(label.unmapped) == 77 and "dog" in label.unmapped  # the other COCO classes
    # A control no class maps to is left out of predictions, and said so.
    assert coverage["odd"].mapping == {} and coverage["odd"].unreachable == ("Zebra-ish",)
