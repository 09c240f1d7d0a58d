"""Registers the ``tf`` backend, its lowering table, the TF checkpoint and SavedModel formats and
the ``litert`` export target (no TF import here)."""

from __future__ import annotations

from pathlib import Path

from fmnist_core import (
    Backend,
    Ejections,
    EngineConfig,
    ExportTarget,
    Lowerings,
    Option,
    WeightFormat,
    hookimpl,
    load_on_call,
)

from .workers import TensorFlowWorkers


class TFBackend(TensorFlowWorkers, Backend):
    name = "tf"
    description = (
        "low-level TensorFlow: tf.Module variables, GradientTape, tf.function (GPU when seen)"
    )
    priority = 20
    requires = ("tensorflow",)
    options = (
        Option(
            "device",
            str,
            "auto",
            "where to train: 'auto' takes a GPU when TensorFlow sees one, else the CPU",
            choices=("auto", "cpu", "gpu", "cuda"),
            pattern=r"(/GPU:|cuda:)\d+",
        ),
        Option(
            "jit_compile",
            bool,
            None,
            "XLA-compile each block of steps (default: on, off for models with "
            "Conv2D, whose XLA CPU kernels are slow: BENCHMARKS.md)",
        ),
        Option(
            "threads",
            int,
            None,
            "TensorFlow's intra-op threads (default 1 on the CPU for models without "
            "convolutions, every core for convolutions, shared by local --workers)",
        ),
    )

    def create_engine(self, config: EngineConfig):
        from .engine import TFEngine

        return TFEngine(config)


def _is_savedmodel(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def _is_checkpoint(path: Path) -> bool:
    return (
        path.name.endswith(".ckpt")
        or path.name.endswith(".index")
        or Path(f"{path}.index").is_file()
    )


SAVEDMODEL = WeightFormat(
    name="savedmodel",
    description="TF2 SavedModel folder with a serving signature; read from its variables, never "
    "executed",
    suffixes=(".savedmodel",),
    read=load_on_call("fmnist_tf.formats", "read_savedmodel"),
    write=load_on_call("fmnist_tf.formats", "write_savedmodel"),
    matches=_is_savedmodel,
    plugin="fmnist_tf",
)
CHECKPOINT = WeightFormat(
    name="tf-checkpoint",
    description="tf.train.Checkpoint of the variables (the article's w1, b1, w2, b2 for the mlp; "
    "PATH.ckpt → PATH.ckpt.index + data)",
    suffixes=(".ckpt",),
    read=load_on_call("fmnist_tf.formats", "read_checkpoint"),
    write=load_on_call("fmnist_tf.formats", "write_checkpoint"),
    matches=_is_checkpoint,
    plugin="fmnist_tf",
)


@hookimpl
def fmnist_backends():
    return [TFBackend()]


@hookimpl
def fmnist_lowerings():
    return [Lowerings("tf", "fmnist_tf.lowering")]


@hookimpl
def fmnist_ejections():
    return [Ejections("tf", "fmnist_tf.ejection")]


@hookimpl
def fmnist_weight_formats():
    return [SAVEDMODEL, CHECKPOINT]


LITERT = ExportTarget(
    name="litert",
    description="a LiteRT (TensorFlow Lite) model (.tflite): uint8 images in; logits, "
    "probabilities, class_index out; run by the LiteRT interpreter",
    suffix=".tflite",
    runtime="LiteRT",
    write=load_on_call("fmnist_tf.exports", "write"),
    load=load_on_call("fmnist_tf.exports", "load"),
    read_metadata=load_on_call("fmnist_tf.exports", "read_metadata"),
    stamp=load_on_call("fmnist_tf.exports", "stamp"),
    plugin="fmnist_tf",
    requires=("tensorflow",),
)


@hookimpl
def fmnist_export_targets():
    return [LITERT]
