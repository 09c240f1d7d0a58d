"""fmnist's low-level TensorFlow backend: ``Trainer(backend="tf")``.

Importing this imports no TensorFlow."""

__version__ = "0.4.0"
