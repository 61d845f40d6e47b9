"""Your model through the HTTP server Label Studio talks to. Run: pytest."""

from pathlib import Path

from prelabel.compat import make_app
from prelabel.settings import CoreSettings

PROJECT = "1.1700000000"  # how Label Studio names a project: "<id>.<creation time>"
CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
    '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>'
)


def test_every_task_gets_a_prediction_with_the_setup_version(tmp_path: Path) -> None:
    app = make_app(Path(__file__).parent, CoreSettings(model_dir=tmp_path), start_jobs=False)
    client = app.test_client()
    setup = client.post("/setup", json={"project": PROJECT, "schema": CONFIG})
    assert setup.status_code == 200
    tasks = [
        {"id": 1, "data": {"text": "A positive surprise"}},
        {"id": 2, "data": {"text": "nothing to say"}},
    ]
    answer = client.post(
        "/predict", json={"project": PROJECT, "label_config": CONFIG, "tasks": tasks}
    )
    assert answer.status_code == 200
    first, second = answer.get_json()["results"]
    assert first["result"][0]["value"] == {"choices": ["Positive"]}
    assert second["result"] == []
    assert first["model_version"] == second["model_version"] == setup.get_json()["model_version"]
