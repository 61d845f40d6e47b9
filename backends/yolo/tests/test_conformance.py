from prelabel.testing import BackendConformance


class TestYoloConformance(BackendConformance):
    backend = "yolo"
