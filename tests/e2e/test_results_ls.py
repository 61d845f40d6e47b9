"""A real Label Studio, validating predictions, accepts the builders' results for every template.

LS 1.23.2 checks a prediction with label_studio_sdk's ``LabelInterface`` before storing it when
its prediction-validation flag is on (``validating_ls``); ``POST /api/predictions`` runs the
same serializer validation as the predictions an ML backend returns. For each of the 69
official templates one task gets one prediction holding a result for every control
(``results_samples.py``); LS must store it whole. The one exception is an SDK defect, stated
below, for which LS's refusal is asserted as it stands.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from results_samples import PAIRS, TEMPLATES, sample_result, sample_task

from prelabel.config import LabelConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# label_studio_sdk 2.1.2 makes a <Chat> that carries toName="chat" a plain control of type
# "chat", so it refuses the "chatmessage" results LS's editor (and prelabel) write for every
# Chat; the four chat templates without toName are accepted.
SDK_REFUSES = {"chat__chat_eval": "Type 'chatmessage' does not match expected type 'chat'"}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_label_studio_stores_the_builders_results(validating_ls, path: Path) -> None:
    config = LabelConfig.parse(path.read_text())
    project = validating_ls.create_project(path.stem, path.read_text())
    [task_id] = validating_ls.import_tasks(project, [{"data": sample_task(config)}])
    result = [
        region.to_ls()
        for name in (n for p, n in PAIRS if p == path)
        for region in sample_result(config, config.control(name))
    ]
    prediction = {"task": task_id, "result": result, "score": 0.5, "model_version": "samples"}

    if path.stem in SDK_REFUSES:
        response = validating_ls.call("POST", "/api/predictions", json=prediction, expect=(400,))
        assert SDK_REFUSES[path.stem] in response.text
        return
    validating_ls.call("POST", "/api/predictions", json=prediction, expect=(201,))
    [stored] = validating_ls.predictions(task_id)
    assert stored["result"] == result


def test_label_studio_refuses_what_the_validator_refuses(validating_ls) -> None:
    # The flag is on: a label outside the config is refused, as prelabel.validation does.
    path = next(p for p in TEMPLATES if p.stem.endswith("named-entity-recognition"))
    config = LabelConfig.parse(path.read_text())
    project = validating_ls.create_project("refused", path.read_text())
    [task_id] = validating_ls.import_tasks(project, [{"data": sample_task(config)}])
    value = {"start": 0, "end": 3, "text": "Ann", "labels": ["NOPE"]}
    bad = {"from_name": "label", "to_name": "text", "type": "labels", "value": value}
    prediction = {"task": task_id, "result": [bad], "model_version": "samples"}
    response = validating_ls.call("POST", "/api/predictions", json=prediction, expect=(400,))
    assert "Invalid value for control 'label'" in response.text
