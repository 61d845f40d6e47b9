"""The conformance kit tests itself: the reference backend passes, broken ones fail the right checks."""

import pytest

from prelabel.testing import CHECKS, BackendConformance, run_checks
from prelabel.testing.reference import BrokenCountBackend, BrokenRegionBackend, ReferenceBackend


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
