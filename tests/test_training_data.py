"""Malformed annotations and tasks are skipped, counted and logged; training goes on with the
rest (issue #13, item 5). Before, one of them failed every later training of its project.
"""

from __future__ import annotations

import logging

import pytest

from prelabel._engine.trainingdata import annotation_problem, task_problem, usable_tasks
from prelabel.config import LabelConfig
from prelabel.project import ProjectKey
from prelabel.testing.reference import REFERENCE_CONFIG
from prelabel_textcls import TextClassifierBackend

CONFIG = LabelConfig.parse(REFERENCE_CONFIG)
IMAGES = LabelConfig.parse(
    '<View><Image name="image" value="$image"/><Choices name="c" toName="image">'
    '<Choice value="A"/></Choices></View>'
)


@pytest.mark.parametrize(
    ("annotation", "problem"),
    [
        ({"result": "Positive"}, "result is not a list"),
        ({"result": [1, 2]}, "a result item is not an object"),
        (
            {"result": [{"from_name": "s", "to_name": "t", "type": "choices", "value": "x"}]},
            "value is not an object",
        ),
        ({"result": [{"value": {"choices": ["A"]}}]}, "lacks a string from_name"),
        ("annotation", "annotation is not an object"),
    ],
)
def test_annotation_problems(annotation, problem):
    assert problem in (annotation_problem(annotation) or "")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"image": "http://[::1/x.png"}, "not a parsable URL"),
        ({"image": "https:///x.png"}, "without a host"),
        ("a string", "data is not an object"),
    ],
)
def test_task_problems(data, problem):
    assert problem in (task_problem({"id": 1, "data": data}, IMAGES) or "")


def _choice(label: str) -> list[dict[str, object]]:
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices",
             "value": {"choices": [label]}}]  # fmt: skip


def test_usable_tasks_keep_the_good_and_count_the_bad(caplog):
    tasks = [
        {"id": 1, "data": {"text": "a"}, "annotations": [{"id": 1, "result": _choice("Positive")}]},
        {"id": 2, "data": {"text": "b"}, "annotations": [{"id": 2, "result": "Negative"}]},
        {"id": 3, "data": {"text": "c"}, "annotations": [
            {"id": 3, "result": [7]}, {"id": 4, "result": _choice("Negative")}]},
        {"id": 5, "data": "text", "annotations": [{"id": 5, "result": _choice("Positive")}]},
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        kept, skipped = usable_tasks(ProjectKey("3", 1), tasks, CONFIG)
    assert [t["id"] for t in kept] == [1, 3]
    assert [a["id"] for a in kept[1]["annotations"]] == [4]  # judged by its good annotation
    assert skipped == {
        "annotation result is not a list": 1,
        "a result item is not an object": 1,
        "task data is not an object": 1,
    }
    assert "Project 3.1: training skips" in caplog.text


def test_one_malformed_annotation_no_longer_stops_training(
    make_app, annotation_webhook, wait_job, ls_request
):
    # The ninth annotation (the malformed one) is the one that starts training.
    app = make_app(TextClassifierBackend(), start_jobs=True, train_min_annotations=9)
    client = app.test_client()
    assert client.post("/setup", json=ls_request("setup")).status_code == 200
    words = {"Positive": "love great", "Negative": "hate awful"}
    for i in range(8):
        label = ("Positive", "Negative")[i % 2]
        event = annotation_webhook(
            task_id=i, annotation_id=i, text=f"{words[label]} {i}", label=label
        )
        assert client.post("/webhook", json=event).status_code == 200
    bad = annotation_webhook(task_id=50, annotation_id=50, text="broken", label="Positive")
    bad["annotation"]["result"] = "Positive"  # what used to fail every later training
    job = client.post("/webhook", json=bad).get_json()["job"]
    done = wait_job(client, job, timeout=60)
    assert done["status"] == "succeeded", done
    assert done["result"]["promoted"] is True
    assert done["result"]["skipped"] == {"annotation result is not a list": 1}
    assert done["result"]["metrics"]["train_tasks"] == 8.0
