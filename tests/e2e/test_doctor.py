"""Issue 20: ``prelabel doctor`` against a real Label Studio, healthy and broken in the ways
users hit most: a wrong token, a wrong URL, an organization that refuses legacy tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prelabel._doctor import DoctorOptions, run_doctor
from prelabel.settings import CoreSettings
from prelabel_textcls import TextClassifierBackend

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PRELABEL = str(Path(sys.executable).with_name("prelabel"))
ORDER = ["label_studio", "token", "ls_accepts", "media", "labels", "backend"]


def doctor_cli(e2e, tmp_path, *args, **env):
    """``prelabel doctor textcls ARGS`` with the environment a backend would have."""
    done = subprocess.run(
        [PRELABEL, "doctor", "textcls", *args],
        env=e2e.clean_env(PRELABEL_MODEL_DIR=str(tmp_path / "models"), **env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done


def checks(report):
    """A JSON report's checks by name."""
    return {c["check"]: c for c in report["checks"]}


def in_process(tmp_path, **options):
    """The doctor in this process (quicker than the CLI): findings by name, and the report."""
    settings = CoreSettings(model_dir=tmp_path / "models", job_runner="external")
    report = run_doctor(
        TextClassifierBackend(), settings, DoctorOptions(**options), container=False
    )
    return {f.check: f for f in report.findings}, report


def test_a_project_with_uploads_and_local_files_passes_every_check(
    ls, label_studio, backend, new_project, e2e, tmp_path
):
    project = new_project(e2e.URL_SENTIMENT_CONFIG, backend=backend)
    ls.upload_text_files(project, {"a.txt": "love it", "b.txt": "hate it"})
    folder = label_studio.files_root / f"doctor-{project.id}"
    folder.mkdir()
    (folder / "c.txt").write_text("great, love it")
    ls.add_local_storage(project, folder)

    done = doctor_cli(
        e2e, tmp_path, "--project", str(project.id), "--backend-url", backend.url, "--json",
        LABEL_STUDIO_URL=label_studio.url, LABEL_STUDIO_API_KEY=label_studio.token,
    )  # fmt: skip

    report = json.loads(done.stdout)
    found = checks(report)
    assert [c["check"] for c in report["checks"]] == ORDER
    assert {name: c["status"] for name, c in found.items()} == dict.fromkeys(ORDER, "ok"), report
    assert done.returncode == 0 and report["ok"]
    assert found["token"]["summary"].startswith("legacy token of e2e@prelabel.test")
    assert f"LS connects to {backend.url}" in found["ls_accepts"]["summary"]
    kinds = {d.split(":")[0] for d in found["media"]["details"]}
    assert kinds == {"upload", "local file"}, found["media"]
    assert found["labels"]["details"] == [
        "sentiment (Choices): learns Positive, Negative from annotations (nothing before the "
        "first training)"
    ]
    assert "/setup" in found["backend"]["summary"]
    # LS's own /setup calls had the backend log the cheap subset once for this project.
    log = backend.log_text()
    assert log.count(f"Project {project.key}: setup check") == 1, log[-3000:]


@pytest.mark.parametrize("kind", ["legacy token", "personal access token"])
def test_a_wrong_token_fails_with_the_fix_and_skips_what_needs_it(
    label_studio, pat, backend, new_project, tmp_path, kind
):
    project = new_project()
    # A well-formed token LS does not know; a personal access token with a forged signature.
    token = "0" * 40 if kind == "legacy token" else pat[:-6] + "AAAAAA"
    found, report = in_process(
        tmp_path, ls_url=label_studio.url, token=token, project=project.id, backend_url=backend.url
    )
    assert not report.ok
    assert found["label_studio"].status == "ok"
    assert found["token"].status == "fail"
    assert found["token"].summary == f"Label Studio refuses the {kind}"
    if kind == "legacy token":
        assert 'LS says: "Invalid token."' in found["token"].fix
    else:
        assert "refused to exchange the personal access token" in found["token"].fix
    assert "Personal Access Token" in found["token"].fix
    assert [found[c].status for c in ("media", "labels")] == ["skip", "skip"]
    assert found["backend"].status == "ok"  # the backend itself is fine


def test_a_wrong_url_fails_with_the_fix(closed_url, backend, tmp_path):
    found, _ = in_process(tmp_path, ls_url=closed_url, token="0" * 40, backend_url=closed_url)
    assert found["label_studio"].status == "fail"
    assert found["label_studio"].summary.startswith(f"cannot reach {closed_url}")
    assert "host.docker.internal" in found["label_studio"].fix  # 127.0.0.1: the Docker advice
    assert found["token"].status == "skip"
    assert found["backend"].status == "fail"
    assert "Start the backend" in found["backend"].fix

    found, _ = in_process(tmp_path, ls_url=backend.url, token="0" * 40)  # not Label Studio
    assert found["label_studio"].status == "fail"
    assert "without a Label Studio version" in found["label_studio"].summary


def test_legacy_tokens_turned_off_name_the_exact_setting(legacy_off_ls, e2e, tmp_path):
    done = doctor_cli(
        e2e, tmp_path, "--ls-url", legacy_off_ls.url,
        LABEL_STUDIO_API_KEY="e2e0prelabel0legacy0token000000000000000",
    )  # fmt: skip
    assert done.returncode == 1
    text = done.stdout
    assert "\033[" not in text  # no colour when not a terminal
    assert len(text.splitlines()) <= 25, text  # one screen
    assert "FAIL  token" in text
    flat = " ".join(text.split())  # the fix is wrapped to the screen's width
    assert "legacy token authentication has been disabled" in flat, text
    assert "People → API Token Settings → Legacy Tokens" in flat, text

    found, report = in_process(tmp_path, ls_url=legacy_off_ls.url, token=legacy_off_ls.pat)
    assert found["token"].status == "ok", report.as_text()
    assert found["token"].summary.startswith("personal access token of e2e@prelabel.test")
