"""Issue 5: images uploaded to a real LS get YOLO box predictions, stored by LS.

The detector is yolov8n with random (seeded) weights saved under COCO's class names: it finds
nothing real, but at a confidence threshold of 1e-5 it proposes boxes for every image, which is
enough to check the whole path: LS upload → ``/data/upload`` URL fetched by the backend with
LS's token → ultralytics → label mapping → regions in the image's own size → stored by LS.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prelabel_yolo.synthetic import shapes_image

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MAX_DET = 5
#: Uploaded images by file name: their pixel size (width, height).
IMAGES = {"wide.png": (160, 96), "tall.png": (72, 128), "square.png": (100, 100)}

#: Saves untrained yolov8n weights named like COCO's classes; prints the class names.
MAKE_WEIGHTS = """
import json, sys, torch, yaml
from ultralytics import YOLO
from ultralytics.utils import ROOT
names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
torch.manual_seed(0)
model = YOLO("yolov8n.yaml")
model.model.names = dict(names)
model.save(sys.argv[1])
print(json.dumps(list(names.values())))
"""


def offline_env(tmp: Path) -> dict[str, str]:
    return {
        "YOLO_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "YOLO_CONFIG_DIR": str(tmp / "ultralytics"),
    }


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """``(model_dir, coco_names)``: ``model_dir/coco-random.pt`` holds the random detector."""
    tmp = tmp_path_factory.mktemp("yolo")
    model_dir = tmp / "models"
    model_dir.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", MAKE_WEIGHTS, str(model_dir / "coco-random.pt")],
        env={**os.environ, **offline_env(tmp)},
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    names = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(names) == 80 and "person" in names and "traffic light" in names
    return model_dir, names


@pytest.fixture(scope="module")
def yolo_backend(backends, label_studio, weights, e2e):
    model_dir, _ = weights
    env = {
        **offline_env(model_dir.parent),
        "PRELABEL_MODEL_DIR": str(model_dir),
        "PRELABEL_YOLO_DETECT_MODEL": "coco-random.pt",
        "PRELABEL_YOLO_PRELOAD": "detect",
        "PRELABEL_YOLO_DEVICE": "cpu",
    }
    backends.register("yolo", e2e.BackendSpec.serve("yolo", env))
    return backends.get("yolo")


def png(width, height, seed):
    data, _ = shapes_image(np.random.default_rng(seed), width, height, ["red", "blue"])
    return data


def image_size(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_uploaded_images_get_box_predictions_stored_in_label_studio(
    ls, yolo_backend, weights, new_project
):
    _, names = weights
    # Every COCO class maps to one of two labels, split by hand: animals, and everything else.
    animals = names[names.index("bird") : names.index("giraffe") + 1]
    objects = [n for n in names if n not in animals]
    assert len(animals) == 10
    config = f"""<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image" model_score_threshold="0.00001"
                   model_max_det="{MAX_DET}">
    <Label value="Animal" predicted_values="{",".join(animals)}"/>
    <Label value="Object" predicted_values="{",".join(objects)}"/>
  </RectangleLabels>
</View>"""
    project = new_project(config, backend=yolo_backend)
    version = ls.ml(project.ml_id)["model_version"]
    files = {name: png(w, h, seed) for seed, (name, (w, h)) in enumerate(IMAGES.items())}
    assert {name: image_size(data) for name, data in files.items()} == IMAGES
    by_name = ls.upload_images(project, files)

    ls.retrieve_predictions(project)

    for name, (width, height) in IMAGES.items():
        prediction = ls.only_prediction(by_name[name])
        assert prediction["model_version"] == version, prediction
        assert prediction["score"] is not None and 0.0 <= prediction["score"] <= 1.0, prediction
        regions = prediction["result"]
        assert 1 <= len(regions) <= MAX_DET, (name, regions)
        for region in regions:
            assert (region["from_name"], region["to_name"], region["type"]) == (
                "box",
                "image",
                "rectanglelabels",
            ), region
            # The backend read the upload itself: the region is in that image's pixel size.
            assert (region["original_width"], region["original_height"]) == (width, height)
            value = region["value"]
            assert value["rectanglelabels"] in (["Animal"], ["Object"]), value
            x, y, w, h = value["x"], value["y"], value["width"], value["height"]
            assert 0 <= x <= 100 and 0 <= y <= 100 and w > 0 and h > 0, value
            assert x + w <= 100 + 1e-6 and y + h <= 100 + 1e-6, value
            assert 0.0 < region["score"] <= 1.0, region
    assert "Cannot fetch" not in yolo_backend.log_text()
