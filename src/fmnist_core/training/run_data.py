"""``RunData``: where a run's images come from: Fashion-MNIST (found, verified and loaded on
first use, ``validation`` images held out of its training set), or a user's arrays."""

from __future__ import annotations

import os

from ..data import Dataset, load_dataset
from ..data.dataset import Split
from ..errors import ConfigError


class RunData:
    def __init__(
        self,
        data: Dataset | None = None,
        data_dir: str | os.PathLike | None = None,
        verify_checksums: bool = True,
        validation: int | float | None = None,
    ):
        self._data, self.data_dir, self.verify_checksums = data, data_dir, verify_checksums
        self.validation = validation
        self._splits: tuple[Split, Split | None] | None = None
        self.on_arrays = False
        self.arrays_digest = ""  # of fit(x, y)'s training arrays, recorded in configs

    @property
    def dataset(self) -> Dataset:
        """The dataset, found, verified and loaded on first use."""
        if self._data is None:
            self._data = load_dataset(self.data_dir, verify=self.verify_checksums)
        return self._data

    def use_arrays(self, x, y, validation_data=None) -> None:
        """Train on these arrays from now on (checked; a resumed run's must be the same)."""
        from ..data.arrays import as_split, digest

        train = as_split(x, y, "x, y")
        held = None
        if validation_data:
            held_x, held_y = validation_data
            held = as_split(held_x, held_y, "validation_data")
        if self.arrays_digest and digest(train) != self.arrays_digest:
            raise ConfigError(
                "these arrays are not the ones this run was trained on (their digest differs)",
                fix="resume with the same x, y, or start a new Trainer",
            )
        self._splits, self.on_arrays, self.arrays_digest = (train, held), True, digest(train)

    def splits(self) -> tuple[Split, Split | None]:
        """(training split, validation split or None)."""
        if self._splits is None:
            train, held = self.dataset.train, None
            if self.validation is not None:
                from ..data import validation_indices

                kept, out = validation_indices(train.labels, self.validation)
                train, held = train.take(kept), train.take(out)
            self._splits = (train, held)
        return self._splits

    def split(self, name: str) -> Split:
        """ "test", "train" (the whole training set, or the arrays) or "validation"."""
        if name not in ("test", "train", "validation"):
            raise ConfigError(f"split must be 'test', 'train' or 'validation', got {name!r}")
        if name == "test" or (name == "train" and not self.on_arrays):
            return getattr(self.dataset, name)
        found = self.splits()[name == "validation"]
        if found is None:
            raise ConfigError(
                "no validation split: this trainer was made without validation=",
                fix="pass validation=5000 (or a fraction) to Trainer, or fit(validation_data=)",
            )
        return found
