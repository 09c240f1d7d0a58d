import importlib.metadata
import subprocess
import sys

import pytest

from fmnist_core import BackendError, ConfigError, Trainer, plugins


def test_unknown_backend_lists_installed():
    with pytest.raises(BackendError, match=r"unknown backend 'nope'; installed backends: .*numpy"):
        plugins.get_backend("nope")


def test_unknown_model():
    with pytest.raises(
        BackendError, match="unknown model .cnn9.; known models: accurate, balanced, cnn, fast, mlp"
    ):
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
        assert [(f.name, f.error) for f in failures] == [
            ("broken", "ImportError: No module named 'some_framework'")
        ]
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
    assert names <= {"torch", "tf", "keras", "onnx"}
    assert set(plugins.backends()) >= {"numpy"} | names


def test_cli_lists_broken_plugin_without_failing(tmp_path):
    # a real broken distribution on sys.path: an entry point whose module does not import
    dist = tmp_path / "fmnist_broken-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fmnist-broken\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[fmnist]\nbroken = fmnist_broken_missing_module\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "backends"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "numpy" in out.stdout
    assert "plugin 'broken' failed to load: ModuleNotFoundError" in out.stdout


# -- backend options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"nan_afterr": 3},
            r"backend 'fake' has no option 'nan_afterr' \(did you mean 'nan_after'\?\); its "
            r"options: nan_after",
        ),
        ({"nan_after": "3"}, r"option nan_after must be an integer ≥ 1, got '3'"),
        ({"nan_after": True}, r"option nan_after must be an integer ≥ 1, got True"),
        ({"nan_after": 0}, r"option nan_after must be an integer ≥ 1, got 0"),
    ],
)
def test_backend_options_are_checked(fake_backend, options, message):
    from fmnist_core import ConfigError

    with pytest.raises(ConfigError, match=message):
        Trainer(backend=fake_backend, **options)


def test_options_on_a_backend_without_any(fake_backend):
    from fmnist_core import ConfigError

    with pytest.raises(
        ConfigError, match="backend 'numpy' has no option 'device'; its options: none"
    ):
        Trainer(backend="numpy", device="cuda")
    assert Trainer(backend=fake_backend, nan_after=5).options == {"nan_after": 5}
    assert Trainer(backend=fake_backend).options == {"nan_after": None}  # defaults filled in


def test_option_that_does_nothing_is_an_error():
    from fmnist_core import Backend, ConfigError, Option

    option = Option(
        "turbo",
        bool,
        False,
        "go fast",
        does_nothing=lambda o: None if o["mode"] == "fast" else "mode is slow",
    )
    mode = Option("mode", str, "slow", "speed", choices=("slow", "fast"))

    class Backend_(Backend):
        name = "opt-test"
        options = (mode, option)

        def create_engine(self, config):
            raise NotImplementedError

    backend = Backend_()
    assert backend.check_options({"mode": "fast", "turbo": True}) == {"mode": "fast", "turbo": True}
    with pytest.raises(ConfigError, match="option turbo=True does nothing here: mode is slow"):
        backend.check_options({"turbo": True})
    with pytest.raises(ConfigError, match="option mode must be one of slow, fast, got 'medium'"):
        backend.check_options({"mode": "medium"})


def test_cli_shows_options(fake_backend):
    import json

    from fmnist_core.cli import build_parser
    from fmnist_core.cli.backends import run as cmd_backends

    args = build_parser().parse_args(["backends", "--json"])
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cmd_backends(args)
    rows = {r["name"]: r for r in json.loads(out.getvalue())["backends"]}
    assert rows["fake"]["options"] == [
        {
            "name": "nan_after",
            "type": "int",
            "default": None,
            "choices": [],
            "help": "make the loss NaN after this many steps",
        }
    ]


# -- plugin validation -------------------------------------------------------------------


def test_misspelt_or_wrong_signature_hook_is_reported():
    import pluggy

    from fmnist_core import hookimpl

    class Misspelt:
        @hookimpl
        def fmnist_backend(self):  # no such hook: fmnist_backends
            return []

    class WrongSignature:
        @hookimpl
        def fmnist_models(self, extra):
            return []

    manager = pluggy.PluginManager("fmnist")
    from fmnist_core import hookspecs

    manager.add_hookspecs(hookspecs)
    for plugin in (Misspelt(), WrongSignature()):
        with pytest.raises(pluggy.PluginValidationError):
            plugins.register_checked(manager, plugin, type(plugin).__name__)
        assert manager.get_plugin(type(plugin).__name__) is None


def test_misspelt_plugin_listed_by_backends(tmp_path):
    dist = tmp_path / "misspelt_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: misspelt-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[fmnist]\nmisspelt = misspelt_module\n")
    (tmp_path / "misspelt_module.py").write_text(
        "from fmnist_core import hookimpl\n\n@hookimpl\ndef fmnist_backend():\n    return []\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "backends"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0 and "numpy" in out.stdout
    assert "plugin 'misspelt' failed to load" in out.stdout and "fmnist_backend" in out.stdout


# -- weight-format lookup order ----------------------------------------------------------


def test_format_lookup_order(tmp_path):
    from fmnist_core import WeightFormat, WeightsError, hookimpl
    from fmnist_core.io.formats import format_for

    class Formats:
        @hookimpl
        def fmnist_weight_formats(self):
            return [
                WeightFormat(
                    "rival-st", "claims .safetensors too", (".safetensors",), plugin="rival"
                ),
                WeightFormat("xyz-a", "", (".xyz",), plugin="a"),
                WeightFormat("xyz-b", "", (".xyz",), plugin="b"),
                WeightFormat("long", "", (".v2.xyz",), plugin="c"),
            ]

    manager = plugins.get_plugin_manager()
    plugin = Formats()
    manager.register(plugin, name="formats-test")
    try:
        assert (
            format_for(tmp_path / "w.safetensors").name == "safetensors"
        )  # neutral first on a tie
        assert format_for(tmp_path / "w.v2.xyz").name == "long"  # the longest suffix wins
        with pytest.raises(
            WeightsError, match=r"could be any of several formats: xyz-a \(a\), xyz-b \(b\)"
        ):
            format_for(tmp_path / "w.xyz")
        assert format_for(tmp_path / "w.xyz", "xyz-b").name == "xyz-b"
    finally:
        manager.unregister(plugin)


# -- renamed arguments -------------------------------------------------------------------


def test_old_names_are_refused_naming_the_setting(fake_backend):
    from fmnist_core.testing import synthetic_dataset

    with pytest.raises(ConfigError, match="validate"):
        Trainer(backend=fake_backend, validate=True, data=synthetic_dataset())


def test_old_cli_flags_are_gone(tmp_path):
    import contextlib
    import io

    from fmnist_core.cli import build_parser

    for flag in ("--validate", "--no-verify"):
        with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
            build_parser().parse_args(["train", flag])
