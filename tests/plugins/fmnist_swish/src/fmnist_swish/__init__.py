"""A Swish layer (``x · sigmoid(beta · x)``) for fmnist, lowered for torch: the worked example of
a third-party layer in docs/plugins.md."""

from .layer import Swish

__all__ = ["Swish"]
