"""Shared by the small-model benchmarks: write the figures, run with one BLAS thread."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from threadpoolctl import threadpool_limits

RESULTS = Path(__file__).parent / "results"


def write_figures(name: str, figures: dict[str, object], started: float) -> None:
    """Add the run's seconds (since ``started``, a perf_counter) and write results/<name>.json."""
    figures["seconds"] = round(time.perf_counter() - started, 1)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"wrote {out} in {figures['seconds']} s")


def single_threaded(main: Callable[[], None]) -> None:
    """Run ``main`` with one BLAS thread: for models this small, threads only contend on a
    shared machine (3x faster here). The figures are label counts and accuracies, not timings."""
    with threadpool_limits(1):
        main()
