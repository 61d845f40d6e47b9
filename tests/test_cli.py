"""The prelabel command line."""

import subprocess
import sys

from click.testing import CliRunner

from prelabel.cli import cli
from prelabel.testing import run_checks


def test_list_shows_textcls_without_importing_it():
    code = (
        "import sys; from prelabel.cli import main\n"
        "try:\n    main(['list'])\nexcept SystemExit:\n    pass\n"
        "assert 'prelabel_textcls' not in sys.modules and 'sklearn' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "textcls" in proc.stdout
    assert "prelabel-textcls" in proc.stdout


def test_check_reports_each_check():
    result = CliRunner().invoke(cli, ["check", "textcls"])
    assert result.exit_code == 0, result.output
    assert "ok   one_per_task" in result.output
    assert "textcls: all checks passed" in result.output


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


def test_serve_tells_backends_how_many_workers_share_the_machine(monkeypatch):
    import os

    import prelabel._server.gunicorn as gunicorn

    seen = {}
    monkeypatch.setenv("PRELABEL_JOB_RUNNER", "external")
    monkeypatch.setattr(
        gunicorn,
        "run_gunicorn",
        lambda **options: seen.update(options, env=os.environ["WEB_CONCURRENCY"]),
    )
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("PRELABEL_BACKEND", raising=False)  # serve sets both; restored after
    result = CliRunner().invoke(cli, ["serve", "textcls", "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert seen["workers"] == 3 and seen["env"] == "3"
