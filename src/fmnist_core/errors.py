"""Errors a user can act on. The CLI prints ``str(error)`` as one line, without a traceback."""

from __future__ import annotations


class FmnistError(Exception):
    """Base class: a problem with the user's input, files or environment, with a fix."""

    def __init__(self, message: str, *, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message if not self.fix else f"{self.message}; fix: {self.fix}"
        return " ".join(text.split())  # always one line


class DataError(FmnistError):
    """A dataset file is missing, corrupt, truncated or has the wrong checksum."""


class ImageError(FmnistError):
    """An image to classify cannot be read or converted."""


class WeightsError(FmnistError):
    """A weights file is missing, unreadable, or holds another model or shape."""


class BackendError(FmnistError):
    """An unknown backend or model, or a plugin that cannot be used."""


class ConfigError(FmnistError, ValueError):
    """A bad hyper-parameter or option value."""


class StorageError(FmnistError):
    """A file or folder cannot be written (full or read-only disk, a folder in use)."""


class ExportError(FmnistError):
    """An export failed its gate, or could not be written or run by its runtime."""


class TrainingError(FmnistError):
    """Training cannot go on, e.g. the loss became NaN."""
