"""The prelabel command line."""

import json
import logging
import os
import subprocess
import sys

from click.testing import CliRunner

from prelabel.cli import cli
from prelabel.testing import CheckOutcome, run_checks


def test_list_shows_textcls_without_importing_it():
    code = (
        "import sys; from prelabel.cli import main\n"
        "try:\n    main(['list'])\nexcept SystemExit:\n    pass\n"
        "assert 'prelabel_textcls' not in sys.modules and 'sklearn' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "textcls" in proc.stdout
    assert "prelabel-textcls" in proc.stdout


def test_check_reports_each_check_and_nothing_on_stderr():
    # A process of its own: under pytest, logging has handlers and a stray warning never
    # reaches stderr the way it does in a terminal.
    proc = subprocess.run(
        [sys.executable, "-m", "prelabel", "check", "textcls"],
        capture_output=True,
        text=True,
        # A server run in this process may have left its metrics directory, since removed.
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok   one_per_task" in proc.stdout
    assert "textcls: all checks passed" in proc.stdout
    assert proc.stderr == ""


def test_check_shows_the_log_it_held_back_when_a_check_fails(monkeypatch):
    def one_failing_check(name):
        logging.getLogger("prelabel.somewhere").warning("why it failed")
        return [CheckOutcome("one_per_task", "failed", "2 predictions for 3 tasks")]

    monkeypatch.setattr("prelabel.testing.run_checks", one_failing_check)
    result = CliRunner().invoke(cli, ["check", "textcls"])
    assert result.exit_code == 1
    assert "FAIL one_per_task: 2 predictions for 3 tasks" in result.stdout
    assert "WARNING prelabel.somewhere: why it failed" in result.stderr


def test_check_unknown_backend_fails_cleanly():
    result = CliRunner().invoke(cli, ["check", "nope"])
    assert result.exit_code != 0
    assert "No backend named 'nope'" in str(result.exception)


def test_create_makes_a_plugin_that_passes_the_kit(tmp_path, monkeypatch):
    target = tmp_path / "prelabel-my_model"
    result = CliRunner().invoke(cli, ["create", "my_model", "--directory", str(target)])
    assert result.exit_code == 0, result.output
    pyproject = (target / "pyproject.toml").read_text()
    assert 'my_model = "prelabel_my_model:MyModelBackend"' in pyproject
    assert 'name = "prelabel-my_model"' in pyproject
    assert "skeleton" not in pyproject.lower()
    assert (target / "src" / "prelabel_my_model" / "backend.py").exists()
    monkeypatch.syspath_prepend(str(target / "src"))
    from prelabel_my_model import MyModelBackend

    assert MyModelBackend.name == "my_model"
    failed = {o.check: o.message for o in run_checks(MyModelBackend) if o.status == "failed"}
    assert failed == {}


def test_create_refuses_bad_names_and_non_empty_dirs(tmp_path):
    bad = CliRunner().invoke(cli, ["create", "My-Model", "--directory", str(tmp_path / "x")])
    assert bad.exit_code != 0
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    busy = CliRunner().invoke(cli, ["create", "ok", "--directory", str(tmp_path / "full")])
    assert busy.exit_code != 0


def _predict(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRELABEL_", "LABEL_STUDIO"))}
    env["PRELABEL_MODEL_DIR"] = str(tmp_path / "models")
    return subprocess.run(
        [sys.executable, "-m", "prelabel", "predict", "textcls", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_predict_turns_an_export_into_an_import_file(tmp_path):
    config = tmp_path / "config.xml"
    config.write_text(
        '<View><Text name="text" value="$text"/><Choices name="s" toName="text">'
        '<Choice value="A"/><Choice value="B"/></Choices></View>'
    )
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": i, "data": {"text": f"t{i}"}} for i in range(5)]))
    done = _predict(tmp_path, "--export", str(export), "--label-config", str(config))
    assert done.returncode == 0, done.stderr
    assert "Done: 5 tasks predicted (5 empty)" in done.stdout  # textcls is untrained: empty
    rows = json.loads((tmp_path / "export.predictions.json").read_text())
    assert [r["data"]["text"] for r in rows] == [f"t{i}" for i in range(5)]
    assert all(len(r["predictions"]) == 1 for r in rows)
    assert rows[0]["predictions"][0]["model_version"].startswith("textcls-")


def test_predict_says_what_it_needs(tmp_path):
    neither = _predict(tmp_path)
    assert neither.returncode == 2 and "Give --project ID" in neither.stderr
    export = tmp_path / "export.json"
    export.write_text("[]")
    no_config = _predict(tmp_path, "--export", str(export))
    assert no_config.returncode == 2 and "--label-config" in no_config.stderr
    live = _predict(tmp_path, "--project", "3")
    assert live.returncode == 2 and "LABEL_STUDIO_URL" in live.stderr


def test_serve_tells_backends_how_many_workers_share_the_cpu(monkeypatch, tmp_path):
    import prelabel._server.gunicorn as gunicorn

    seen = []
    monkeypatch.setattr(
        gunicorn, "run_gunicorn", lambda **options: seen.append((options, dict(os.environ)))
    )
    for name in ("WEB_CONCURRENCY", "PRELABEL_BACKEND"):
        monkeypatch.setenv(name, "unset")  # restored after the test: serve sets both
    # With several workers serve would set it to a temporary directory it removes at the end,
    # leaving later tests' /metrics pointing at nothing.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("PRELABEL_JOB_RUNNER", "external")
    monkeypatch.setenv("PRELABEL_MODEL_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["serve", "textcls", "--workers", "3"])
    assert result.exit_code == 0, result.output
    ((options, env),) = seen
    assert options["workers"] == 3 and env["WEB_CONCURRENCY"] == "3"
