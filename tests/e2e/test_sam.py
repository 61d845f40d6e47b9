"""Issue 17: SAM through Label Studio's interactive endpoint, on images uploaded to a real LS.

The model is a tiny SAM with random weights saved as a checkpoint (``prelabel_sam.synthetic``),
served by ``prelabel serve sam``. LS's smart tools post the annotator's clicks and boxes to
``/api/ml/{id}/interactive-annotating``; LS calls the backend's ``/predict`` with them as
``params.context`` and returns ``results[0]`` to the editor as ``data``: these tests check that
answer, region by region, as the editor would draw it.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from prelabel.results import rle_to_mask
from prelabel_sam.synthetic import BRUSH_CONFIG, POLYGON_CONFIG, click, rectangle, shapes_png

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

#: Uploaded images by file name: their pixel size (width, height).
IMAGES = {"wide.png": (160, 96), "tall.png": (72, 128)}

MAKE_CHECKPOINT = (
    "import sys; from pathlib import Path; from prelabel_sam.synthetic import save_checkpoint; "
    "save_checkpoint(Path(sys.argv[1]))"
)


@pytest.fixture(scope="module")
def sam_backend(backends, label_studio, tmp_path_factory, e2e):
    model_dir = tmp_path_factory.mktemp("sam") / "models"
    subprocess.run(
        [sys.executable, "-c", MAKE_CHECKPOINT, str(model_dir / "tiny.pth")],
        check=True,
        timeout=120,
    )
    env = {
        "PRELABEL_MODEL_DIR": str(model_dir),
        "PRELABEL_SAM_MODEL": "tiny.pth",
        "PRELABEL_SAM_DEVICE": "cpu",
        "PRELABEL_LOG_LEVEL": "INFO",
        "HF_HUB_OFFLINE": "1",
    }
    backends.register("sam", e2e.BackendSpec.serve("sam", env))
    return backends.get("sam")


def upload(ls, project):
    """Upload IMAGES to ``project``; task id by file name."""
    files = {
        name: shapes_png(w, h, seed=seed) for seed, (name, (w, h)) in enumerate(IMAGES.items())
    }
    return ls.upload_images(project, files)


def interactive(ls, project, task_id, items):
    answer = ls.json(
        "POST",
        f"/api/ml/{project.ml_id}/interactive-annotating",
        json={"task": task_id, "context": {"result": items}},
    )
    assert "errors" not in answer, answer
    return answer["data"]


def wait_for_log(backend, text, timeout=120):
    deadline = time.monotonic() + timeout
    while text not in backend.log_text():
        assert time.monotonic() < deadline, (
            f"{text!r} not in {backend.log}:\n{backend.proc.log_tail()}"
        )
        time.sleep(0.2)


def test_clicks_give_brush_masks_of_the_uploaded_images_size(ls, sam_backend, new_project):
    project = new_project(BRUSH_CONFIG, backend=sam_backend, is_interactive=True)
    tasks = upload(ls, project)
    for name, (width, height) in IMAGES.items():
        # Label Studio posted TASKS_CREATED: the backend encoded the new images unasked.
        wait_for_log(sam_backend, f"embedded task {tasks[name]}'s image in the background")
        items = [
            click(40, 40, label="Person", size=(width, height)),
            click(80, 80, positive=False, label="Person", size=(width, height)),
        ]
        data = interactive(ls, project, tasks[name], items)
        (region,) = data["result"]
        assert (region["from_name"], region["to_name"], region["type"]) == (
            "mask",
            "image",
            "brushlabels",
        )
        assert region["value"]["brushlabels"] == ["Person"]
        # The mask decodes at the upload's own size, as the editor paints it.
        assert (region["original_width"], region["original_height"]) == (width, height)
        mask = rle_to_mask(region["value"]["rle"], width, height)
        assert mask.shape == (height, width) and mask.any()
        assert 0.0 <= region["score"] <= 1.0 and data["model_version"]
    log = sam_backend.log_text()
    assert "Cannot fetch" not in log and "Traceback" not in log
    # Interactive answers are suggestions, never stored as predictions.
    assert all(ls.predictions(task_id) == [] for task_id in tasks.values())


def test_a_box_gives_polygons_inside_the_image(ls, sam_backend, new_project):
    project = new_project(POLYGON_CONFIG, backend=sam_backend, is_interactive=True)
    tasks = upload(ls, project)
    width, height = IMAGES["wide.png"]
    data = interactive(
        ls, project, tasks["wide.png"], [rectangle(10, 15, 45, 50, size=(width, height))]
    )
    assert data["result"], data
    for region in data["result"]:
        assert (region["type"], region["from_name"]) == ("polygonlabels", "outline")
        assert region["value"]["polygonlabels"] == ["Car"]
        assert (region["original_width"], region["original_height"]) == (width, height)
        points = region["value"]["points"]
        assert len(points) >= 3 and all(0 <= x <= 100 and 0 <= y <= 100 for x, y in points)


def test_retrieve_predictions_stores_an_empty_prediction_per_task(ls, sam_backend, new_project):
    project = new_project(BRUSH_CONFIG, backend=sam_backend, is_interactive=True)
    tasks = upload(ls, project)
    version = ls.ml(project.ml_id)["model_version"]
    ls.retrieve_predictions(project)
    for task_id in tasks.values():
        prediction = ls.only_prediction(task_id)
        assert prediction["result"] == [] and prediction["model_version"] == version


def test_a_config_whose_prompts_name_no_mask_label_is_refused_on_connect(
    ls, sam_backend, new_project
):
    mismatch = BRUSH_CONFIG.replace(
        '<Label value="Person"/></KeyPointLabels>', '<Label value="Dog"/></KeyPointLabels>'
    )
    project = new_project(mismatch)
    ls.call(
        "POST",
        "/api/ml",
        json={
            "url": sam_backend.url,
            "project": project.id,
            "title": "sam",
            "is_interactive": True,
        },
        expect=(400,),
    )
    # LS shows only that /setup failed; the backend's log says why.
    wait_for_log(sam_backend, "smart KeyPointLabels 'kp' has labels 'Dog'")
