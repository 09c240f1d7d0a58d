"""Minimal hand-written fast loops, one per framework, to measure what fmnist's core costs on
top of the same step written by hand; and the physical floor (gather + two matmuls per batch).

Each returns (epoch_seconds, train_seconds, test_accuracy).
"""

from __future__ import annotations

import os
import time

import numpy as np

EPOCHS, BATCH, LR = 5, 64, np.float32(0.1)


def glorot(rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


def initial():
    rng = np.random.default_rng(0)
    return (
        glorot(rng, 784, 20),
        np.zeros(20, np.float32),
        glorot(rng, 20, 10),
        np.zeros(10, np.float32),
    )


def orders(n):
    rng = np.random.default_rng(1)
    return [rng.permutation(n) for _ in range(EPOCHS)]


def floor(data):
    """The arithmetic a step cannot avoid, in plain NumPy/BLAS: each epoch's images gathered
    once into a contiguous copy in the epoch's order, then per batch the conversion to floats,
    the two forward products and the first layer's weight gradient (a 784×batch by batch×20
    product, as large as the first forward one). No softmax, no other gradient, no update."""
    train_x, _, _, _ = data
    flat = np.ascontiguousarray(train_x).reshape(len(train_x), 784)
    w1, _, w2, _ = initial()
    x = np.empty((BATCH, 784), np.float32)
    grad = np.empty_like(w1)
    seconds = []
    from threadpoolctl import threadpool_limits

    # one BLAS thread: faster for products this small (fmnist's NumPy engine chooses it too)
    with threadpool_limits(1):
        _floor_epochs(flat, w1, w2, x, grad, seconds)
    return seconds, sum(seconds), float("nan")


def _floor_epochs(flat, w1, w2, x, grad, seconds) -> None:
    for order in orders(len(flat)):
        t0 = time.perf_counter()
        epoch = np.take(flat, order, axis=0)
        for start in range(0, len(order) - BATCH + 1, BATCH):
            np.divide(epoch[start : start + BATCH], np.float32(255), out=x)
            hidden = x @ w1
            hidden @ w2
            np.matmul(x.T, hidden, out=grad)
        seconds.append(time.perf_counter() - t0)


def torch_loop(data):
    """The fused SGD step by hand, a block of 100 batches gathered at once, the logits kept for
    the block's loss and accuracy, which stay on the device and are read once per epoch."""
    import torch

    train_x, train_y, test_x, test_y = data
    images = torch.from_numpy(np.array(train_x).reshape(-1, 784))
    labels = torch.from_numpy(np.asarray(train_y, np.int64))
    w1, b1, w2, b2 = (torch.from_numpy(np.ascontiguousarray(a)) for a in initial())
    w1, w2 = w1.t().contiguous(), w2.t().contiguous()  # (out, in) as nn.Linear
    seconds, block = [], 100
    with torch.no_grad():
        for order in orders(len(labels)):
            t0 = time.perf_counter()
            loss_sum, hits = torch.zeros(()), torch.zeros((), dtype=torch.int64)
            full = len(order) // BATCH * BATCH
            chunks = [
                order[s : min(s + block * BATCH, full)].reshape(-1, BATCH)
                for s in range(0, full, block * BATCH)
            ]
            chunks.append(order[full:].reshape(1, -1))
            for chunk in chunks:
                index = torch.from_numpy(chunk)
                xs = (
                    images.index_select(0, index.reshape(-1))
                    .to(torch.float32)
                    .div_(255.0)
                    .view(*index.shape, -1)
                )
                ys = labels.index_select(0, index.reshape(-1)).view(index.shape)
                one_hot = torch.nn.functional.one_hot(ys, 10).to(torch.float32)
                seen = torch.empty(*index.shape, 10)
                step_size = 0.1 / index.shape[1]
                for step in range(len(index)):
                    x = xs[step]
                    hidden = torch.addmm(b1, x, w1.t()).relu_()
                    logits = torch.addmm(b2, hidden, w2.t(), out=seen[step])
                    grad = torch.softmax(logits, dim=1).sub_(one_hot[step])
                    grad_hidden = torch.ops.aten.threshold_backward(grad.mm(w2), hidden, 0)
                    w2.addmm_(grad.t(), hidden, alpha=-step_size)
                    b2.sub_(grad.sum(dim=0), alpha=step_size)
                    w1.addmm_(grad_hidden.t(), x, alpha=-step_size)
                    b1.sub_(grad_hidden.sum(dim=0), alpha=step_size)
                loss_sum += torch.nn.functional.cross_entropy(
                    seen.view(-1, 10), ys.view(-1), reduction="sum"
                )
                hits += (seen.argmax(2) == ys).sum()
            float(loss_sum), int(hits)  # the epoch's metrics, read once
            seconds.append(time.perf_counter() - t0)
        x = torch.from_numpy(np.array(test_x).reshape(-1, 784)).to(torch.float32) / 255.0
        predicted = torch.addmm(b2, torch.addmm(b1, x, w1.t()).relu_(), w2.t()).argmax(1).numpy()
    return seconds, sum(seconds), float((predicted == test_y).mean())


def tf_loop(data, keras_model=False):
    """One XLA-compiled tf.function per epoch (GradientTape, SGD), loss and accuracy summed in
    the graph; one intra-op thread, as fmnist-tf uses on CPU."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    train_x, train_y, test_x, test_y = data
    images = tf.constant(np.asarray(train_x).reshape(-1, 784))
    labels = tf.constant(np.asarray(train_y, np.int32))
    if keras_model:
        import keras

        model = keras.Sequential(
            [keras.Input((784,)), keras.layers.Dense(20, activation="relu"), keras.layers.Dense(10)]
        )
        model.set_weights(list(initial()))
        optimizer = keras.optimizers.SGD(0.1)
        variables = model.trainable_variables

        def forward(x):
            return model(x, training=True)

        def update(grads):
            optimizer.apply(grads, variables)
    else:
        variables = [tf.Variable(a) for a in initial()]

        def forward(x):
            return (
                tf.matmul(tf.nn.relu(tf.matmul(x, variables[0]) + variables[1]), variables[2])
                + variables[3]
            )

        def update(grads):
            for v, g in zip(variables, grads, strict=True):
                v.assign_sub(0.1 * g)

    @tf.function(jit_compile=True)
    def epoch(batches):
        loss_sum, hits = tf.constant(0.0), tf.constant(0)
        for step in tf.range(tf.shape(batches)[0]):
            rows = batches[step]
            x = tf.cast(tf.gather(images, rows), tf.float32) / 255.0
            y = tf.gather(labels, rows)
            with tf.GradientTape() as tape:
                logits = forward(x)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            update(tape.gradient(loss, variables))
            loss_sum += loss * tf.cast(tf.shape(rows)[0], tf.float32)
            hits += tf.reduce_sum(
                tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.int32)
            )
        return loss_sum, hits

    seconds = []
    for order in orders(len(train_y)):
        t0 = time.perf_counter()
        full = len(order) // BATCH * BATCH
        metrics = [
            epoch(tf.constant(order[:full].reshape(-1, BATCH), tf.int32)),
            epoch(tf.constant(order[full:].reshape(1, -1), tf.int32)),
        ]
        [(float(a), int(b)) for a, b in metrics]  # the epoch's metrics, read once
        seconds.append(time.perf_counter() - t0)
    logits = forward(tf.constant(np.asarray(test_x).reshape(-1, 784), tf.float32) / 255.0)
    return seconds, sum(seconds), float((np.argmax(np.asarray(logits), 1) == test_y).mean())


def run(name, data):
    if name == "floor":
        return floor(data)
    if name == "handwritten-torch":
        return torch_loop(data)
    if name == "handwritten-tf":
        return tf_loop(data)
    if name == "handwritten-keras":
        return tf_loop(data, keras_model=True)
    raise SystemExit(f"unknown program {name}")
