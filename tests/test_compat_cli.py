"""`prelabel create DIR`: a compat project laid out as the SDK's `label-studio-ml create` does.

`prelabel start DIR` is exercised in ``test_compat_start.py``.
"""

from __future__ import annotations

import importlib.util

from click.testing import CliRunner

from prelabel.cli import cli

LAYOUT = {
    "model.py",
    "requirements.txt",
    "Dockerfile",
    "docker-compose.yml",
    "test_model.py",
    "README.md",
    ".dockerignore",
    "wheels",
}


def test_create_lays_out_a_compat_project_whose_own_test_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["create", "my_ml_backend"])
    assert result.exit_code == 0, result.output
    assert "prelabel start my_ml_backend -p 9090" in result.output
    project = tmp_path / "my_ml_backend"
    assert {p.name for p in project.iterdir()} == LAYOUT
    assert "from prelabel.compat import LabelStudioMLBase" in (project / "model.py").read_text()
    spec = importlib.util.spec_from_file_location("generated_test_model", project / "test_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_every_task_gets_a_prediction_with_the_setup_version(tmp_path / "state")
    again = CliRunner().invoke(cli, ["create", "my_ml_backend"])
    assert again.exit_code != 0 and "not empty" in str(again.exception)


def test_create_compat_refuses_directory_option(tmp_path):
    result = CliRunner().invoke(cli, ["create", "x", "--compat", "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "--directory is for --plugin" in result.output
