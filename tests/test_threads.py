"""The thread policy: every core for one serving worker, divided among workers, half for training."""

import os
import subprocess
import sys

import pytest

from prelabel._engine.runtime import build_runtime
from prelabel.errors import ConfigError
from prelabel.settings import CoreSettings, load_settings
from prelabel.testing.reference import ReferenceBackend
from prelabel.threads import cpu_cores, serving_workers, threads_for, use_passive_waits


def test_one_serving_worker_gets_every_core_and_several_divide_them():
    auto = CoreSettings()
    assert threads_for("serve", auto, cores=8, workers=1) == 8
    assert threads_for("serve", auto, cores=8, workers=3) == 2
    assert threads_for("serve", auto, cores=2, workers=4) == 1  # never zero


def test_a_training_job_gets_half_the_cores():
    auto = CoreSettings()
    assert threads_for("train", auto, cores=8, workers=1) == 4
    assert threads_for("train", auto, cores=8, workers=4) == 4  # serving workers do not matter
    assert threads_for("train", auto, cores=1) == 1


def test_the_settings_override_either_count():
    settings = CoreSettings(threads=3, train_threads=5)
    assert threads_for("serve", settings, cores=64, workers=8) == 3
    assert threads_for("train", settings, cores=64) == 5


def test_thread_settings_come_from_the_environment_and_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("PRELABEL_THREADS", "4")
    monkeypatch.setenv("PRELABEL_TRAIN_THREADS", "AUTO")
    settings = load_settings(CoreSettings)
    assert (settings.threads, settings.train_threads) == (4, "auto")
    for bad in ("0", "-2", "many", "1.5"):
        monkeypatch.setenv("PRELABEL_THREADS", bad)
        with pytest.raises(ConfigError, match=r"PRELABEL_THREADS.*number of threads"):
            load_settings(CoreSettings)


def test_serving_workers_are_read_from_web_concurrency():
    assert serving_workers({"WEB_CONCURRENCY": "3"}) == 3
    assert serving_workers({}) == 1
    assert serving_workers({"WEB_CONCURRENCY": "lots"}) == 1


def test_cores_are_the_affinity_capped_by_a_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert cpu_cores(tmp_path) == affinity  # no cgroup files: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_cores(tmp_path) == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # docker run --cpus=0.5
    assert cpu_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{affinity * 400000} 100000\n")  # more than we may use
    assert cpu_cores(tmp_path) == affinity
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_cores(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_cores(tmp_path) == affinity


def test_the_runtime_hands_the_backend_the_count_of_its_role(tmp_path):
    settings = CoreSettings(model_dir=tmp_path, threads=3, train_threads=5)
    serving = build_runtime(ReferenceBackend(), settings)
    assert serving.backend.threads == 3
    training = build_runtime(ReferenceBackend(), settings, role="train")
    assert training.backend.threads == 5


def test_openmp_threads_wait_passively_unless_the_user_chose():
    environ = {}
    use_passive_waits(environ)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    chosen = {"OMP_WAIT_POLICY": "ACTIVE"}
    use_passive_waits(chosen)
    assert chosen == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_core_never_imports_torch_to_set_threads():
    code = (
        "import sys; from prelabel.threads import use_torch_threads; use_torch_threads(3);"
        "from prelabel._engine.runtime import build_runtime; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
