"""fmnist-tf's ejection table: the low-level TensorFlow program ``fmnist eject --to tf`` writes
(variables, ``tf.GradientTape`` and ``tf.function``, as the article's TensorFlow code) around its
layers, whose texts are in the lowering table (``lowering.py``, beside each layer's ops)."""

from __future__ import annotations

from fmnist_core.plugin_api import (
    EjectionTable,
    block,
    escaped,
    keras_loss,
    keras_optimizer,
)

EJECTION = EjectionTable(
    "tf",
    title="TensorFlow",
    weights_format="tf-checkpoint",
    initial="initial.ckpt",
    weights="weights.ckpt",
)

IMPORTS = """import argparse
import gzip
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # tf.keras' optimizers on TensorFlow

import numpy as np
import tensorflow as tf
from PIL import Image
"""


BATCH_NORM = block(
    '''
    def batch_norm(self, x: tf.Tensor, name: str, training: bool, momentum: float,
                   epsilon: float) -> tf.Tensor:
        """Normalised by the batch's mean and biased variance in training, which also move the
        running averages (running = (1 - momentum) · running + momentum · batch)."""
        scale, shift = self.params[name + "__weight"], self.params[name + "__bias"]
        running_mean, running_var = self.params[name + "__running_mean"], self.params[name + "__running_var"]
        if training:
            mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
            running_mean.assign((1 - momentum) * running_mean + momentum * mean)
            running_var.assign((1 - momentum) * running_var + momentum * variance)
        else:
            mean, variance = running_mean, running_var
        return tf.nn.batch_normalization(x, mean, variance, shift, scale, epsilon)
    '''
)


def network(spec, lines) -> str:
    if spec.name == "mlp" and spec.is_two_layer_perceptron():
        hidden = spec.layers[1].units
        return block(
            f"""
            class NeuralNetwork(tf.Module):
                def __init__(self):
                    super().__init__()
                    initializer = tf.keras.initializers.GlorotUniform()
                    self.W1 = tf.Variable(initializer(shape=(784, {hidden})))
                    self.b1 = tf.Variable(tf.zeros(shape=({hidden},)))
                    self.W2 = tf.Variable(initializer(shape=({hidden}, 10)))
                    self.b2 = tf.Variable(tf.zeros(shape=(10,)))

                def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
                    x = tf.reshape(x, [-1, 784])
                    x = tf.matmul(x, self.W1) + self.b1
                    x = tf.nn.relu(x)
                    x = tf.matmul(x, self.W2) + self.b2
                    return x

                def checkpoint(self) -> tf.train.Checkpoint:
                    return tf.train.Checkpoint(w1=self.W1, b1=self.b1, w2=self.W2, b2=self.b2)
            """
        )
    lines.stack(spec.layers, (*spec.input_shape, 1))
    init = "\n".join("        " + line for line in lines.inits)
    forward = "\n".join("        " + line for line in lines.forwards)
    helper = (
        "\n" + "\n".join("    " + line if line else "" for line in BATCH_NORM.splitlines())
        if lines.needs
        else ""
    )
    return (
        "class NeuralNetwork(tf.Module):\n"
        f'    """fmnist\'s {escaped(spec.name)}: {escaped(spec.description)}. Its variables are named as fmnist\n'
        '    names them (conv1.weight → conv1__weight), in the same layouts."""\n\n'
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.params = {}\n"
        f"{init}\n\n"
        "    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:\n"
        "        x = tf.expand_dims(x, -1)  # (n, 28, 28, 1): channels last\n"
        f"{forward}\n"
        "        return x\n"
        f"{helper}\n\n"
        "    def checkpoint(self) -> tf.train.Checkpoint:\n"
        "        return tf.train.Checkpoint(**self.params)\n"
    )


TRAINING = block(
    """
    def as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
        return (tf.constant(images.astype(np.float32) / np.float32(255.0)), tf.constant(labels.astype(np.int64)))


    def weights_of(model: tf.Module) -> dict:
        return {v.name + str(i): v.numpy() for i, v in enumerate(model.variables)}


    def set_weights(model: tf.Module, weights: dict) -> None:
        for i, v in enumerate(model.variables):
            v.assign(weights[v.name + str(i)])


    @tf.function
    def fit_one_batch(X: tf.Tensor, y: tf.Tensor, model: tf.Module, loss_fn: tf.keras.losses.Loss,
                      optimizer: tf.keras.optimizers.Optimizer) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            y_prime = model(X, training=True)
            loss = LOSS_CALL
        grads = tape.gradient(loss, model.trainable_variables)
        GRADS_LINEoptimizer.apply_gradients(zip(grads, model.trainable_variables))
        return (y_prime, loss)


    def fit(epoch: int, step: int, data, draws, model: tf.Module, loss_fn: tf.keras.losses.Loss,
            optimizer: tf.keras.optimizers.Optimizer, average, args, losses: list) -> int:
        batch_count = STEPS_PER_EPOCH
        full_batches = len(draws["order"][epoch]) // BATCH_SIZE
        loss_sum = 0
        correct_item_count = 0
        current_item_count = 0
        print_every = 100
        since_average = 0
        for batch_index, (images, labels) in enumerate(batches_of(epoch, *data, draws)):
            optimizer.learning_rate.assign(learning_rate(step))
            (X, y) = as_tensors(images, labels)
            (y_prime, loss) = fit_one_batch(X, y, model, loss_fn, optimizer)
            step += 1
            losses.append(float(loss.numpy()))
            if average is not None:
                since_average += 1
                if since_average == EMA_EVERY or batch_index + 1 in (full_batches, batch_count):
                    average.update(weights_of(model), since_average)
                    since_average = 0
            correct_item_count += (tf.math.argmax(y_prime, axis=1) == y).numpy().sum()
            batch_loss = loss.numpy()
            loss_sum += batch_loss
            current_item_count += len(X)
            if ((batch_index + 1) % print_every == 0) or ((batch_index + 1) == batch_count):
                batch_accuracy = correct_item_count / current_item_count * 100
                print(f'[Batch {batch_index + 1:>3d} - {current_item_count:>5d} items] accuracy: {batch_accuracy:>0.1f}%, loss: {batch_loss:>7f}')
            if args.steps and step >= args.steps:
                break
        return step


    @tf.function
    def evaluate_one_batch(X: tf.Tensor, y: tf.Tensor, model: tf.Module,
                           loss_fn: tf.keras.losses.Loss) -> tuple[tf.Tensor, tf.Tensor]:
        y_prime = model(X, training=False)
        if TTA:
            y_prime = (y_prime + model(tf.reverse(X, axis=[2]), training=False)) / 2
        loss = loss_fn(y, y_prime)
        return (y_prime, loss)


    def evaluate(images: np.ndarray, labels: np.ndarray, model: tf.Module,
                 loss_fn: tf.keras.losses.Loss) -> tuple[float, float]:
        batch_count = 0
        loss_sum = 0
        correct_item_count = 0
        current_item_count = 0
        for start in range(0, len(images), 1000):
            (X, y) = as_tensors(images[start : start + 1000], labels[start : start + 1000])
            (y_prime, loss) = evaluate_one_batch(X, y, model, loss_fn)
            correct_item_count += (tf.math.argmax(y_prime, axis=1).numpy() == y.numpy()).sum()
            loss_sum += loss.numpy()
            current_item_count += len(X)
            batch_count += 1
        average_loss = loss_sum / batch_count
        accuracy = correct_item_count / current_item_count
        return (average_loss, accuracy)


    def training_phase(args: argparse.Namespace) -> None:
        (training, (test_images, test_labels)) = get_data(args.data)
        draws = dict(np.load(HERE / "batches.npz"))
        if args.epochs > len(draws["order"]):
            raise SystemExit(f"batches.npz holds {len(draws['order'])} epochs; pass --epochs up to that")
        model = NeuralNetwork()
        model.checkpoint().read(str(HERE / "initial.ckpt")).assert_existing_objects_matched()
        loss_fn = LOSS_FN
        optimizer = OPTIMIZER_LINE
        average = WeightAverage(weights_of(model)) if EMA_DECAY else None
        print('\\nFitting:')
        (step, losses) = (0, [])
        for epoch in range(args.epochs):
            print(f'\\nEpoch {epoch + 1}\\n-------------------------------')
            step = fit(epoch, step, training, draws, model, loss_fn, optimizer, average, args, losses)
            if args.steps and step >= args.steps:
                break
        if args.losses:
            args.losses.write_text(json.dumps(losses))
        if average is not None:  # the average is what fmnist evaluates and saves
            set_weights(model, average.values)
        print('\\nEvaluating:')
        test_loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        (test_loss, test_accuracy) = evaluate(test_images, test_labels, model, test_loss_fn)
        print(f'Test accuracy: {test_accuracy * 100:>0.1f}%, test loss: {test_loss:>8f}')
        args.out.mkdir(parents=True, exist_ok=True)
        model.checkpoint().write(str(args.out / 'weights.ckpt'))


    @tf.function
    def predict(model: tf.Module, X: np.ndarray) -> tf.Tensor:
        y_prime = model(X, training=False)
        probabilities = tf.nn.softmax(y_prime, axis=1)
        predicted_indices = tf.math.argmax(input=probabilities, axis=1)
        return predicted_indices


    def inference_phase(args: argparse.Namespace) -> None:
        model = NeuralNetwork()
        model.checkpoint().read(str(args.out / 'weights.ckpt')).assert_existing_objects_matched()
        if args.predict is None:  # nothing to predict: the weights were read back
            return
        print('\\nPredicting:')
        with Image.open(args.predict) as image:
            X = np.asarray(image.convert('L')).reshape((-1, 28, 28)) / 255.0
        predicted_index = predict(model, tf.constant(X, tf.float32)).numpy()[0]
        predicted_name = labels_map[predicted_index]
        print(f'Predicted class: {predicted_name}')
    """
)


@EJECTION.program
def program(spec, config, lines) -> dict[str, str]:
    loss_fn, loss_call = keras_loss(config, "tf.keras")
    decay = config.optimizer.weight_decay and config.optimizer.kind != "adamw"
    grads = (
        "grads = [g + WEIGHT_DECAY * v for g, v in zip(grads, model.trainable_variables)]\n    "
        if decay
        else ""
    )
    training = (
        TRAINING.replace("OPTIMIZER_LINE", keras_optimizer(config.optimizer, "tf.keras"))
        .replace("LOSS_FN", loss_fn)
        .replace("LOSS_CALL", loss_call)
        .replace("GRADS_LINE", grads)
    )
    return {"imports": IMPORTS, "NeuralNetwork": network(spec, lines), "training": training}
