"""Registers the built-in commands of ``fmnist`` (one module each in ``fmnist_core.cli``)."""

from ..hookspecs import hookimpl
from ..plugins import Command

COMMANDS = (
    ("backends", "list installed backends and plugins that failed to load"),
    ("info", "where the data is, cache folder, versions"),
    ("models", "list the model recipes with their parameter counts"),
    ("layers", "list the layer types and which backends lower each"),
    ("train", "train, evaluate and save a model into a run folder"),
    ("compare", "train one recipe on every installed backend, side by side"),
    ("evaluate", "evaluate a weights file on the test set"),
    ("predict", "classify images or folders of images"),
    ("report", "(re)draw a run folder's pictures; several runs: a comparison"),
    ("sample", "write dataset images as PNG files (and labels.csv) into a folder"),
    ("tune", "a hyper-parameter sweep on Ray Tune (needs fmnist-core[tune])"),
    ("serve", "serve a model over HTTP (POST /predict; needs fmnist-core[serve])"),
    ("eject", "the model and its recipe as plain PyTorch, TensorFlow and Keras programs"),
    ("export", "a deployable artifact, gated on parity (--list: the installed targets)"),
    ("convert", "convert weights between formats (any installed plugin's)"),
)


@hookimpl
def fmnist_commands():
    return [Command(name, help, f"fmnist_core.cli.{name}") for name, help in COMMANDS]
