"""The server's JSON responses (``prelabel._server.jsonprovider``): orjson's speed, the standard
library's reach: every value the standard encoder wrote is still written, as the same JSON."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
from flask import Flask, jsonify

from prelabel._server.jsonprovider import FastJSONProvider


@pytest.fixture
def app() -> Flask:
    app = Flask("json-test")
    app.json = FastJSONProvider(app)
    return app


def respond(app: Flask, value: Any) -> bytes:
    with app.app_context():
        response = jsonify(value)
    assert response.mimetype == "application/json"
    return response.get_data()


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    "value",
    [
        {"results": [{"result": [{"value": {"rle": list(range(256)) * 50}}], "score": 0.5}]},
        {"text": "Zürich, 東京 🙂", "nested": {"a": [1, 2.5, None, True, False]}},
        {"order": "kept", "b": 1, "a": 2},
        2**64 + 1,  # past orjson's 64-bit integers
        {"unpaired": "\ud800"},  # a lone surrogate: orjson refuses, the stdlib escapes it
        {1: "non-string key", 2.5: "float key"},
    ],
    ids=["rle", "non-ascii", "key-order", "big-int", "surrogate", "non-str-keys"],
)
def test_responses_decode_to_what_the_standard_encoder_wrote(app: Flask, value: Any) -> None:
    body = respond(app, value)
    assert body.endswith(b"\n")
    assert json.loads(body) == json.loads(json.dumps(value))
    if isinstance(value, dict):
        assert list(json.loads(body)) == list(json.loads(json.dumps(value)))


def test_output_is_compact_utf8(app: Flask) -> None:
    assert (
        respond(app, {"label": "Café", "ids": [1, 2]}) == '{"label":"Café","ids":[1,2]}\n'.encode()
    )


def test_types_flask_knows_are_still_written(app: Flask) -> None:
    ident = uuid.UUID(int=7)
    body = json.loads(respond(app, {"id": ident, "point": Point(1, 2)}))
    assert body == {"id": str(ident), "point": {"x": 1, "y": 2}}


def test_unserialisable_values_still_fail_as_before(app: Flask) -> None:
    with app.app_context(), pytest.raises(TypeError, match="not JSON serializable"):
        jsonify({"value": object()})


def test_the_server_answers_through_it(make_app: Any) -> None:
    # An error naming a non-ASCII task id comes back as UTF-8, not as the stdlib's escapes.
    body = {"project": "1.1700000000", "tasks": [{"id": "é", "data": {}}]}
    response = make_app().test_client().post("/predict", json=body)
    assert response.status_code == 400
    assert "got 'é'".encode() in response.get_data()
    assert b"\\u00e9" not in response.get_data()


def test_debug_mode_still_indents(app: Flask) -> None:
    app.debug = True
    assert respond(app, {"a": 1}) == b'{\n  "a": 1\n}\n'
