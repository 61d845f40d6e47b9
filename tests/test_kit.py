"""The conformance kit tests itself: the reference backend passes, broken ones fail the right checks."""

import os
import subprocess
import sys

import pytest

from prelabel.config import LabelConfig
from prelabel.errors import InvalidExtraParams
from prelabel.media import MediaResolver
from prelabel.project import ProjectKey
from prelabel.settings import BackendSettings, CoreSettings
from prelabel.testing import (
    CHECKS,
    BackendConformance,
    annotated_task,
    make_context,
    make_train_job,
    run_checks,
    text_task,
)
from prelabel.testing.reference import (
    REFERENCE_CONFIG,
    BrokenCountBackend,
    BrokenEvaluationBackend,
    BrokenRegionBackend,
    ReferenceBackend,
)


def outcomes(backend):
    return {o.check: o for o in run_checks(backend)}


def test_reference_backend_passes_every_applicable_check():
    result = outcomes(ReferenceBackend)
    assert set(result) == set(CHECKS)
    failed = {name: o.message for name, o in result.items() if o.status == "failed"}
    assert failed == {}
    # A class (not an entry-point name) cannot be checked for discovery; it has no heavy modules.
    assert {n for n, o in result.items() if o.status == "skipped"} == {
        "entry_point",
        "lazy_imports",
        "interactive",
    }


def test_dropping_a_task_fails_one_per_task_and_fit():
    result = outcomes(BrokenCountBackend)
    assert result["one_per_task"].status == "failed"
    assert "2 predictions for 3 tasks" in result["one_per_task"].message
    assert result["fit"].status == "failed"
    assert "Prediction.empty()" in result["one_per_task"].troubleshooting


def test_unknown_label_fails_regions_valid():
    result = outcomes(BrokenRegionBackend)
    assert result["regions_valid"].status == "failed"
    assert "Neutral" in result["regions_valid"].message


def test_a_score_outside_zero_to_one_fails_evaluate():
    result = outcomes(BrokenEvaluationBackend)
    assert result["evaluate"].status == "failed"
    assert "accuracy_percent is 100.0, not a number in [0, 1]" in result["evaluate"].message
    assert result["fit"].status == "passed"


def test_textcls_passes_as_an_installed_plugin():
    result = outcomes("textcls")
    assert {n: o.status for n, o in result.items() if o.status == "failed"} == {}
    assert result["entry_point"].status == "passed"
    assert result["lazy_imports"].status == "passed"


def test_heavy_import_at_module_level_fails_lazy_imports(tmp_path, monkeypatch):
    module = tmp_path / "eager_plugin.py"
    module.write_text(
        "import json\n"
        "from prelabel.testing.reference import ReferenceBackend\n"
        "class EagerBackend(ReferenceBackend):\n"
        "    heavy_modules = ('json',)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    import eager_plugin

    result = outcomes(eager_plugin.EagerBackend)
    assert result["lazy_imports"].status == "failed"
    assert "json" in result["lazy_imports"].message


class TestReferenceConformance(BackendConformance):
    backend = ReferenceBackend


def test_overriding_a_kit_test_without_reason_is_caught():
    class Sneaky(BackendConformance):
        backend = ReferenceBackend

        def test_one_per_task(self, tmp_path):
            pass

    with pytest.raises(pytest.fail.Exception, match="overrides test_one_per_task"):
        Sneaky().test_no_overrides()

    class Declared(Sneaky):
        expected_failures = {"one_per_task": "known issue #1"}

    Declared().test_no_overrides()


class TunableBackend(ReferenceBackend):
    class Settings(BackendSettings):
        threshold: float = 0.5


def test_make_context_applies_extra_params_as_the_server_does(tmp_path):
    backend = TunableBackend()
    ctx = make_context(backend, REFERENCE_CONFIG, media=tmp_path, extra_params={"threshold": 0.3})
    assert ctx.project == ProjectKey("1", 1)
    assert (ctx.model_version, ctx.model_dir, ctx.interaction) == ("test", None, [])
    assert ctx.label_config.control("sentiment").label_names == ("Positive", "Negative")
    assert ctx.settings.threshold == 0.3 and backend.settings.threshold == 0.5
    assert ctx.extra_params == {"threshold": 0.3}
    assert ctx.media.cache_dir == tmp_path / "media-cache"
    (prediction,) = backend.predict([text_task(1, "so positive")], ctx)
    assert prediction.result[0].value == {"choices": ["Positive"]}


def test_make_context_takes_parsed_configs_and_a_resolver(tmp_path):
    backend = TunableBackend()
    config = LabelConfig.parse(REFERENCE_CONFIG)
    media = MediaResolver(CoreSettings(model_dir=tmp_path))
    ctx = make_context(
        backend,
        config,
        media=media,
        project=ProjectKey("7", 42),
        model_version="v3",
        model_dir=tmp_path,
        interaction=({"type": "keypointlabels"},),
    )
    assert (ctx.project, ctx.model_version, ctx.model_dir) == (ProjectKey("7", 42), "v3", tmp_path)
    assert ctx.label_config is config and ctx.media is media
    assert ctx.settings is backend.settings and ctx.extra_params == {}
    assert ctx.interaction == [{"type": "keypointlabels"}]
    with pytest.raises(InvalidExtraParams, match="thresold"):
        make_context(backend, config, media=media, extra_params={"thresold": 0.3})


def test_make_train_job_is_what_fit_gets_from_the_job_runner(tmp_path):
    backend = ReferenceBackend()

    def choice(label):
        return [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                 "value": {"choices": [label]}}]  # fmt: skip

    tasks = [
        annotated_task(1, {"text": "great"}, choice("Positive")),
        annotated_task(2, {"text": "awful"}, choice("Negative")),
    ]
    job = make_train_job(backend, REFERENCE_CONFIG, tasks, workdir=tmp_path / "v1", media=tmp_path)
    assert job.workdir.is_dir() and not any(job.workdir.iterdir())
    assert (job.project, job.base_dir, job.reason) == (ProjectKey("1", 1), None, "test")
    assert job.tasks == tasks
    assert job.media.cache_dir == tmp_path / "media-cache"
    assert backend.fit(job) is not None and any(job.workdir.iterdir())
    trained = make_context(backend, REFERENCE_CONFIG, media=job.media, model_dir=job.workdir)
    (prediction,) = backend.predict([text_task(3, "great")], trained)
    assert prediction.result[0].value == {"choices": ["Positive"]}
    with pytest.raises(InvalidExtraParams, match="thresold"):
        make_train_job(
            TunableBackend(), REFERENCE_CONFIG, tasks, workdir=tmp_path / "v2", media=tmp_path,
            extra_params={"thresold": 0.3},
        )  # fmt: skip


def test_short_summary_names_each_skipped_kit_test(tmp_path):
    # Every kit test is defined in prelabel/testing/_pytest.py, so pytest's `-ra` line gives
    # that file for each skip: the reason itself has to say which test it was.
    (tmp_path / "test_ref.py").write_text(
        "from prelabel.testing import BackendConformance\n"
        "from prelabel.testing.reference import ReferenceBackend\n\n"
        "class TestRef(BackendConformance):\n"
        "    backend = ReferenceBackend\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "test_ref.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        # A server run in this process may have left its metrics directory, since removed.
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    skipped = sorted(line for line in proc.stdout.splitlines() if line.startswith("SKIPPED"))
    assert len(skipped) == 3, proc.stdout
    for line, check in zip(skipped, ["entry_point", "interactive", "lazy_imports"], strict=True):
        assert f"test_ref.py::TestRef::test_{check}: not applicable: " in line, line
