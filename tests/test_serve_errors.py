"""`prelabel serve` mistakes end before gunicorn starts: one line that says what to do, exit 2.

Each test runs the real command and reads the first line of its stderr, which is all a user
should need to read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from prelabel._engine.jobs import JobQueue
from prelabel._engine.store import ProjectStore
from prelabel._server.preflight import check_address, load_in_child
from prelabel.errors import BackendLoadError, ConfigError
from prelabel.project import ProjectKey
from prelabel.registry import discover
from prelabel.testing.reference import ReferenceBackend

INSTALLED = ", ".join(sorted(discover()))


def serve(*args: str, tmp_path: Path, **env: str) -> tuple[int, str]:
    """Run ``prelabel serve ARGS`` in a clean environment; (exit status, first stderr line)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PRELABEL_", "LABEL_STUDIO_")) and k != "PORT"
    }
    clean.update(PRELABEL_MODEL_DIR=str(tmp_path / "models"), **env)
    proc = subprocess.run(
        [sys.executable, "-m", "prelabel", "serve", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.splitlines()
    return proc.returncode, lines[0] if lines else ""


def test_an_unknown_backend_suggests_the_closest_installed_name(tmp_path):
    assert serve("textcl", "--port", "1", tmp_path=tmp_path) == (
        2,
        f"Error: No backend named 'textcl' is installed; did you mean 'textcls'? "
        f"(installed: {INSTALLED})",
    )


def test_an_unknown_backend_without_a_close_name_says_how_to_install_it(tmp_path):
    assert serve("zzz", "--dev", tmp_path=tmp_path) == (
        2,
        f"Error: No backend named 'zzz' is installed (installed: {INSTALLED}); "
        "install it with `pip install prelabel-zzz`, or check the name.",
    )


@pytest.mark.skipif(len(discover()) < 2, reason="needs several installed backends to choose from")
def test_no_backend_chosen_says_how_to_choose(tmp_path):
    assert serve(tmp_path=tmp_path) == (
        2,
        "Error: Choose a backend: pass its name (`prelabel serve NAME`) or set PRELABEL_BACKEND "
        f"(installed: {INSTALLED}).",
    )


def test_a_misspelled_variable_is_named_with_the_right_spelling(tmp_path):
    # Core names are checked first: the typo is reported, not a consequence of it.
    assert serve(tmp_path=tmp_path, PRELABEL_BACKNED="textcls") == (
        2,
        "Error: Unknown setting PRELABEL_BACKNED: no prelabel or backend setting has that "
        "name. Did you mean PRELABEL_BACKEND?",
    )
    assert serve("textcls", tmp_path=tmp_path, PRELABEL_TEXTCLS_TRESHOLD="0.3") == (
        2,
        "Error: Unknown setting PRELABEL_TEXTCLS_TRESHOLD: no prelabel or backend setting has "
        "that name. Did you mean PRELABEL_TEXTCLS_THRESHOLD?",
    )


def test_a_setting_out_of_range_is_named(tmp_path):
    assert serve("textcls", tmp_path=tmp_path, PRELABEL_TEXTCLS_THRESHOLD="2") == (
        2,
        "Error: Invalid Settings: PRELABEL_TEXTCLS_THRESHOLD: "
        "Input should be less than or equal to 1",
    )


def test_a_port_in_use_names_port_and_starts_no_worker_on_the_live_queue(tmp_path):
    # The live server's state: a queued training job, which a second worker would take.
    live = ProjectStore(tmp_path / "models")
    job = JobQueue(live.db_path).enqueue(ProjectKey("4", 1795807427), "train", reason="TEST")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        expected = (
            2,
            f"Error: Port {port} is already in use on 127.0.0.1 (another prelabel server?): stop "
            "that server, or serve on another port with --port N (or PORT=N).",
        )
        flag = serve("textcls", "--host", "127.0.0.1", "--port", str(port), tmp_path=tmp_path)
        env = serve("textcls", "--host", "127.0.0.1", tmp_path=tmp_path, PORT=str(port))
    assert flag == env == expected
    assert JobQueue(live.db_path).get(job.id).status == "queued"


def test_prelabel_start_on_a_port_in_use_says_so_in_one_line(tmp_path):
    project = tmp_path / "my_ml_backend"
    project.mkdir()  # checked before model.py is read
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "prelabel", "start", str(project), "--host", "127.0.0.1"],
            env={**os.environ, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert (proc.returncode, proc.stderr.splitlines()[0]) == (
        2,
        f"Error: Port {port} is already in use on 127.0.0.1 (another prelabel server?): stop "
        "that server, or serve on another port with --port N (or PORT=N).",
    )


def test_an_address_of_another_machine_is_refused():
    with pytest.raises(ConfigError, match=r"^Cannot serve on host '192\.0\.2\.1': it is not an"):
        check_address("192.0.2.1", 9090)  # TEST-NET-1: never an address of this machine


class NeedsWeights(ReferenceBackend):
    def load(self) -> None:
        raise BackendLoadError("Model weights 'best.pt' not found: put the file there.")


class Buggy(ReferenceBackend):
    def load(self) -> None:
        print("loading...")
        raise KeyError("oops")


def test_load_runs_in_a_child_and_its_error_comes_back_as_one_line(capfd):
    with pytest.raises(BackendLoadError) as caught:
        load_in_child(NeedsWeights())
    assert str(caught.value) == "Model weights 'best.pt' not found: put the file there."
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    load_in_child(ReferenceBackend())  # no error, no output


def test_a_bug_in_load_shows_its_traceback(capfd):
    with pytest.raises(BackendLoadError, match=r"failed with KeyError: 'oops' \(traceback above\)"):
        load_in_child(Buggy())
    captured = capfd.readouterr()
    shown = captured.out + captured.err  # the child's stdout is pytest's capture, not fd 1
    assert "loading..." in shown and "Traceback" in captured.err and "KeyError: 'oops'" in shown
