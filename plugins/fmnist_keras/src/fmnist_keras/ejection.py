"""fmnist-keras' ejection table: the Keras program ``fmnist eject --to keras`` writes
(``compile`` and ``train_on_batch``, as the article's Keras code) around its layers, Keras' own,
whose texts are in the lowering table (``lowering.py``, beside each layer's builder)."""

from __future__ import annotations

from fmnist_core.plugin_api import EjectionTable, block, escaped, keras_loss, keras_optimizer

EJECTION = EjectionTable(
    "keras", title="Keras", initial="initial.weights.h5", weights="model.keras"
)

IMPORTS = """import argparse
import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
from PIL import Image
"""


def network(spec, lines) -> str:
    if spec.name == "mlp" and spec.is_two_layer_perceptron():
        hidden = spec.layers[1].units
        return block(
            f"""
            def NeuralNetwork() -> keras.Model:
                inputs = keras.Input(shape=(28, 28))
                x = keras.layers.Flatten()(inputs)
                x = keras.layers.Dense({hidden}, activation='relu', name='fc1')(x)
                x = keras.layers.Dense(10, name='fc2')(x)
                return keras.Model(inputs, x, name='fmnist_mlp')
            """
        )
    flat = spec.layers[0].kind == "Flatten"
    start = (*spec.input_shape,) if flat else (*spec.input_shape, 1)
    lines.stack(spec.layers, start)
    reshape = "" if flat else "    x = keras.layers.Reshape((28, 28, 1))(x)\n"
    forward = "\n".join("    " + line for line in lines.forwards)
    return (
        "def NeuralNetwork() -> keras.Model:\n"
        f'    """fmnist\'s {escaped(spec.name)}: {escaped(spec.description)}. Its layers carry fmnist\'s names."""\n'
        "    inputs = keras.Input(shape=(28, 28))\n"
        "    x = inputs\n"
        f"{reshape}{forward}\n"
        f"    return keras.Model(inputs, x, name={'fmnist_' + spec.name!r})\n"
    )


TRAINING = block(
    """
    def as_arrays(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (images.astype(np.float32) / np.float32(255.0), LABELS_LINE)


    def weights_of(model: keras.Model) -> dict:
        return {v.path: np.array(v) for v in model.weights}


    def fit_one_batch(X: np.ndarray, y: np.ndarray, model: keras.Model) -> tuple[float, float]:
        (loss, accuracy) = model.train_on_batch(X, y)
        return (loss, accuracy)


    def fit(epoch: int, step: int, data, draws, model: keras.Model, average, args,
            losses: list) -> int:
        batch_count = STEPS_PER_EPOCH
        full_batches = len(draws["order"][epoch]) // BATCH_SIZE
        correct_item_count = 0
        current_item_count = 0
        print_every = 100
        since_average = 0
        for batch_index, (images, labels) in enumerate(batches_of(epoch, *data, draws)):
            model.optimizer.learning_rate.assign(learning_rate(step))
            (X, y) = as_arrays(images, labels)
            (batch_loss, batch_accuracy) = fit_one_batch(X, y, model)
            step += 1
            losses.append(float(batch_loss))
            if average is not None:
                since_average += 1
                if since_average == EMA_EVERY or batch_index + 1 in (full_batches, batch_count):
                    average.update(weights_of(model), since_average)
                    since_average = 0
            correct_item_count += round(batch_accuracy * len(X))
            current_item_count += len(X)
            if ((batch_index + 1) % print_every == 0) or ((batch_index + 1) == batch_count):
                accuracy = correct_item_count / current_item_count * 100
                print(f'[Batch {batch_index + 1:>3d} - {current_item_count:>5d} items] accuracy: {accuracy:>0.1f}%, loss: {batch_loss:>7f}')
            if args.steps and step >= args.steps:
                break
        return step


    def evaluate_one_batch(X: np.ndarray, y: np.ndarray, model: keras.Model) -> np.ndarray:
        y_prime = model(X, training=False)
        if TTA:
            y_prime = (y_prime + model(X[:, :, ::-1], training=False)) / 2
        return keras.ops.convert_to_numpy(y_prime)


    def evaluate(images: np.ndarray, labels: np.ndarray, model: keras.Model) -> tuple[float, float]:
        logits = np.concatenate([
            evaluate_one_batch(images[start : start + 1000].astype(np.float32) / np.float32(255.0),
                               labels[start : start + 1000], model)
            for start in range(0, len(images), 1000)
        ])
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return (float(loss_fn(labels, logits)), float((logits.argmax(1) == labels).mean()))


    def training_phase(args: argparse.Namespace) -> None:
        (training, (test_images, test_labels)) = get_data(args.data)
        draws = dict(np.load(HERE / "batches.npz"))
        if args.epochs > len(draws["order"]):
            raise SystemExit(f"batches.npz holds {len(draws['order'])} epochs; pass --epochs up to that")
        model = NeuralNetwork()
        model.load_weights(HERE / "initial.weights.h5")
        loss_fn = LOSS_FN
        optimizer = OPTIMIZER_LINE
        metrics = ['accuracy']
        model.compile(optimizer=optimizer, loss=loss_fn, metrics=metrics)
        average = WeightAverage(weights_of(model)) if EMA_DECAY else None
        print('\\nFitting:')
        (step, losses) = (0, [])
        for epoch in range(args.epochs):
            print(f'\\nEpoch {epoch + 1}\\n-------------------------------')
            step = fit(epoch, step, training, draws, model, average, args, losses)
            if args.steps and step >= args.steps:
                break
        if args.losses:
            args.losses.write_text(json.dumps(losses))
        if average is not None:  # the average is what fmnist evaluates and saves
            for variable in model.weights:
                variable.assign(average.values[variable.path])
        print('\\nEvaluating:')
        (test_loss, test_accuracy) = evaluate(test_images, test_labels, model)
        print(f'\\nTest accuracy: {test_accuracy * 100:>0.1f}%, test loss: {test_loss:>8f}')
        args.out.mkdir(parents=True, exist_ok=True)
        model.save(args.out / 'model.keras')


    def inference_phase(args: argparse.Namespace) -> None:
        model = keras.saving.load_model(args.out / 'model.keras')
        if args.predict is None:  # nothing to predict: the weights were read back
            return
        print('\\nPredicting:')
        with Image.open(args.predict) as image:
            X = np.asarray(image.convert('L')).reshape((-1, 28, 28)) / 255.0
        predicted_index = np.argmax(model.predict(X, verbose=0))
        predicted_name = labels_map[predicted_index]
        print(f'Predicted class: {predicted_name}')
    """
)


@EJECTION.program
def program(spec, config, lines) -> dict[str, str]:
    loss_fn, _ = keras_loss(config, "keras")
    labels = (
        "keras.utils.to_categorical(labels, 10)"
        if config.label_smoothing
        else "labels.astype(np.int64)"
    )
    training = (
        TRAINING.replace("OPTIMIZER_LINE", keras_optimizer(config.optimizer, "keras"))
        .replace("LOSS_FN", loss_fn)
        .replace("LABELS_LINE", labels)
    )
    return {"imports": IMPORTS, "NeuralNetwork": network(spec, lines), "training": training}
