"""A scikit-learn classifier around ``Trainer`` (``fmnist-core[sklearn]``): ``fmnist_core.sklearn``.

    from fmnist_core.sklearn import FashionMNISTClassifier
    from sklearn.model_selection import GridSearchCV, cross_val_score

    cross_val_score(FashionMNISTClassifier(epochs=2), x, y, cv=3)
    GridSearchCV(FashionMNISTClassifier(), {"learning_rate": [0.05, 0.1]}).fit(x, y)

``X`` holds images ``(n, 784)`` (a flattened image a row, as scikit-learn wants 2-D data) or
``(n, 28, 28)``, uint8 or floats in [0, 1]; ``y`` class labels, at most ten of them: labels 0..9
keep their Fashion-MNIST meaning (``LABELS``), other labels are numbered in sorted order. Every
``TrainConfig`` setting is a constructor parameter (derived: a new setting is one here too), with
``backend``, ``model``, ``options`` (backend options) and ``verbose``, so ``get_params``,
``set_params`` and grid searches see them all.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import check_is_fitted
except ImportError as exc:  # an optional extra
    from ..errors import FmnistError

    raise FmnistError(
        "fmnist_core.sklearn needs scikit-learn", fix='pip install "fmnist-core[sklearn]"'
    ) from exc

from ..data.arrays import as_images
from ..errors import ConfigError
from ..labels import NUM_CLASSES
from ..training.config import NAMES, TrainConfig, settings
from ..training.metrics import softmax
from ..training.trainer import Trainer


class FashionMNISTClassifier(ClassifierMixin, BaseEstimator):
    """An fmnist model as a scikit-learn classifier; see the module's docstring."""

    # every TrainConfig field is a parameter (the signature is derived below)
    def __init__(self, **params: Any):
        for name, parameter in _SIGNATURE.parameters.items():
            if name != "self":
                setattr(self, name, params.pop(name, parameter.default))
        if params:
            raise TypeError(f"unexpected parameter {next(iter(params))!r}")

    def fit(self, X, y=None):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        images = _images(X)
        if len(images) == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={images.shape}) while a minimum of 1 is "
                f"required by {type(self).__name__}."
            )
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(images):
            raise ConfigError(
                f"y: {len(images)} images need {len(images)} labels, got shape {labels.shape}"
            )
        if labels.dtype == object and any(label is None for label in labels):
            raise ValueError("Input y contains None: every image needs a class label.")
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise ValueError("Input y contains NaN or infinity: every image needs a class label.")
        if labels.dtype == object and len({isinstance(label, str) for label in labels}) > 1:
            raise ValueError("Mix of label input types (string and number)")  # scikit-learn's
        # scikit-learn's own checks and messages: continuous or multi-output targets
        check_classification_targets(labels)
        self.classes_ = unique_labels(labels)
        if len(self.classes_) > NUM_CLASSES:
            raise ConfigError(
                f"y holds {len(self.classes_)} classes; the model has {NUM_CLASSES} outputs"
            )
        fashion = (
            np.issubdtype(self.classes_.dtype, np.integer)
            and self.classes_.min() >= 0
            and self.classes_.max() < NUM_CLASSES
        )
        # the model's output of each class: a Fashion-MNIST label is its own, others in order
        self.outputs_ = self.classes_.astype(np.int64) if fashion else np.arange(len(self.classes_))
        indices = self.outputs_[np.searchsorted(self.classes_, labels)]
        given = {name: getattr(self, name) for name in NAMES}
        self.trainer_ = Trainer(
            backend=self.backend,
            model=self.model,
            config=TrainConfig(**given),
            verbose=self.verbose,
            **(self.options or {}),
        )
        self.trainer_.fit(images, indices)
        self.n_features_in_ = images.shape[1] * images.shape[2]
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of ``classes_`` (the model's outputs of the other labels left out)."""
        check_is_fitted(self)
        probabilities = softmax(self.trainer_.logits(_images(X)))[:, self.outputs_]
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # (n, 28, 28) images, besides (n, 784)
        tags.non_deterministic = self.backend not in ("numpy", "torch", "tf", "keras")
        return tags


_SIGNATURE = inspect.Signature(
    [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in (("backend", "numpy"), ("model", "mlp"))
        ),
        *(
            inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.default)
            for s in settings()
        ),
        inspect.Parameter("options", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=0),
    ]
)
FashionMNISTClassifier.__init__.__signature__ = _SIGNATURE  # type: ignore[attr-defined]


def _images(X) -> np.ndarray:
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # scipy's sparse matrices and arrays
        raise TypeError("sparse input is not supported: images are dense; pass X.toarray()")
    if np.iscomplexobj(X):
        raise ValueError("Complex data not supported: images are real pixels")
    try:
        return as_images(X, "X")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None  # scikit-learn expects a ValueError for bad input
