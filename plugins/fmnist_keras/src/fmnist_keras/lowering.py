"""How fmnist-keras builds each layer type, and writes it in an ejected program: ``LOWERINGS``,
its lowering table.

A builder is ``build(layer, shape, ctx) -> callable`` (every backend's signature): the callable
(a Keras layer, or a function of Keras layers) takes the symbolic ``x`` (channels-last, the
neutral layout: no layout conversions) of neutral ``shape`` to the layer's output.
``ctx`` is a ``BuildContext``: ``ctx.keras``, ``ctx.seed``, ``ctx.index``, ``ctx.batch_norm``
(the BatchNormalization class to use), ``ctx.synchronized`` and ``ctx.run(layers, x, shape)`` for
a nested stack. A Keras layer that holds parameters is named ``keras_name(layer.name)``
(``conv1``, ``res1__conv1``: Keras on torch makes the names torch parameter names, which cannot
hold dots), and its fmnist layer's ``ParamSpec``s list its weights in Keras' order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fmnist_core import LoweringTable

LOWERINGS = LoweringTable("keras")


def keras_name(name: str) -> str:
    """The Keras layer name of an fmnist layer (``res1.conv1`` → ``res1__conv1``)."""
    return name.replace(".", "__")


@dataclass
class BuildContext:
    keras: Any
    seed: int
    batch_norm: Any
    table: LoweringTable  # this one and every plugin's lowerings for keras
    synchronized: bool = False
    index: int = 0

    def run(self, layers, x, shape):
        return self.table.apply(layers, x, shape, self)


def build_model(spec, seed: int = 0, training: bool = False, synchronized: bool = False):
    """A functional ``keras.Model`` of ``spec``, Keras' own layers named after the neutral names.

    ``training=True`` (the engine's model) swaps in a BatchNormalization with float64 batch
    statistics, ``synchronized`` across data-parallel workers; files are written from Keras' own
    layers, so plain Keras loads them.
    """
    import keras

    from fmnist_core.plugin_api import lowering_table

    table = lowering_table("keras")  # this table and the plugins' lowerings for keras
    for layer in spec.walk():
        table.builder(layer)  # a missing lowering fails here, naming the layer type
    batch_norm = (
        precise_batch_norm(keras)
        if training and keras.backend.backend() != "jax"
        else keras.layers.BatchNormalization
    )
    inputs = keras.Input(shape=spec.input_shape)
    x = (
        inputs
        if spec.layers[0].kind == "Flatten"
        else keras.layers.Reshape((*spec.input_shape, 1))(inputs)
    )
    shape = spec.input_shape if spec.layers[0].kind == "Flatten" else (*spec.input_shape, 1)
    outputs = BuildContext(keras, seed, batch_norm, table, synchronized).run(spec.layers, x, shape)
    return keras.Model(inputs, outputs, name=f"fmnist_{spec.name}")


def precise_batch_norm(keras):
    """Keras' BatchNormalization with its batch statistics accumulated in float64 (a float32 sum
    over N·H·W values drifts by ~1e-5, enough to leave the NumPy reference after 20 steps)."""

    class PreciseBatchNormalization(keras.layers.BatchNormalization):
        def _moments(self, inputs, mask):
            if mask is not None:
                return super()._moments(inputs, mask)
            mean, variance = keras.ops.moments(
                keras.ops.cast(inputs, "float64"),
                axes=self._reduction_axes,
                synchronized=self.synchronized,
            )
            return keras.ops.cast(mean, inputs.dtype), keras.ops.cast(variance, inputs.dtype)

    return PreciseBatchNormalization


@LOWERINGS.layer("Flatten")
def flatten(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.Flatten()(x)

    return apply


@LOWERINGS.layer("Dense")
def dense(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.Dense(layer.units, name=keras_name(layer.name))(x)

    return apply


@LOWERINGS.layer("Conv2D")
def conv2d(layer, shape, ctx):
    strided_pointwise = layer.kernel == 1 and layer.stride > 1

    def apply(x):
        if strided_pointwise:
            # The strided pixels, then a 1×1 convolution: the same products. On Keras' torch
            # backend a strided 1×1 convolution's weight gradient is wrong on AVX2-only CPUs
            # (torch 2.14's oneDNN, 2-7 input channels, Keras' NHWC tensors being channels-last
            # to torch); a 1×1 pooling with the stride picks the same pixels on every backend.
            x = ctx.keras.layers.AveragePooling2D(1, strides=layer.stride)(x)
        return ctx.keras.layers.Conv2D(
            layer.filters,
            layer.kernel,
            strides=1 if strided_pointwise else layer.stride,
            padding=layer.padding,
            name=keras_name(layer.name),
        )(x)

    return apply


@LOWERINGS.layer("MaxPool2D")
def max_pool(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.MaxPooling2D(layer.pool, strides=layer.step)(x)

    return apply


@LOWERINGS.layer("ReLU")
def relu(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.ReLU()(x)

    return apply


@LOWERINGS.layer("GELU")
def gelu(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.Activation("gelu")(x)  # Keras' gelu is exact (erf) by default

    return apply


@LOWERINGS.layer("BatchNorm")
def batch_norm(layer, shape, ctx):  # Keras' momentum is the share of the old statistics
    return ctx.batch_norm(  # a Keras layer is itself the callable a builder returns
        momentum=1 - layer.momentum,
        epsilon=layer.eps,
        name=keras_name(layer.name),
        **({"synchronized": True} if ctx.synchronized else {}),
    )


@LOWERINGS.layer("Dropout")
def dropout(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.Dropout(layer.rate, seed=ctx.seed * 1000 + ctx.index)(x)

    return apply


@LOWERINGS.layer("GlobalAvgPool")
def global_avg_pool(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.GlobalAveragePooling2D()(x)

    return apply


@LOWERINGS.layer("AvgPool2D")
def avg_pool(layer, shape, ctx):
    def apply(x):
        return ctx.keras.layers.AveragePooling2D(layer.pool, strides=layer.step)(x)

    return apply


@LOWERINGS.layer("Residual")
def residual(layer, shape, ctx):
    def apply(x):
        y = ctx.run(layer.body, x, shape)
        projection = layer.shortcut(shape)
        shortcut = ctx.table.builder(projection)(projection, shape, ctx)(x) if projection else x
        return ctx.keras.layers.Add()([y, shortcut])

    return apply


# ---- each layer type as text in the program `fmnist eject --to keras` writes ----


def _named(layer) -> str:
    return f", name={keras_name(layer.name)!r}" if layer.name else ""


def _applies(call):
    """A writer of a layer applied as one Keras layer: ``call(layer)`` is its constructor."""

    def write(layer, shape, lines, x):
        lines.forward(f"{x} = {call(layer)}({x})")

    return write


LOWERINGS.text("Flatten")(_applies(lambda layer: "keras.layers.Flatten()"))
LOWERINGS.text("Dense")(_applies(lambda layer: f"keras.layers.Dense({layer.units}{_named(layer)})"))
LOWERINGS.text("ReLU")(_applies(lambda layer: "keras.layers.ReLU()"))
LOWERINGS.text("GELU")(_applies(lambda layer: "keras.layers.Activation('gelu')"))
LOWERINGS.text("Conv2D")(
    _applies(
        lambda layer: (
            f"keras.layers.Conv2D({layer.filters}, {layer.kernel}, strides={layer.stride}, "
            f"padding={layer.padding!r}{_named(layer)})"
        )
    )
)
LOWERINGS.text("MaxPool2D")(
    _applies(lambda layer: f"keras.layers.MaxPooling2D({layer.pool}, strides={layer.step})")
)
LOWERINGS.text("AvgPool2D")(
    _applies(lambda layer: f"keras.layers.AveragePooling2D({layer.pool}, strides={layer.step})")
)
LOWERINGS.text("GlobalAvgPool")(_applies(lambda layer: "keras.layers.GlobalAveragePooling2D()"))
LOWERINGS.text("BatchNorm")(  # Keras' momentum is the share of the old statistics
    _applies(
        lambda layer: (
            f"keras.layers.BatchNormalization(momentum={1 - layer.momentum!r}, "
            f"epsilon={layer.eps!r}{_named(layer)})"
        )
    )
)
LOWERINGS.text("Dropout")(_applies(lambda layer: f"keras.layers.Dropout({layer.rate!r})"))


@LOWERINGS.text("Residual")
def residual_text(layer, shape, lines, x):
    y = f"y{lines.depth}"
    lines.forward(f"{y} = {x}  # {layer.name}: a residual block")
    lines.depth += 1
    lines.stack(layer.body, shape, y)
    lines.depth -= 1
    projection = layer.shortcut(shape)
    if projection is not None:
        lines.stack([projection], shape, x)
    lines.forward(f"{x} = keras.layers.Add()([{y}, {x}])")
