import importlib.metadata
import subprocess
import sys

import pytest

from fmnist_core import BackendError, Trainer, plugins


def test_unknown_backend_lists_installed():
    with pytest.raises(BackendError, match=r"unknown backend 'nope'; installed backends: .*numpy"):
        plugins.get_backend("nope")


def test_unknown_model():
    with pytest.raises(BackendError, match="unknown model 'cnn9'; known models: cnn, mlp"):
        Trainer(backend="numpy", model="cnn9")


def test_default_plugins_registered_like_others():
    manager = plugins.get_plugin_manager()
    for name in plugins.DEFAULT_PLUGINS:
        assert manager.get_plugin(name) is not None
    assert "numpy" in plugins.backends() and "mlp" in plugins.models()
    assert "safetensors" in plugins.weight_formats()


def test_best_backend_by_priority(fake_backend):
    assert plugins.get_backend(None).priority >= plugins.get_backend("numpy").priority


class _EntryPoint:
    def __init__(self, name, value):
        self.name, self.value = name, value

    def load(self):
        if self.value == "broken":
            raise ImportError("No module named 'some_framework'")
        from . import fake_backend

        return fake_backend.FakePlugin()


def test_broken_plugin_reported_others_work(monkeypatch):
    def fake_entry_points(group):
        assert group == "fmnist"
        return [_EntryPoint("broken", "broken"), _EntryPoint("fakeok", "ok")]

    monkeypatch.setattr(plugins, "entry_points", fake_entry_points)
    monkeypatch.delenv("FMNIST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("FMNIST_PLUGINS", raising=False)
    plugins.reset()
    try:
        failures = plugins.plugin_failures()
        assert [(f.name, f.error) for f in failures] == [("broken", "ImportError: No module named 'some_framework'")]
        assert {"numpy", "fake"} <= set(plugins.backends())
        with pytest.raises(BackendError, match="failed to load: broken"):
            plugins.get_backend("nope")
        monkeypatch.setenv("FMNIST_PLUGINS", "fakeok")
        plugins.reset()
        assert plugins.plugin_failures() == [] and "fake" in plugins.backends()
        monkeypatch.setenv("FMNIST_DISABLE_PLUGIN_AUTOLOAD", "1")
        plugins.reset()
        assert "fake" not in plugins.backends()
    finally:
        plugins.reset()


def test_installed_entry_points_are_in_group_fmnist():
    names = {ep.name for ep in importlib.metadata.entry_points(group="fmnist")}
    assert names <= {"torch", "tf", "keras"}
    assert set(plugins.backends()) >= {"numpy"} | names


def test_cli_lists_broken_plugin_without_failing(tmp_path):
    # a real broken distribution on sys.path: an entry point whose module does not import
    dist = tmp_path / "fmnist_broken-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fmnist-broken\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[fmnist]\nbroken = fmnist_broken_missing_module\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "fmnist_core.cli", "backends"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "numpy" in out.stdout
    assert "plugin 'broken' failed to load: ModuleNotFoundError" in out.stdout
