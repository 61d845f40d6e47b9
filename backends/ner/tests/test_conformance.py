from prelabel.testing import BackendConformance


class TestNerConformance(BackendConformance):
    backend = "ner"
