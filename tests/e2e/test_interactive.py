"""Scenario 8: interactive pre-annotation (LS's smart tools) through a backend with is_interactive.

None of the shipped backends is interactive yet; this drives a tiny test-only one
(``interactive_backend.py``) served by prelabel's own server, to check the route LS uses.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="span" toName="text"><Label value="Cue"/></Labels>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/>
  </Choices>
</View>"""


def span(text, start, end):
    """A ``labels`` region as the editor sends it in ``context.result`` (protocol §5)."""
    return {
        "id": "e2e-span",
        "from_name": "span",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {"start": start, "end": end, "text": text[start:end], "labels": ["Cue"]},
    }


def test_interactive_annotating_returns_the_backends_suggestion(
    ls, interactive_backend, new_project
):
    project = new_project(CONFIG, backend=interactive_backend, is_interactive=True)
    text = "the delivery was late but I love this phone"
    (task_id,) = ls.import_texts(project, [text])
    start = text.index("love")

    answer = ls.json(
        "POST",
        f"/api/ml/{project.ml_id}/interactive-annotating",
        json={"task": task_id, "context": {"result": [span(text, start, start + 4)]}},
    )

    assert "errors" not in answer, answer
    suggestion = answer["data"]
    assert suggestion["result"] == [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["Positive"]},
            "score": 0.9,
        }
    ], suggestion
    # Another span, another suggestion: the answer follows the annotator's input.
    other = ls.json(
        "POST",
        f"/api/ml/{project.ml_id}/interactive-annotating",
        json={"task": task_id, "context": {"result": [span(text, 4, 12)]}},
    )
    assert other["data"]["result"][0]["value"] == {"choices": ["Negative"]}, other
    # Interactive answers are suggestions for the editor, never stored as predictions.
    assert ls.predictions(task_id) == []
