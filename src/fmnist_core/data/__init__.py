"""The Fashion-MNIST data: its spec (files, shapes, checksums), IDX parsing, finding, verifying,
caching and downloading it, and reading users' images into the dataset's form."""

from .dataset import (
    CACHE_LAYOUT_VERSION,
    DEBIAN_DIR,
    VALIDATION_SEED,
    Dataset,
    Split,
    cache_dir,
    download_dir,
    find_files,
    load_arrays,
    load_dataset,
    locate,
    search_path,
    validation_indices,
    verify_and_parse,
    verify_cache,
)
from .spec import FILES, IMAGE_SHAPE, SPLIT_FILES, IdxFileSpec

__all__ = [
    "CACHE_LAYOUT_VERSION",
    "DEBIAN_DIR",
    "FILES",
    "IMAGE_SHAPE",
    "SPLIT_FILES",
    "VALIDATION_SEED",
    "Dataset",
    "IdxFileSpec",
    "Split",
    "cache_dir",
    "download_dir",
    "find_files",
    "load_arrays",
    "load_dataset",
    "locate",
    "search_path",
    "validation_indices",
    "verify_and_parse",
    "verify_cache",
]
