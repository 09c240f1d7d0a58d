"""TF checkpoints and SavedModels of any model, read from their variables (a graph is never run).

The ``mlp`` keeps the article's variable names ``w1 (784, 20)``, ``b1``, ``w2 (20, 10)``, ``b2``;
other models store each neutral tensor under its name with ``.`` written ``__``
(``conv1__weight``), in the neutral layout. An exported SavedModel carries a ``serving_default``
signature built from the model's spec: uint8 images (n, 28, 28) in, ``logits``,
``probabilities`` and ``class_index`` out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fmnist_core import Weights, WeightsError
from fmnist_core.plugin_api import architecture_of, models

from .engine import ARTICLE_NAMES, SpecModule, tf, variable_key  # the engine imports TensorFlow


def _variables(prefix: str, source: Path) -> dict[str, np.ndarray]:
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        raise WeightsError(
            f"{source} is not a readable TensorFlow checkpoint ({str(exc).splitlines()[0][:160]})",
            fix="pass a SavedModel folder or a tf.train.Checkpoint prefix",
        ) from exc
    found = {}
    for key in reader.get_variable_to_shape_map():
        if key.endswith("VARIABLE_VALUE"):
            found[key.split("/.ATTRIBUTES")[0].split("/")[-1]] = np.asarray(
                reader.get_tensor(key), np.float32
            )
    return found


def _weights_from(found: dict[str, np.ndarray], source: Path) -> Weights:
    article = {ARTICLE_NAMES[k.lower()]: v for k, v in found.items() if k.lower() in ARTICLE_NAMES}
    if len(article) == 4:
        return Weights("mlp", article, {"backend": "tf"})
    for name, spec in models().items():
        wanted = {variable_key(n): n for n in spec.shapes()}
        if set(wanted) <= set(found) and all(
            found[k].shape == spec.shapes()[n] for k, n in wanted.items()
        ):
            return Weights(name, {n: found[k] for k, n in wanted.items()}, {"backend": "tf"})
    raise WeightsError(
        f"{source} holds variables {', '.join(sorted(found)[:6]) or 'none'}, which fit no known "
        "model",
        fix="pass a checkpoint of the article's TensorFlow MLP or one written by fmnist",
    )


def read_checkpoint(path: Path) -> Weights:
    prefix = str(path)[: -len(".index")] if str(path).endswith(".index") else str(path)
    return _weights_from(_variables(prefix, path), path)


def read_savedmodel(path: Path) -> Weights:
    return _weights_from(_variables(str(path / "variables" / "variables"), path), path)


def _module(weights: Weights) -> SpecModule:
    spec = architecture_of(weights)
    return SpecModule(spec, spec.check_params(weights.params))


def _trackables(module: SpecModule) -> dict[str, tf.Variable]:
    if module.spec.name == "mlp" and module.spec.is_two_layer_perceptron():
        return {short: module.variable(name) for short, name in ARTICLE_NAMES.items()}
    return {variable_key(name): module.variable(name) for name in module.spec.shapes()}


def write_checkpoint(path: Path, weights: Weights) -> None:
    module = _module(weights)
    path = Path(path)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        written = tf.train.Checkpoint(**_trackables(module)).write(str(folder / "ckpt"))
        # data first, index last: a reader never finds an index without its data
        data = Path(f"{written}.data-00000-of-00001")
        os.replace(data, f"{path}.data-00000-of-00001")
        os.replace(f"{written}.index", f"{path}.index")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Serving(tf.Module):
    def __init__(self, model: SpecModule):
        super().__init__()
        self.model = model
        self.variables_by_name = _trackables(model)
        shape = [None, *model.spec.input_shape]
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec(shape, tf.uint8, name="images")]
        )

    def _serve(self, images):
        logits = self.model(tf.cast(images, tf.float32) / 255.0, training=False)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "class_index": tf.argmax(logits, axis=1, output_type=tf.int32),
        }


def write_savedmodel(path: Path, weights: Weights) -> None:
    path = Path(path)
    serving = Serving(_module(weights))
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tf.saved_model.save(
        serving, str(staging / "model"), signatures={"serving_default": serving.serve}
    )
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(staging / "model", path)
    shutil.rmtree(staging, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
