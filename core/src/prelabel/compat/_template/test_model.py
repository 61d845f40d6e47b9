"""Tests of the model through the HTTP server Label Studio talks to. Run: pytest."""

from pathlib import Path

from prelabel.compat import make_app
from prelabel.settings import CoreSettings

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
    '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>'
)


def test_predict_answers_every_task(tmp_path: Path) -> None:
    app = make_app(Path(__file__).parent, CoreSettings(model_dir=tmp_path), start_jobs=False)
    client = app.test_client()
    setup = client.post("/setup", json={"project": "1.1700000000", "schema": CONFIG})
    assert setup.status_code == 200
    tasks = [{"id": 1, "data": {"text": "I love it"}}, {"id": 2, "data": {"text": "meh"}}]
    answer = client.post(
        "/predict", json={"project": "1.1700000000", "label_config": CONFIG, "tasks": tasks}
    )
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    assert len(results) == len(tasks)
    assert all(r["model_version"] == setup.get_json()["model_version"] for r in results)
