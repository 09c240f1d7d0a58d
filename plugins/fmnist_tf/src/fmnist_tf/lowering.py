"""How fmnist-tf runs each layer type, and writes it in an ejected program: ``LOWERINGS``, its
lowering table.

A builder is ``build(layer, shape, ctx) -> callable`` (every backend's signature): the callable
applies the layer's ops to ``x`` (channels-last, the neutral layout, so no layout conversions),
for an input of neutral ``shape``. ``ctx`` is the
``SpecModule``: ``ctx.variable(name)`` gives a parameter by neutral name, ``ctx.training``,
``ctx.seed``, ``ctx.synchronized`` (data-parallel BatchNorm) and ``ctx.run(layers, x, shape)``
for a nested stack. Builders run while ``tf.function`` traces.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fmnist_core import LoweringTable
from fmnist_core.plugin_api import image_shape

from .runtime import import_tensorflow

tf: Any = import_tensorflow()

LOWERINGS = LoweringTable("tf")


def image(x):
    """(N, H, W) images get their channel axis."""
    return x[..., None] if len(x.shape) == 3 else x


@LOWERINGS.layer("Flatten")
def flatten(layer, shape, ctx):
    def apply(x):
        return tf.reshape(x, [-1, int(np.prod(shape))])

    return apply


@LOWERINGS.layer("Dense")
def dense(layer, shape, ctx):
    def apply(x):
        return tf.matmul(x, ctx.variable(f"{layer.name}.weight")) + ctx.variable(
            f"{layer.name}.bias"
        )

    return apply


@LOWERINGS.layer("ReLU")
def relu(layer, shape, ctx):
    def apply(x):
        return tf.nn.relu(x)

    return apply


@LOWERINGS.layer("GELU")
def gelu(layer, shape, ctx):
    def apply(x):
        return tf.nn.gelu(x, approximate=False)

    return apply


@LOWERINGS.layer("Conv2D")
def conv2d(layer, shape, ctx):
    def apply(x):
        x = tf.nn.conv2d(
            image(x), ctx.variable(f"{layer.name}.weight"), layer.stride, layer.padding.upper()
        )
        return x + ctx.variable(f"{layer.name}.bias")

    return apply


@LOWERINGS.layer("MaxPool2D")
def max_pool(layer, shape, ctx):
    def apply(x):
        return tf.nn.max_pool2d(image(x), layer.pool, layer.step, "VALID")

    return apply


@LOWERINGS.layer("GlobalAvgPool")
def global_avg_pool(layer, shape, ctx):
    def apply(x):
        return tf.reduce_mean(image(x), axis=[1, 2])

    return apply


@LOWERINGS.layer("Dropout")
def dropout(layer, shape, ctx):
    def apply(x):
        if not ctx.training or layer.rate == 0:
            return x
        ctx.dropout_draws.assign_add(1)
        seed = tf.stack([tf.constant(ctx.seed * 1000 + ctx.index, tf.int64), ctx.dropout_draws])
        keep = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed) >= layer.rate, x.dtype)
        return x * keep / (1 - layer.rate)

    return apply


@LOWERINGS.layer("BatchNorm")
def batch_norm(layer, shape, ctx):
    def apply(x):
        x = image(x) if len(shape) >= 2 else x
        gamma, beta = ctx.variable(f"{layer.name}.weight"), ctx.variable(f"{layer.name}.bias")
        mean_var, var_var = (
            ctx.variable(f"{layer.name}.running_mean"),
            ctx.variable(f"{layer.name}.running_var"),
        )
        if not ctx.training:
            return tf.nn.batch_normalization(x, mean_var, var_var, beta, gamma, layer.eps)
        # the statistics accumulate in float64: a float32 sum over N·H·W values drifts by ~1e-5
        wide = tf.cast(x, tf.float64)
        axes = list(range(len(x.shape) - 1))
        if (
            ctx.synchronized
        ):  # data-parallel: the statistics of the global batch, every worker's shard
            mean64, var64 = synchronized_moments(wide, axes)
        else:
            mean64 = tf.reduce_mean(wide, axis=axes)
            var64 = tf.reduce_mean(tf.square(wide - mean64), axis=axes)
        mean, var = tf.cast(mean64, x.dtype), tf.cast(var64, x.dtype)
        m = layer.momentum
        mean_var.assign((1 - m) * mean_var + m * tf.stop_gradient(mean))
        var_var.assign((1 - m) * var_var + m * tf.stop_gradient(var))
        return tf.nn.batch_normalization(x, mean, var, beta, gamma, layer.eps)

    return apply


def synchronized_moments(x, axes):
    """Mean and biased variance over ``axes`` of every worker's ``x`` (float64): the sums, squares
    and counts in one cross-replica all-reduce, whose gradient is again an all-reduce."""
    local = tf.concat(
        [
            tf.reduce_sum(x, axis=axes),
            tf.reduce_sum(tf.square(x), axis=axes),
            tf.reshape(tf.cast(tf.size(x) // tf.shape(x)[-1], x.dtype), [1]),
        ],
        axis=0,
    )
    sums = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)
    channels = tf.shape(x)[-1]
    mean = sums[:channels] / sums[-1]
    return mean, tf.maximum(sums[channels : 2 * channels] / sums[-1] - tf.square(mean), 0.0)


@LOWERINGS.layer("AvgPool2D")
def avg_pool(layer, shape, ctx):
    def apply(x):
        return tf.nn.avg_pool2d(image(x), layer.pool, layer.step, "VALID")

    return apply


@LOWERINGS.layer("Residual")
def residual(layer, shape, ctx):
    def apply(x):
        y = ctx.run(layer.body, x, shape)
        projection = layer.shortcut(shape)
        if projection is not None:
            return y + ctx.table.builder(projection)(projection, shape, ctx)(x)
        return y + (image(x) if len(y.shape) == 4 else x)

    return apply


# ---- each layer type as text in the program `fmnist eject --to tf` writes ----


def key(name: str) -> str:
    return name.replace(".", "__")


def _variable(lines, name: str, shape, trainable: bool = True) -> None:
    extra = "" if trainable else ", trainable=False"
    lines.init(f"self.params[{key(name)!r}] = tf.Variable(tf.zeros({tuple(shape)!r}){extra})")


def channels(shape) -> int:
    return image_shape(shape)[2] if len(shape) >= 2 else shape[0]


def _params(name: str) -> tuple[str, str]:
    return tuple(f"self.params[{key(f'{name}.{s}')!r}]" for s in ("weight", "bias"))  # type: ignore[return-value]


@LOWERINGS.text("Flatten")
def flatten_text(layer, shape, lines, x):
    lines.forward(f"{x} = tf.reshape({x}, [-1, {math.prod(shape)}])")


@LOWERINGS.text("Dense")
def dense_text(layer, shape, lines, x):
    _variable(lines, f"{layer.name}.weight", (shape[0], layer.units))
    _variable(lines, f"{layer.name}.bias", (layer.units,))
    w, b = _params(layer.name)
    lines.forward(f"{x} = tf.matmul({x}, {w}) + {b}")


@LOWERINGS.text("ReLU")
def relu_text(layer, shape, lines, x):
    lines.forward(f"{x} = tf.nn.relu({x})")


@LOWERINGS.text("GELU")
def gelu_text(layer, shape, lines, x):
    lines.forward(f"{x} = tf.nn.gelu({x}, approximate=False)")


@LOWERINGS.text("Conv2D")
def conv2d_text(layer, shape, lines, x):
    c = channels(shape)
    _variable(lines, f"{layer.name}.weight", (layer.kernel, layer.kernel, c, layer.filters))
    _variable(lines, f"{layer.name}.bias", (layer.filters,))
    w, b = _params(layer.name)
    top, bottom, left, right = layer.pads(shape)
    padding = (
        repr([[0, 0], [top, bottom], [left, right], [0, 0]])
        if top or bottom or left or right
        else '"VALID"'
    )
    lines.forward(f"{x} = tf.nn.conv2d({x}, {w}, strides={layer.stride}, padding={padding}) + {b}")


@LOWERINGS.text("MaxPool2D")
def max_pool_text(layer, shape, lines, x):
    lines.forward(f'{x} = tf.nn.max_pool2d({x}, {layer.pool}, {layer.step}, "VALID")')


@LOWERINGS.text("AvgPool2D")
def avg_pool_text(layer, shape, lines, x):
    lines.forward(f'{x} = tf.nn.avg_pool2d({x}, {layer.pool}, {layer.step}, "VALID")')


@LOWERINGS.text("GlobalAvgPool")
def global_avg_pool_text(layer, shape, lines, x):
    lines.forward(f"{x} = tf.reduce_mean({x}, axis=[1, 2])")


@LOWERINGS.text("BatchNorm")
def batch_norm_text(layer, shape, lines, x):
    c, name = channels(shape), layer.name
    _variable(lines, f"{name}.weight", (c,))
    _variable(lines, f"{name}.bias", (c,))
    _variable(lines, f"{name}.running_mean", (c,), trainable=False)
    _variable(lines, f"{name}.running_var", (c,), trainable=False)
    lines.needs.add("BatchNorm")
    lines.forward(
        f"{x} = self.batch_norm({x}, {key(name)!r}, training, "
        f"momentum={layer.momentum!r}, epsilon={layer.eps!r})"
    )


@LOWERINGS.text("Dropout")
def dropout_text(layer, shape, lines, x):
    lines.forward(f"{x} = tf.nn.dropout({x}, {layer.rate!r}) if training else {x}")


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
    lines.forward(f"{x} = {y} + {x}")
