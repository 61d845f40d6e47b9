"""Fuzzing every endpoint with mutated real Label Studio bodies: bad input is never a 5xx.

Each example takes a body LS 1.23.2 really sent (``fixtures/ls-1.23.2``), changes one to three
places in it (a value replaced by any JSON value: huge or negative numbers, NaN, lone
surrogates, line breaks, deep lists, wrong types; a key removed; a value wrapped in a list),
or breaks its bytes, and sends it. The server must answer below 500: 4xx for what it refuses,
2xx for what it accepts. Path and query parameters of the other endpoints are fuzzed too.
Issue #13 found 91 of 3,786 such cases answered with 500.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prelabel._server import create_app
from prelabel.settings import CoreSettings
from prelabel.testing import fixture, fixtures
from prelabel.testing.reference import ReferenceBackend

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ODD_TEXT = st.sampled_from(
    ["", "\ud800", "a\udfffb", "line\nbreak\r", "1.²", "../../etc/passwd", "\x00", "☃" * 50,
     "None", "-1", "9" * 30, "1." + "9" * 30, "http://[::1", "<View>"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    ODD_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:5]):
            yield from _paths(item, (*prefix, index))


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any]) -> bytes:
    """``body`` with one to three places changed, serialised; sometimes with broken bytes."""
    body = copy.deepcopy(body)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(body))))
        if not path:
            continue
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        how = draw(st.sampled_from(["replace", "replace", "delete", "wrap"]))
        if how == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    data = json.dumps(body).encode()
    if draw(st.integers(0, 9)) == 0:  # one in ten: damaged in transit
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=8)) + data[cut + draw(st.integers(0, 8)) :]
    return data


def _bodies() -> dict[str, list[dict[str, Any]]]:
    recorded = {name: fixture(name) for name in fixtures()}
    by_path: dict[str, list[dict[str, Any]]] = {}
    for request in recorded.values():
        if request["method"] == "POST":
            by_path.setdefault(request["path"].rstrip("/") or "/", []).append(request["json"])
    setup, created = recorded["setup"]["json"], recorded["webhook_ANNOTATION_CREATED"]["json"]
    # LS's legacy /train (protocol §3.6): every annotated task, in export format.
    task = {**created["task"], "annotations": [created["annotation"]]}
    by_path["/train"] = [
        {"project": setup["project"], "label_config": setup["schema"], "annotations": [task]}
    ]
    by_path["/projects/<project>/rollback"] = [{"version": "reference-1"}]
    by_path["/projects/<project>/predict"] = [{"unlabeled_only": True, "select": False}]
    return by_path


BODIES = _bodies()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = CoreSettings(
        model_dir=tmp_path_factory.mktemp("fuzz"), label_studio_url=None, label_studio_api_key=None
    )
    app = create_app(ReferenceBackend(), settings, start_jobs=False)
    return app.test_client()


GETS = ["/", "/health", "/versions", "/metrics", "/jobs", "/acceptance"]
TEMPLATES = [
    "/jobs/{}", "/projects/{}/versions", "/projects/{}/rollback", "/projects/{}/predict",
    "/jobs?project={}", "/acceptance?project={}", "/projects/{}/rollback?version={}",
]  # fmt: skip


def test_every_endpoint_is_fuzzed(client):
    fuzzed = set(BODIES) | set(GETS) | {t.split("?")[0].replace("{}", "<x>") for t in TEMPLATES}
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<[^>]+>", "<x>", rule.rule)
        assert path in {re.sub(r"<[^>]+>", "<x>", p) for p in fuzzed}, rule.rule
    assert len(BODIES["/webhook"]) >= 6 and len(BODIES["/predict"]) >= 4


def _answer(client: Any, path: str, data: bytes) -> None:
    path = path.replace("<project>", "1.1795806764")
    response = client.post(path, data=data, content_type="application/json")
    assert response.status_code < 500, (path, data[:300], response.get_data(as_text=True))
    assert response.is_json


@pytest.mark.parametrize("path", sorted(BODIES))
@FUZZ
@given(data=st.data())
def test_mutated_ls_bodies_are_never_a_5xx(client, path, data):
    body = data.draw(st.sampled_from(BODIES[path]))
    _answer(client, path, data.draw(mutated(body)))


@pytest.mark.parametrize("template", TEMPLATES)
@FUZZ
@given(value=st.one_of(ODD_TEXT, st.text(max_size=30)))
def test_fuzzed_path_and_query_parameters_are_never_a_5xx(client, template, value):
    url = template.format(quote(value.encode("utf-8", "surrogatepass"), safe=""), "x")
    method = client.post if "rollback" in template or "predict" in template else client.get
    response = method(url)
    assert response.status_code < 500, (url, response.get_data(as_text=True))


@FUZZ
@given(
    header=st.one_of(ODD_TEXT, st.text(max_size=40)),
    scheme=st.sampled_from(["Basic ", "Bearer ", ""]),
)
def test_fuzzed_credentials_are_401_never_a_5xx(tmp_path_factory, header, scheme):
    app = _auth_app(tmp_path_factory)
    # Line breaks cannot be sent in a header (HTTP framing); anything else can.
    raw = (scheme + header).replace("\r", "").replace("\n", "")
    value = raw.encode("utf-8", "surrogatepass").decode("latin-1")
    response = app.test_client().get("/versions", headers={"Authorization": value})
    assert response.status_code == 401


_AUTH_APPS: list[Any] = []


def _auth_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not _AUTH_APPS:
        settings = CoreSettings(
            model_dir=tmp_path_factory.mktemp("fuzz-auth"),
            basic_auth_user="u",
            basic_auth_pass="p",
            api_token="t",
        )
        _AUTH_APPS.append(create_app(ReferenceBackend(), settings, start_jobs=False))
    return _AUTH_APPS[0]


@pytest.mark.parametrize("path", GETS)
def test_the_get_endpoints_answer_after_the_fuzzing(client, path):
    # Runs after the fuzz tests (file order): nothing they sent broke the server for later.
    assert client.get(path).status_code == 200
