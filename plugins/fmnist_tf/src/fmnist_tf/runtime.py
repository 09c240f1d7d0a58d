"""TensorFlow's runtime for the TF-based plugins (fmnist-tf, and fmnist-keras on Keras'
TensorFlow backend): its guarded import, its threads, XLA's choice, the data-parallel strategy,
and the block of training steps both run over resident data.

Importing this module imports no TensorFlow; ``import_tensorflow`` does, on the first call.
"""

from __future__ import annotations

import contextlib
import json
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
        sys.modules["triton"] = None  # type: ignore[assignment]  # import triton -> ImportError


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


def set_tensorflow_threads(threads: int | None, conv: bool = False, on_gpu: bool = False) -> None:
    """Intra-op threads for TensorFlow's CPU kernels; None picks what measured fastest here.

    Default: one thread for models without convolutions on the CPU (the MLP: 0.11 s/epoch against
    0.16 s with TF's default on 2 cores); for convolutions every core, shared between the
    workers that ``fmnist train --workers N`` started on this machine (``FMNIST_LOCAL_WORKERS``;
    cnn with 2 workers on 2 cores: 21.0 s/epoch with one thread each against 23.2 s with TF's
    default). TF accepts this only before its runtime starts; in a process that already ran TF
    ops the current setting stays.
    """
    if threads is None and not on_gpu:
        local = int(os.environ.get("FMNIST_LOCAL_WORKERS", "1") or 1)
        threads = 1 if not conv else (max(1, (os.cpu_count() or 1) // local) if local > 1 else None)
    if threads:
        tf = import_tensorflow()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        except RuntimeError:
            pass


def tensorflow_strategy(rank: int, world_size: int):
    """TensorFlow's ``MultiWorkerMirroredStrategy`` for this worker (None for one process).

    It reads the cluster from ``TF_CONFIG`` (``fmnist train --workers N`` writes one per local
    worker) and must be created before the process runs its first TensorFlow op.
    """
    if world_size == 1:
        return None
    from fmnist_core import BackendError
    from fmnist_core.plugin_api import port_in_use

    from .workers import tf_config_address

    config = os.environ.get("TF_CONFIG")
    if not config:
        raise BackendError(
            f"{world_size} workers asked for but TF_CONFIG is not set: TensorFlow trains "
            "data-parallel through MultiWorkerMirroredStrategy, which reads its cluster from "
            "TF_CONFIG",
            fix="launch with `fmnist train --backend tf --workers N`, or set TF_CONFIG on each "
            "worker",
        )
    address = tf_config_address(config)
    task = json.loads(config)["task"]
    port = int(address.rsplit(":", 1)[-1])
    if port_in_use(port):
        raise BackendError(
            f"port {port} of this worker's TF_CONFIG address {address!r} "
            f"({task['type']} {task['index']}) is already in use",
            fix="stop what listens there, or give this worker another port in TF_CONFIG",
        )
    tf = import_tensorflow()
    # no CommunicationOptions(timeout_seconds=…): TF enforces it with one sleeping thread per
    # collective op for the whole timeout, thousands of threads a second here until thread
    # creation fails ("Resource temporarily unavailable"); a lost peer is detected by the
    # coordination service's heartbeats instead (a frozen worker: the others stop in ~11 s)
    try:
        with quiet_native_stderr():
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:
        raise BackendError(
            f"MultiWorkerMirroredStrategy could not start: {exc}",
            fix="create the trainer before this process runs any TensorFlow op "
            "(`fmnist train --workers N` does)",
        ) from exc
    if strategy.num_replicas_in_sync != world_size:
        raise BackendError(
            f"TF_CONFIG's cluster has {strategy.num_replicas_in_sync} replicas, "
            f"{world_size} workers expected",
            fix="one CPU or GPU device per worker",
        )
    return strategy


def tensorflow_jit(wanted: bool | None, conv: bool, strategy) -> bool:
    """Whether to XLA-compile the block of steps: by default for models without convolutions
    (XLA's CPU convolutions measured 7× slower) in one process; never with workers on the CPU."""
    if wanted is None:
        return not conv and strategy is None
    if (
        wanted
        and strategy is not None
        and not import_tensorflow().config.list_physical_devices("GPU")
    ):
        from fmnist_core import BackendError

        raise BackendError(
            "jit_compile=True cannot run with workers on the CPU: TensorFlow's XLA has no CPU "
            "collectives (its error: 'Collectives are not yet implemented for CPU devices')",
            fix="drop jit_compile (data-parallel runs the graph without XLA)",
        )
    return bool(wanted)


def tensorflow_ops():
    """``ArrayOps`` over ``tf.Variable``s, for ``OptimizerSlots`` (inside a ``tf.function`` too)."""
    from fmnist_core.plugin_api import ArrayOps

    tf = import_tensorflow()
    return ArrayOps(
        zeros_like=lambda v: tf.Variable(tf.zeros_like(v), trainable=False),
        read=lambda v: v.read_value() if isinstance(v, tf.Variable) else v,
        write=lambda v, value: v.assign(value),
        sqrt=tf.sqrt,
        to_numpy=lambda v: v.numpy(),
        from_numpy=lambda a, like: a,
    )


def tensorflow_loss():
    """``LossOps`` over TensorFlow tensors, for the core's ``per_sample_loss``."""
    from fmnist_core.plugin_api import LossOps

    tf = import_tensorflow()
    return LossOps(
        logsumexp=lambda logits: tf.reduce_logsumexp(logits, axis=1),
        mean=lambda logits: tf.reduce_mean(logits, axis=1),
        pick=lambda logits, labels: tf.gather(logits, labels, axis=1, batch_dims=1),
    )


def tensorflow_train_block(
    forward, variables: list, slots, strategy=None, label_smoothing: float = 0.0
):
    """The body of a TF engine's ``tf.function``: a block of optimizer steps over resident data.

    ``forward(x)`` gives training-mode logits; ``variables`` (``tf.Variable``) are what the
    optimizer updates through ``slots`` (an ``OptimizerSlots`` made with ``tensorflow_ops``).
    The loop counts with a tensor, not ``tf.range`` (XLA makes a Range's limit a compile-time
    constant); padding samples of a smaller last batch are masked out of loss and accuracy
    (``fmnist_core.engine.batching.pad_block``). Each sample's loss is divided by ``total``, the
    global batch size. Data-parallel (``strategy``, see ``tensorflow_strategy``), each step runs
    in the strategy's replica context on this worker's shard and sums gradients, loss and hits
    across workers in one all-reduce (the engines synchronise BatchNorm's batch statistics, so
    every worker's running averages stay equal). ``label_smoothing`` as ``EngineConfig``'s.
    Returns per-step losses and correct counts.
    """
    from fmnist_core.plugin_api import per_sample_loss

    tf = import_tensorflow()
    ReduceOp = tf.distribute.ReduceOp
    columns = len(slots.optimizer.columns)

    def one_step(rows, row, weights, mask, images, labels):
        x = tf.cast(tf.gather(images, rows), tf.float32) / 255.0
        y = tf.gather(labels, rows)
        with tf.GradientTape() as tape:
            logits = forward(x)
            per_sample = per_sample_loss(logits, y, label_smoothing, tensorflow_loss())
            loss = tf.reduce_sum(per_sample * weights)
        grads = tape.gradient(loss, variables)
        hits = tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y) & mask, tf.float32)
        )
        if strategy is not None:
            grads, loss, hits = tf.distribute.get_replica_context().all_reduce(
                ReduceOp.SUM, (grads, loss, hits)
            )
        slots.apply(variables, grads, tf.unstack(row, num=columns))
        return loss, tf.cast(hits, tf.int32)

    def run(fn, *args):
        return fn(*args) if strategy is None else strategy.run(fn, args=args)

    def train_block(batches, scalars, steps, valid, total, images, labels):
        losses = tf.zeros([tf.shape(batches)[0]], tf.float32)
        correct = tf.zeros([tf.shape(batches)[0]], tf.int32)
        mask = tf.range(tf.shape(batches)[1]) < valid
        weights = tf.cast(mask, tf.float32) / tf.cast(total, tf.float32)
        step = tf.constant(0)
        while step < steps:
            loss, hits = run(one_step, batches[step], scalars[step], weights, mask, images, labels)
            losses = tf.tensor_scatter_nd_update(losses, [[step]], [loss])
            correct = tf.tensor_scatter_nd_update(correct, [[step]], [hits])
            step += 1
        return losses, correct

    return train_block


def tensorflow_train_steps(
    train, batches, scalars, largest: list[int], rank: int, world_size: int, images, labels
):
    """Call a ``tensorflow_train_block`` function on this worker's shard of a block of steps.

    ``largest`` is the engine's ``pad_block`` memory. Returns ``StepResult``.
    """
    import numpy as np

    from fmnist_core import StepResult
    from fmnist_core.plugin_api import pad_block, shard

    tf = import_tensorflow()
    total = batches.shape[1]
    mine = batches[:, shard(total, rank, world_size)]
    empty = mine.shape[1] == 0  # a short last batch with fewer samples than workers
    padded, scalars, steps, valid = pad_block(batches[:, :1] if empty else mine, scalars, largest)
    peer_errors = (
        (
            tf.errors.UnavailableError,
            tf.errors.DeadlineExceededError,
            tf.errors.AbortedError,
            tf.errors.CancelledError,
        )
        if world_size > 1
        else ()
    )
    try:
        losses, correct = train(
            tf.constant(padded, tf.int32),
            tf.constant(scalars),
            tf.constant(steps),
            tf.constant(0 if empty else valid),
            tf.constant(total),
            images,
            labels,
        )
    except peer_errors as exc:
        from fmnist_core.plugin_api import peer_failure, peer_reason

        reason = peer_reason(str(exc.message), type(exc).__name__)
        raise peer_failure(rank, world_size, reason) from exc
    return StepResult(losses.numpy()[:steps], correct.numpy()[:steps].astype(np.int64))
