"""Guards for frameworks sharing one process, and TensorFlow's shared pieces: its import, its
threads, and the block of training steps both TF-based plugins (fmnist-tf, fmnist-keras) run."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


def block_triton_after_tensorflow() -> None:
    """Make ``import triton`` fail cleanly once TensorFlow is loaded.

    triton's native library segfaults when it is loaded after TensorFlow's (seen with torch 2.14
    and TensorFlow 2.21), and torch imports it lazily (``torch.optim``, ``torchvision.ops``,
    ``torch.compile``). With this guard torch sees no triton and uses its CPU paths instead of
    crashing the process. Called by the TensorFlow-based backends right after importing TF.
    """
    if "triton" not in sys.modules:
        sys.modules["triton"] = None  # import triton -> ImportError


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what native libraries print on file descriptor 2 inside the block.

    TensorFlow 2.21 prints start-up notes (oneDNN, CUDA drivers absent) before its logging is
    set up, ignoring ``TF_CPP_MIN_LOG_LEVEL``. If the block fails, what was printed is replayed,
    so a real import error is never hidden. ``FMNIST_NATIVE_LOGS=1`` turns this off.
    """
    if os.environ.get("FMNIST_NATIVE_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Import TensorFlow the way every fmnist backend on it must: quietly, then guarded.

    Its native start-up notes are captured (``quiet_native_stderr``), CUDA's probe included, and
    ``import triton`` is blocked afterwards (``block_triton_after_tensorflow``). Importing this
    module imports no framework; TensorFlow is imported here, on the first call.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # CUDA's probe prints too; it starts no runtime
    block_triton_after_tensorflow()
    return tf


def set_tensorflow_threads(threads: int | None) -> None:
    """Intra-op threads for TensorFlow's CPU kernels (None: leave TF's default).

    One thread measured fastest for the MLP on 2 cores (0.11 s/epoch against 0.16 s with TF's
    default). TF accepts this only before its runtime starts; in a process that already ran TF
    ops the current setting stays.
    """
    if threads:
        tf = import_tensorflow()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        except RuntimeError:
            pass


def tensorflow_train_block(forward, variables: list, names: list[str], slots: dict, optimizer):
    """The body of a TF engine's ``tf.function``: a block of optimizer steps over resident data.

    ``forward(x)`` gives training-mode logits; ``variables`` (``tf.Variable``, ``names`` their
    neutral names) are what the optimizer updates, ``slots[(slot, name)]`` its state variables.
    The loop counts with a tensor, not ``tf.range`` (XLA makes a Range's limit a compile-time
    constant); padding samples of a smaller last batch are masked out of loss and accuracy
    (``fmnist_core.iteration.pad_block``). Returns per-step losses and correct counts.
    """
    tf = import_tensorflow()

    def train_block(batches, scalars, steps, valid, images, labels):
        losses = tf.zeros([tf.shape(batches)[0]], tf.float32)
        correct = tf.zeros([tf.shape(batches)[0]], tf.int32)
        mask = tf.range(tf.shape(batches)[1]) < valid
        weights = tf.cast(mask, tf.float32) / tf.cast(valid, tf.float32)
        step = tf.constant(0)
        while step < steps:
            rows = batches[step]
            x = tf.cast(tf.gather(images, rows), tf.float32) / 255.0
            y = tf.gather(labels, rows)
            with tf.GradientTape() as tape:
                logits = forward(x)
                per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                loss = tf.reduce_sum(per_sample * weights)
            row = tf.unstack(scalars[step], num=len(optimizer.columns))
            for name, variable, grad in zip(names, variables, tape.gradient(loss, variables), strict=True):
                state = [slots[(slot, name)] for slot in optimizer.slots]
                new, new_state = optimizer.update(variable.read_value(), grad, [s.read_value() for s in state], row,
                                                  tf.sqrt)
                variable.assign(new)
                for target, value in zip(state, new_state, strict=True):
                    target.assign(value)
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y) & mask, tf.int32))
            losses = tf.tensor_scatter_nd_update(losses, [[step]], [loss])
            correct = tf.tensor_scatter_nd_update(correct, [[step]], [hits])
            step += 1
        return losses, correct

    return train_block
