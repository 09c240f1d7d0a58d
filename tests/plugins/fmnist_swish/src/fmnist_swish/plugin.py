"""Registers the ``Swish`` layer type, its torch lowering (with its text in ejected PyTorch
programs) and the ``fmnist swish`` command."""

from fmnist_core import Command, Lowerings, hookimpl


@hookimpl
def fmnist_layers():
    from .layer import Swish

    return [Swish]


@hookimpl
def fmnist_lowerings():
    return [Lowerings("torch", "fmnist_swish.torch_lowering")]


@hookimpl
def fmnist_commands():
    return [Command("swish", "print the Swish activation at -2, 0 and 2", "fmnist_swish.command")]
