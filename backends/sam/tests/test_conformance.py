"""The conformance kit against the sam backend on the tiny checkpoint (see conftest)."""

from __future__ import annotations

from prelabel.testing import BackendConformance


class TestSamConformance(BackendConformance):
    backend = "sam"
