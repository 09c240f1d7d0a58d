"""Weight-format lookup over every installed plugin, and reading or writing any format."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..errors import WeightsError
from ..plugins import weight_formats
from .weights import NEUTRAL, WeightFormat, Weights


def format_for(
    path: str | os.PathLike, format: str | None = None, *, for_writing: bool = False
) -> WeightFormat:
    """The registered format named ``format``, or the one ``path`` belongs to.

    The order is explicit: the longest declared suffix that ends the name wins; a name no suffix
    matches goes to the formats that recognise it by content (a SavedModel folder, a checkpoint
    prefix). Where several formats claim the same name, the neutral format comes first; any
    other tie is an error listing the candidates.
    """
    formats = weight_formats()
    path = Path(path)
    if format is not None:
        if format not in formats:
            raise WeightsError(
                f"unknown weight format {format!r}; "
                f"installed formats: {', '.join(sorted(formats))}",
                fix="pick one of those, or install the plugin that provides it",
            )
        return formats[format]
    lengths = {
        f.name: max((len(s) for s in f.suffixes if path.name.endswith(s)), default=0)
        for f in formats.values()
    }
    longest = max(lengths.values(), default=0)
    candidates = [f for f in formats.values() if longest and lengths[f.name] == longest]
    if not candidates and not for_writing:
        candidates = [f for f in formats.values() if f.matches is not None and f.matches(path)]
    if len(candidates) > 1:
        if NEUTRAL.name in (f.name for f in candidates):
            return formats[NEUTRAL.name]
        raise WeightsError(
            f"{path} could be any of several formats: "
            f"{', '.join(f'{f.name} ({f.plugin})' for f in candidates)}",
            fix="name one with format=... / --from / --to",
        )
    if candidates:
        return candidates[0]
    known = ", ".join(f"{f.name} ({' '.join(f.suffixes)})" for f in formats.values())
    raise WeightsError(
        f"no installed plugin understands {path}; known formats: {known}",
        fix="use one of those names or suffixes, or install the plugin for that framework",
    )


def _refuse_special(path: Path) -> None:
    """A device, a FIFO or a socket where weights are expected (a run folder's checkpoint
    linked to /dev/zero, a FIFO fed without end) is refused before it is opened."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # a prefix-named format, or missing: its reader says so
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise WeightsError(
            f"{path} is not a regular file (a device, a FIFO or a socket)",
            fix="give a weights file written by fmnist",
        )


def read_weights(path: str | os.PathLike, format: str | None = None) -> Weights:
    """Read any weights file an installed plugin understands, into the neutral layout."""
    path = Path(path)
    # a prefix-named format (a TF checkpoint: PATH.index + PATH.data-…) has no file at PATH itself
    if not path.exists() and not any(path.parent.glob(f"{glob.escape(path.name)}.*")):
        raise WeightsError(f"weights file {path} does not exist", fix="check the path")
    _refuse_special(path)
    fmt = format_for(path, format)
    if fmt.read is None:
        raise WeightsError(f"format {fmt.name} cannot be read", fix="use another format")
    return fmt.read(path)


# suffixes of the formats the project's own plugins write, for a one-line "install" answer
# when the plugin is missing (the format itself is looked up among the installed plugins)
PLUGIN_SUFFIXES = {
    ".keras": ("Keras", "fmnist-core[keras]"),
    ".h5": ("Keras", "fmnist-core[keras]"),
    ".savedmodel": ("TensorFlow", "fmnist-core[tf]"),
    ".ckpt": ("TensorFlow", "fmnist-core[tf]"),
    ".pth": ("PyTorch", "fmnist-core[torch]"),
    ".pt": ("PyTorch", "fmnist-core[torch]"),
}


def write_weights(
    path: str | os.PathLike, weights: Weights, format: str | None = None
) -> WeightFormat:
    """Write ``weights`` in ``format`` (default: chosen by the suffix, else safetensors)."""
    path = Path(path)
    try:
        fmt = format_for(path, format, for_writing=True)
    except WeightsError:
        if format is not None:
            raise
        suffix = path.suffix.lower()
        if suffix in PLUGIN_SUFFIXES:
            framework, extra = PLUGIN_SUFFIXES[suffix]
            raise WeightsError(
                f"writing {path.name} ({suffix}) needs {framework}, which is not installed",
                fix=f"pip install '{extra}', or name the file .safetensors",
            ) from None
        if suffix:
            raise WeightsError(
                f"no installed format writes {suffix} files ({path.name})",
                fix="name the file .safetensors (or .onnx), or choose one with --to / format=",
            ) from None
        fmt = NEUTRAL
    if fmt.write is None:
        raise WeightsError(f"format {fmt.name} cannot be written", fix="use another format")
    fmt.write(path, weights)
    return fmt
