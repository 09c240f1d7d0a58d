"""fmnist's PyTorch backend: ``Trainer(backend="torch")``. Importing this imports no torch."""

__version__ = "0.4.0"
