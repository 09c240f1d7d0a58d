"""The Fashion-MNIST dataset spec: image shape, the four files, their shapes and checksums.

Its own module, so that ``data`` (finding and loading) and ``download`` both read it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGE_SHAPE: tuple[int, int] = (28, 28)
"""Height and width of every Fashion-MNIST image (uint8 grayscale, light object on black)."""


@dataclass(frozen=True)
class IdxFileSpec:
    """One of the four original files: its name, array shape and decompressed SHA-256."""

    name: str
    shape: tuple[int, ...]
    sha256: str


FILES: dict[str, IdxFileSpec] = {
    spec.name: spec
    for spec in (
        IdxFileSpec(
            "train-images-idx3-ubyte",
            (60000, *IMAGE_SHAPE),
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        IdxFileSpec(
            "train-labels-idx1-ubyte",
            (60000,),
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        IdxFileSpec(
            "t10k-images-idx3-ubyte",
            (10000, *IMAGE_SHAPE),
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        IdxFileSpec(
            "t10k-labels-idx1-ubyte",
            (10000,),
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    )
}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
