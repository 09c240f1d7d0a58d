"""fmnist's Keras 3 backend: ``Trainer(backend="keras", keras_backend="tensorflow"|"torch")``.

Importing this package imports no Keras. ``to_keras_model(trainer)`` gives a ``keras.Model``
holding a trained fmnist model's weights; ``export(trainer, path)`` writes a SavedModel for
serving with ``model.export`` (TensorFlow Keras backend).
"""

from __future__ import annotations

__version__ = "0.4.0"


def to_keras_model(trainer, keras_backend: str | None = None):
    """A ``keras.Model`` (the functional build of ``trainer.model``) with ``trainer``'s current
    weights."""
    from .engine import import_keras, set_weights
    from .lowering import build_model

    import_keras(keras_backend)
    model = build_model(trainer.model)
    set_weights(model, trainer.model, trainer.params)
    return model


def export(trainer, path, keras_backend: str | None = None) -> None:
    """``model.export(path)``: a SavedModel with a ``serve`` endpoint on float images in [0, 1]."""
    to_keras_model(trainer, keras_backend).export(str(path), format="tf_saved_model", verbose=False)
