"""TF checkpoints and SavedModels, read from their variables (a SavedModel's graph is never run).

Both hold ``w1 (784, 20)``, ``b1 (20,)``, ``w2 (20, 10)``, ``b2 (10,)``, the article's names. An
exported SavedModel carries a ``serving_default`` signature: uint8 images (n, 28, 28) in, logits,
probabilities and class indices out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fmnist_core import Weights, WeightsError

from .engine import MLP, NEUTRAL, tf  # the engine imports TensorFlow (fmnist_core.compat)


def _read_variables(prefix: str, source: Path) -> Weights:
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        raise WeightsError(f"{source} is not a readable TensorFlow checkpoint ({str(exc).splitlines()[0][:160]})",
                           fix="pass a SavedModel folder or a tf.train.Checkpoint prefix") from exc
    found = {}
    for key in reader.get_variable_to_shape_map():
        short = key.split("/.ATTRIBUTES")[0].split("/")[-1].lower()
        if short in NEUTRAL and key.endswith("VARIABLE_VALUE"):
            found[NEUTRAL[short]] = np.asarray(reader.get_tensor(key), np.float32)
    if len(found) != 4:
        raise WeightsError(f"{source} lacks the variables w1, b1, w2, b2 (found {sorted(found) or 'none'})",
                           fix="pass a checkpoint of the article's TensorFlow MLP")
    return Weights("mlp", found, {"backend": "tf"})


def read_checkpoint(path: Path) -> Weights:
    prefix = str(path)[: -len(".index")] if str(path).endswith(".index") else str(path)
    return _read_variables(prefix, path)


def read_savedmodel(path: Path) -> Weights:
    return _read_variables(str(path / "variables" / "variables"), path)


def _module(weights: Weights) -> MLP:
    if weights.model != "mlp":
        raise WeightsError(f"TensorFlow formats hold the mlp model, not {weights.model!r}")
    return MLP(weights.params)


def write_checkpoint(path: Path, weights: Weights) -> None:
    module = _module(weights)
    path = Path(path)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        written = tf.train.Checkpoint(w1=module.w1, b1=module.b1, w2=module.w2, b2=module.b2).write(str(folder / "ckpt"))
        # data first, index last: a reader never finds an index without its data
        data = Path(f"{written}.data-00000-of-00001")
        os.replace(data, f"{path}.data-00000-of-00001")
        os.replace(f"{written}.index", f"{path}.index")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Serving(tf.Module):
    def __init__(self, mlp: MLP):
        super().__init__()
        self.mlp = mlp

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8, name="images")])
    def serve(self, images):
        logits = self.mlp(tf.cast(images, tf.float32) / 255.0)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits),
                "class_index": tf.argmax(logits, axis=1, output_type=tf.int32)}


def write_savedmodel(path: Path, weights: Weights) -> None:
    path = Path(path)
    serving = Serving(_module(weights))
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tf.saved_model.save(serving, str(staging / "model"), signatures={"serving_default": serving.serve})
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(staging / "model", path)
    shutil.rmtree(staging, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
