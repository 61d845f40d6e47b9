"""``prelabel doctor`` and its ``/setup`` subset against loopback stand-ins of Label Studio and of
a backend (``tests/e2e/test_doctor.py`` runs it against the real Label Studio)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import pytest
from click.testing import CliRunner
from fake_ls_project import TOKEN, FakeProjectLS
from werkzeug.wrappers import Response

from prelabel._doctor import DoctorOptions, Finding, Report, run_doctor
from prelabel._doctor.backend_http import check_backend
from prelabel._doctor.label_studio import check_acceptance, check_reachable, is_private
from prelabel._doctor.labels import check_labels
from prelabel._doctor.media import check_media
from prelabel._doctor.setup import credentials_finding
from prelabel._ls.client import LabelStudioClient
from prelabel.cli import cli
from prelabel.config import LabelConfig, LabelCoverage, LabelMap
from prelabel.errors import UnsupportedConfig
from prelabel.media import MediaResolver
from prelabel.settings import CoreSettings
from prelabel.testing.reference import REFERENCE_CONFIG, ReferenceBackend

BOXES = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image">
  <Label value="Person"/><Label value="Vehicle" predicted_values="car,truck"/><Label value="Unicorn"/>
</RectangleLabels>
<Choices name="quality" toName="image"><Choice value="Good"/></Choices></View>"""


class Detector(ReferenceBackend):
    """A backend with a fixed set of model classes, on ``RectangleLabels``."""

    name = "detector"
    controls = frozenset({"RectangleLabels"})

    def label_coverage(self, config: LabelConfig) -> Sequence[LabelCoverage]:
        control = config.control("label")
        return [
            LabelCoverage.from_label_map(control, LabelMap.build(control, ["person", "car", "dog"]))
        ]


def by_check(report: Report) -> dict[str, Finding]:
    return {f.check: f for f in report.findings}


@pytest.fixture
def fake_ls(loopback):
    ls = FakeProjectLS(
        [{"id": 1, "data": {"text": "positive"}, "total_annotations": 0}],
        label_config=REFERENCE_CONFIG,
    )
    ls.url = loopback(ls)
    return ls


@pytest.fixture
def served(make_app, loopback):
    """The reference backend's server on loopback; its URL."""
    return loopback(make_app())


def test_the_report_fits_a_screen_and_is_coloured_only_on_request():
    report = Report("prelabel doctor: test")
    report.add(Finding("label_studio", "ok", "answers"))
    report.add(Finding("token", "fail", "refused", "Create a personal access token " * 8))
    report.add(
        Finding("labels", "warn", "unreachable", "Rename them.", [f"line {i}" for i in range(9)])
    )
    text = report.as_text()
    assert "\033[" not in text and "FAIL  token" in text and "→ Create a personal" in text
    assert max(len(line) for line in text.splitlines()) <= 100  # the fix wraps
    assert "… and 3 more" in text and text.endswith("broken")
    assert "\033[31mFAIL\033[0m" in report.as_text(color=True)
    parsed = json.loads(report.as_json())
    assert parsed["ok"] is False and [c["status"] for c in parsed["checks"]] == [
        "ok",
        "fail",
        "warn",
    ]


def test_a_connected_project_passes_every_check_in_order(fake_ls, served, tmp_path):
    fake_ls.ml_backends = [{"url": served + "/", "state": "CO", "readable_state": "Connected"}]
    fake_ls.webhooks = [{"url": f"{served}/webhook", "is_active": True}]
    settings = CoreSettings(
        model_dir=tmp_path, label_studio_url=fake_ls.url, label_studio_api_key=TOKEN
    )
    report = run_doctor(
        ReferenceBackend(), settings, DoctorOptions(project=7, backend_url=served), container=False
    )
    found = by_check(report)
    assert list(found) == ["label_studio", "token", "ls_accepts", "media", "labels", "backend"]
    assert {c: f.status for c, f in found.items() if f.status != "ok"} == {"media": "skip"}
    assert found["token"].summary == "legacy token of ann@example.com (organization 1)"
    assert found["media"].summary == "the first 1 tasks carry their data inline (no media URL)"
    assert (
        "(a private address: LS runs with ML_BLOCK_LOCAL_IP=false)" in found["ls_accepts"].summary
    )
    assert "/setup" in found["backend"].summary and report.ok


def test_label_studio_unreachable_or_elsewhere_says_where_to_point(fake_ls, closed_url):
    local = closed_url.replace("127.0.0.1", "localhost")
    finding, reachable = check_reachable(local, container=True)
    assert not reachable and finding.status == "fail"
    assert "the container itself" in finding.fix and "host.docker.internal" in finding.fix
    finding, reachable = check_reachable(
        fake_ls.url.replace("127.0.0.1", "localhost"), container=True
    )
    assert reachable and finding.status == "ok" and "inside a container" in finding.details[0]
    assert check_reachable("label-studio:8080", container=False)[0].summary.endswith(
        "no http:// or https://"
    )
    assert "LABEL_STUDIO_URL is not set" in check_reachable(None, container=False)[0].summary


def test_label_studio_s_view_of_the_backend_names_the_fix(fake_ls, served):
    client = LabelStudioClient(fake_ls.url, TOKEN)
    fake_ls.ml_backends = [
        {
            "url": served,
            "state": "ER",
            "readable_state": "Error",
            "error_message": "URL resolves to a reserved network address (block: 127.0.0.0/8)",
        }
    ]
    finding, _ = check_acceptance(client, 7, served)
    assert finding.status == "fail" and "ML_BLOCK_LOCAL_IP=false" in finding.fix
    assert "SSRF_PROTECTION_ENABLED=false" in finding.fix
    fake_ls.ml_backends[0].update(state="CO", readable_state="Connected")
    finding, record = check_acceptance(client, 7, served)
    assert finding.status == "warn" and f"no webhook to {served}/webhook" in finding.summary
    assert record is fake_ls.ml_backends[0] or record == fake_ls.ml_backends[0]
    finding, _ = check_acceptance(client, 7, "http://ml.example:9090")
    assert (
        finding.status == "warn"
        and "Connect Model with the URL http://ml.example:9090" in finding.fix
    )


def test_private_backend_addresses_are_flagged_without_connecting_to_them():
    def resolve(address: str) -> Any:
        return lambda host, port: [(2, 1, 6, "", (address, 0))]

    assert is_private("ml", resolve("10.1.2.3")) and is_private("ml", resolve("169.254.169.254"))
    assert not is_private("ml", resolve("93.184.216.34"))
    finding, _ = check_acceptance(None, None, "http://ml:9090", resolve=resolve("192.168.1.5"))
    assert finding.status == "warn" and "ML_BLOCK_LOCAL_IP=false" in finding.fix
    finding, _ = check_acceptance(None, None, "http://ml:9090", resolve=resolve("93.184.216.34"))
    assert finding.status == "ok"


def test_slow_or_locked_backends_fail_with_the_fix(loopback, served):
    def slow(environ: Any, start_response: Any) -> Any:
        time.sleep(1.2)
        return Response('{"status": "UP"}', mimetype="application/json")(environ, start_response)

    def locked(environ: Any, start_response: Any) -> Any:
        return Response("no", status=401)(environ, start_response)

    finding = check_backend(loopback(slow), schema=None)
    assert finding.status == "fail" and "LS gives up after 1 s" in finding.summary
    assert "--threads" in finding.fix
    finding = check_backend(loopback(locked), schema=REFERENCE_CONFIG)
    assert finding.status == "fail" and "PRELABEL_BASIC_AUTH_USER" in finding.fix
    finding = check_backend(served, schema=REFERENCE_CONFIG)
    assert finding.status == "ok" and "model_version reference-" in finding.summary


def test_labels_say_which_classes_map_where_and_what_is_never_predicted():
    finding = check_labels(Detector(), LabelConfig.parse(BOXES))
    assert finding.status == "warn"
    assert finding.details[0] == (
        "label (RectangleLabels): model classes person→Person, car→Vehicle; never predicted: "
        "Unicorn; 1 classes dropped (dog)"
    )
    assert finding.details[1] == "not filled by detector: quality (Choices)"
    assert "label: Unicorn" in finding.summary and "predicted_values" in finding.fix

    class Refusing(Detector):
        def check_config(self, config: LabelConfig) -> None:
            raise UnsupportedConfig("No RectangleLabels on an Image here.")

    finding = check_labels(Refusing(), LabelConfig.parse(BOXES))
    assert finding.status == "fail" and finding.fix == "No RectangleLabels on an Image here."


def test_media_of_each_kind_is_downloaded_or_the_failure_explained(fake_ls, tmp_path):
    config = LabelConfig.parse('<View><Image name="image" value="$image"/></View>')
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.png").write_bytes(b"local")
    fake_ls.bucket["b.png"] = b"in the bucket"
    settings = CoreSettings(
        model_dir=tmp_path / "m", label_studio_url=fake_ls.url, label_studio_api_key=TOKEN,
        local_files_root=tmp_path / "files",
    )  # fmt: skip
    tasks = [
        {"id": 1, "data": {"image": "/data/local-files/?d=a.png"}},
        {"id": 2, "data": {"image": "s3://bucket/b.png"}},
        {"id": 3, "data": {"image": "s3://bucket/b.png"}},  # a kind is tried once
        {"id": 4, "data": {"image": "data:image/png;base64," + base64.b64encode(b"x").decode()}},
    ]
    resolver = MediaResolver(settings)
    finding = check_media(config, tasks, resolver)
    assert finding.status == "ok", finding
    assert finding.details == [
        "local file: /data/local-files/?d=a.png, read from LOCAL_FILES_DOCUMENT_ROOT",
        "cloud storage: s3://bucket/b.png, 13 bytes",
        "data URI: data:image/png;base64,eA==, 1 bytes",
    ]
    # A host that is neither LS nor allowed is refused before any connection is made.
    tasks.append({"id": 5, "data": {"image": "http://files.example/c.png"}})
    finding = check_media(config, tasks, resolver)
    assert finding.status == "fail" and "external URL" in finding.summary
    assert "PRELABEL_MEDIA_ALLOW_HOSTS" in finding.fix
    resolver.close()


def test_credentials_at_setup_are_judged_without_asking_label_studio(tmp_path):
    bare = CoreSettings(model_dir=tmp_path)
    finding = credentials_finding(bare, "http://localhost:8080", "0" * 40)
    assert finding.status == "warn"
    assert "names itself http://localhost:8080" in finding.fix
    assert (
        "legacy token LS sent in /setup" in finding.fix and "personal access token" in finding.fix
    )
    full = CoreSettings(
        model_dir=tmp_path, label_studio_url="http://ls:8080", label_studio_api_key="k"
    )
    assert credentials_finding(full, None, None).status == "ok"


def test_setup_logs_its_verdict_once_per_project_and_config(make_app, ls_request, caplog):
    client = make_app().test_client()
    body = ls_request("setup")
    caplog.set_level(logging.INFO, logger="prelabel.doctor")
    for _ in range(3):
        assert client.post("/setup", json=body).status_code == 200
    verdicts = [r for r in caplog.records if r.name == "prelabel.doctor"]
    assert len(verdicts) == 1
    assert "setup check" in verdicts[0].getMessage() and "credentials" in verdicts[0].getMessage()
    body["schema"] = body["schema"].replace("Positive", "Good")
    assert client.post("/setup", json=body).status_code == 200
    assert len([r for r in caplog.records if r.name == "prelabel.doctor"]) == 2


def test_a_verdict_that_fails_never_fails_setup(make_app, ls_request, caplog, monkeypatch):
    def broken(self: Any, config: LabelConfig) -> Sequence[LabelCoverage]:
        raise RuntimeError("coverage bug")

    monkeypatch.setattr(ReferenceBackend, "label_coverage", broken)
    answer = make_app().test_client().post("/setup", json=ls_request("setup"))
    assert answer.status_code == 200 and answer.get_json()["model_version"]
    assert "Could not check project" in caplog.text


def test_the_cli_prints_json_and_exits_1_on_a_failure(closed_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PRELABEL_MODEL_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["doctor", "textcls", "--ls-url", closed_url, "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert [c["status"] for c in report["checks"]][:2] == ["fail", "skip"]
