"""The drawn architecture, pinned: the public surface, private engine and server, no import cycles.

The import graph is read from the source with ``ast`` (every import, also those inside
functions and ``if TYPE_CHECKING`` blocks: a cycle there is still a cycle a reader has to
untangle). ``docs/architecture.md`` shows it layer by layer.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import prelabel

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
assert _spec is not None and _spec.loader is not None
graphs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(graphs)

#: Modules that backends and users import; everything else in ``prelabel`` is private.
PUBLIC = {
    "prelabel",
    "prelabel.annotations",
    "prelabel.backend",
    "prelabel.cli",
    "prelabel.compat",
    "prelabel.config",
    "prelabel.database",
    "prelabel.errors",
    "prelabel.media",
    "prelabel.metrics",
    "prelabel.project",
    "prelabel.registry",
    "prelabel.report",
    "prelabel.results",
    "prelabel.scenario",
    "prelabel.settings",
    "prelabel.testing",
    "prelabel.threads",
    "prelabel.validation",
    "prelabel.vision",
}

TOP_LEVEL = {
    "Backend",
    "BackendLoadError",
    "BackendNotFound",
    "BackendSettings",
    "BulkHints",
    "Context",
    "Control",
    "CoreSettings",
    "Evaluation",
    "LabelConfig",
    "LabelCoverage",
    "LabelMap",
    "MediaError",
    "MediaResolver",
    "ObjectTag",
    "Prediction",
    "PrelabelError",
    "ProjectKey",
    "Region",
    "TaskDataError",
    "TaskPredictions",
    "TrainJob",
    "TrainResult",
    "UnsupportedConfig",
    "UpstreamError",
}


def test_the_top_level_surface_is_pinned():
    assert set(prelabel.__all__) == TOP_LEVEL
    assert all(getattr(prelabel, name) is not None for name in prelabel.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_module_imports_and_declares_its_surface(name):
    module = importlib.import_module(name)
    if name != "prelabel.cli":
        assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"


def test_everything_else_in_prelabel_is_private():
    public_or_private = [
        name
        for name in graphs.modules()
        if name.startswith("prelabel.")
        and not any(part.startswith("_") for part in name.split("."))
        and not any(name == p or name.startswith(p + ".") for p in PUBLIC - {"prelabel"})
    ]
    assert public_or_private == []


def test_first_party_code_has_no_import_cycles():
    graph = graphs.import_graph()
    assert len(graph) > 60
    assert graphs.cycles(graph) == []


def test_the_contract_and_public_modules_never_import_the_engine_server_or_kit():
    graph = graphs.import_graph()
    contract = ["prelabel.backend", "prelabel.results", "prelabel.config", "prelabel.scenario"]
    for name in contract:
        reached, todo = set(), [name]
        while todo:
            for nxt in graph[todo.pop()] - reached:
                reached.add(nxt)
                todo.append(nxt)
        forbidden = ("prelabel._engine", "prelabel._server", "prelabel.testing")
        bad = sorted(m for m in reached if m.startswith(forbidden))
        assert bad == [], f"{name} reaches {bad}"


def test_the_training_worker_imports_no_flask():
    code = (
        "import sys, prelabel._engine.worker, prelabel._engine.jobprocess, prelabel.cli;"
        "print(sorted(m for m in sys.modules if m == 'flask' or m.startswith('flask.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
