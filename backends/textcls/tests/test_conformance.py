from prelabel.testing import BackendConformance


class TestTextclsConformance(BackendConformance):
    backend = "textcls"
