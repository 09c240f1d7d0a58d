"""Keras on TensorFlow: a whole block of steps in one ``tf.function`` (fmnist-tf's runtime)."""

from __future__ import annotations

import numpy as np

from fmnist_core.plugin_api import OptimizerSlots

from .engine import KerasEngine, tensorflow_runtime


class KerasTFEngine(KerasEngine):
    def __init__(self, config, keras):
        runtime = tensorflow_runtime()
        tf = runtime.import_tensorflow()
        # before the model is built: TF takes a thread count only before its runtime starts
        conv = config.model.has_capability("convolution")
        runtime.set_tensorflow_threads(
            config.options.get("threads"), conv, bool(tf.config.list_physical_devices("GPU"))
        )
        self.rank, self.world_size = config.rank, config.world_size
        self.strategy = runtime.tensorflow_strategy(
            self.rank, self.world_size
        )  # before any TF op runs
        super().__init__(config, keras)
        self.tf, self.runtime = tf, runtime
        tensors = [v.value for v in self.variables]  # the Keras variables' own tf.Variables
        self.slots = OptimizerSlots(
            self.optimizer, self.spec.trainable(), tensors, runtime.tensorflow_ops()
        )
        self._largest_block = [0, 0]
        jit = runtime.tensorflow_jit(config.options.get("jit_compile"), conv, self.strategy)
        block = runtime.tensorflow_train_block(
            lambda x: tf.cast(self.model(x, training=True), tf.float32),
            tensors,
            self.slots,
            self.strategy,
            config.label_smoothing,
        )
        self._train = tf.function(block, jit_compile=jit, reduce_retracing=True)
        # inference: one graph for any batch size; XLA would compile once per shape for no gain
        self._forward = tf.function(
            lambda x: tf.cast(
                self.model(tf.cast(x, tf.float32) / 255.0, training=False), tf.float32
            ),
            input_signature=[tf.TensorSpec([None, *self.spec.input_shape], tf.uint8)],
        )

    def attach(self, images, labels):
        tf = self.tf
        self.images = tf.constant(np.asarray(images, np.uint8))
        self.labels = tf.constant(np.asarray(labels, np.int32))

    def train_steps(self, batches, scalars):
        self.require_attached()
        return self.runtime.tensorflow_train_steps(
            self._train,
            batches,
            scalars,
            self._largest_block,
            self.rank,
            self.world_size,
            self.images,
            self.labels,
        )

    def logits(self, images):
        return (
            self._forward(self.tf.constant(np.asarray(images, np.uint8)))
            .numpy()
            .astype(np.float32, copy=False)
        )
