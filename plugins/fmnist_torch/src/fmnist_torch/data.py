"""Fashion-MNIST as a ``torch.utils.data.Dataset``, for users who write their own loop."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from fmnist_core import load_dataset


class FashionMNIST(Dataset):
    """A drop-in for ``torchvision.datasets.FashionMNIST``, with the data found and verified by
    fmnist.

    Without ``transform`` an item is ``(image float32 (1, 28, 28) in [0, 1], label)``, what
    torchvision gives with ``transform=ToTensor()``. With ``transform`` (any torchvision
    transform) the image goes to it as a PIL image, as in torchvision. Nothing is downloaded
    when the data is found locally.
    """

    def __init__(self, train: bool = True, data_dir=None, transform=None, target_transform=None):
        data = load_dataset(data_dir)
        split = data.train if train else data.test
        self.images = torch.from_numpy(split.images.copy())
        self.labels = torch.from_numpy(split.labels.astype("int64"))
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        label = int(self.labels[index])
        if self.target_transform is not None:
            label = self.target_transform(label)
        if self.transform is None:
            return self.images[index].unsqueeze(0).to(torch.float32) / 255.0, label
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index].numpy(), mode="L")), label


def image_grid(images, nrow: int = 8):
    """uint8 images (n, 28, 28) as one grid tensor (3, H, W) (``torchvision.utils.make_grid``)."""
    from torchvision.utils import make_grid

    tensor = (
        torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1).to(torch.float32) / 255.0
    )
    return make_grid(tensor, nrow=nrow, padding=2)
