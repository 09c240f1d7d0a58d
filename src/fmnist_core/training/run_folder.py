"""``RunFolder``: the one home of a run's files and their names.

``fmnist train``, every tune trial, ``fmnist compare``, the model card, the pictures and the
trackers write and read a run folder through it; no other module spells a run-folder file name.
Records are read through one bounded reader (a special file or an oversized one is a one-line
error) and checked for their shape.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes, atomic_write_json, folder_lock, read_user_file
from ..errors import ConfigError
from .metrics import History


class RunFolder:
    """A run's folder: ``config.json`` (the settings, a config file for ``--config``),
    ``history.json``, ``evaluation.json``, ``weights.safetensors``, ``checkpoint.safetensors``,
    the pictures, the model card ``README.md`` and ``exports.json`` (``fmnist export``'s gate
    scores, by format)."""

    CONFIG = "config.json"
    HISTORY = "history.json"
    EVALUATION = "evaluation.json"
    WEIGHTS = "weights.safetensors"
    CHECKPOINT = "checkpoint.safetensors"
    CARD = "README.md"
    CURVES = "curves.png"
    CONFUSION = "confusion.png"
    PREDICTIONS = "predictions.png"
    CSV_LOG = "history.csv"
    EXPORTS = "exports.json"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def holds_run(cls, path: str | os.PathLike) -> bool:
        """``path`` is a folder holding a run's weights (not a SavedModel that happens to)."""
        path = Path(path)
        return (
            path.is_dir()
            and (path / cls.WEIGHTS).is_file()
            and not (path / "saved_model.pb").exists()
        )

    # -- paths -------------------------------------------------------------------------------
    @property
    def weights(self) -> Path:
        return self.path / self.WEIGHTS

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def card(self) -> Path:
        return self.path / self.CARD

    def picture(self, name: str) -> Path:
        """``curves``, ``confusion`` or ``predictions``: the picture's path."""
        return self.path / f"{name}.png"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One process writes a run folder at a time."""
        with folder_lock(self.path):
            yield

    # -- records -----------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> Path:
        atomic_write_json(self.path / self.CONFIG, config)
        return self.path / self.CONFIG

    def read_config(self) -> dict[str, Any]:
        """The recorded settings (``{}`` when the folder has none)."""
        if not (self.path / self.CONFIG).exists():
            return {}
        return self._record(self.CONFIG, dict)

    def write_history(self, history: History) -> None:
        atomic_write_json(self.path / self.HISTORY, history.to_dict())

    def read_history(self) -> History:
        record = self._record(self.HISTORY, dict)
        try:
            return History.from_dict(record)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ConfigError(
                f"{self.path / self.HISTORY} holds rows fmnist cannot read",
                fix="train the run again",
            ) from None

    def write_evaluation(self, evaluation: dict[str, Any]) -> None:
        atomic_write_json(self.path / self.EVALUATION, evaluation)

    def read_evaluation(self) -> dict[str, Any] | None:
        if not (self.path / self.EVALUATION).exists():
            return None
        evaluation = self._record(self.EVALUATION, dict)
        accuracy = evaluation.get("accuracy")
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
            raise ConfigError(
                f"{self.path / self.EVALUATION} records no accuracy", fix="evaluate the run again"
            )
        return evaluation

    def read_exports(self) -> dict[str, dict[str, Any]]:
        """``fmnist export``'s records, one per written artifact, by its path (relative to the
        run folder when inside it): ``{"format", "bytes", "gate"}``. ``{}`` when nothing was
        exported. A record of another shape is one line naming the file (0.4 keyed the records
        by format, each with its ``path``: those are read as they were meant)."""
        if not (self.path / self.EXPORTS).exists():
            return {}
        recorded = self._record(self.EXPORTS, dict)
        where = self.path / self.EXPORTS
        checked: dict[str, dict[str, Any]] = {}
        for key, record in recorded.items():
            if not isinstance(record, dict):
                raise ConfigError(
                    f"{where}: the record {str(key)[:40]!r} is not a table",
                    fix=f"remove {self.EXPORTS}; `fmnist export` writes it again",
                )
            if "format" not in record and isinstance(record.get("path"), str):
                record = {**record, "format": key}  # 0.4's records, keyed by format
                key = record["path"]
            gate = record.get("gate", {})
            size = record.get("bytes", 0)
            ok = (
                isinstance(record.get("format"), str)
                and isinstance(gate, dict)
                and all(isinstance(v, (int, float, str, bool, type(None))) for v in gate.values())
                and isinstance(size, int)
                and not isinstance(size, bool)
            )
            if not ok or len(key) > 4096:
                raise ConfigError(
                    f"{where}: the record {str(key)[:40]!r} is not one fmnist export writes",
                    fix=f"remove {self.EXPORTS}; `fmnist export` writes it again",
                )
            checked[str(key)] = {"format": record["format"], "bytes": size, "gate": gate}
        return checked

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the run folder when it is inside it, else absolute."""
        resolved = Path(path).resolve()
        try:
            return resolved.relative_to(self.path.resolve()).as_posix()
        except ValueError:
            return str(resolved)

    def write_exports(self, exports: dict[str, Any]) -> None:
        atomic_write_json(self.path / self.EXPORTS, exports)

    def write_card(self, text: str) -> Path:
        atomic_write_bytes(self.card, text.encode())
        return self.card

    def _record(self, name: str, kind: type) -> Any:
        path = self.path / name
        text = read_user_file(path, "the run record", fix="train the run again")
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise ConfigError(f"{path} is not JSON", fix="train the run again") from None
        if not isinstance(value, kind):
            raise ConfigError(
                f"{path} holds a {type(value).__name__}, not a {kind.__name__}",
                fix="train the run again",
            )
        return value
