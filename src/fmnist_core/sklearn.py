"""``fmnist_core.sklearn.FashionMNISTClassifier``: fmnist as a scikit-learn classifier
(``fmnist-core[sklearn]``; the implementation is ``fmnist_core.apps.sklearn``)."""

from .apps.sklearn import FashionMNISTClassifier

__all__ = ["FashionMNISTClassifier"]
