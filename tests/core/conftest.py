import pytest

from fmnist_core import plugins

from .fake_backend import FakePlugin


@pytest.fixture
def fake_backend():
    manager = plugins.get_plugin_manager()
    plugin = FakePlugin()
    manager.register(plugin, name="fake-test-plugin")
    yield "fake"
    manager.unregister(plugin)
