from fmnist_core.testing import BackendConformance


class TestNumpyConformance(BackendConformance):
    backend = "numpy"
