"""Fashion-MNIST as a ``torch.utils.data.Dataset``, for users who write their own loop."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from fmnist_core import load_dataset


class FashionMNIST(Dataset):
    """Like ``torchvision.datasets.FashionMNIST(transform=ToTensor())``, found and verified by fmnist.

    Items are ``(image float32 (1, 28, 28) in [0, 1], label int)``; nothing is downloaded
    when the data is found locally.
    """

    def __init__(self, train: bool = True, data_dir=None):
        split = load_dataset(data_dir).train if train else load_dataset(data_dir).test
        self.images = torch.from_numpy(split.images.copy())
        self.labels = torch.from_numpy(split.labels.astype("int64"))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index].unsqueeze(0).to(torch.float32) / 255.0, int(self.labels[index])
