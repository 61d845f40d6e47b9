from prelabel.testing import BackendConformance


class TestConformance(BackendConformance):
    backend = "skeleton"
