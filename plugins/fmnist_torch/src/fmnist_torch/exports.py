"""The ``torch-export`` target: a ``torch.export`` program (``.pt2``) of the model, taking uint8
images (n, 28, 28) with n free and giving logits; plain ``torch.export.load(path).module()`` runs
it. fmnist's metadata travels in the archive's extra file ``fmnist.json``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fmnist_core import WeightsError
from fmnist_core.plugin_api import architecture_of

from .engine import neutral_converters
from .lowering import build_module

EXTRA = "fmnist.json"
MAX_BYTES = 2**30


class Uint8Images(nn.Module):
    """uint8 images (n, 28, 28) → the model's float NCHW input, scaled as in training."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images.to(torch.float32) / 255.0).unsqueeze(1))


def _program(weights):
    spec = architecture_of(weights)
    params = spec.check_params(weights.params)
    module = build_module(spec, 0, torch.device("cpu"))
    _, to_torch = neutral_converters(spec)
    state = module.state_dict()
    for name in spec.shapes():
        state[name] = torch.from_numpy(to_torch(name, params[name]))
    module.load_state_dict(state)
    wrapped = Uint8Images(module).eval()
    example = torch.zeros((2, *spec.input_shape), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with torch.no_grad():
        return torch.export.export(wrapped, (example,), dynamic_shapes=({0: batch},))


def write(path: Path, weights, metadata: dict[str, str], calibration) -> None:
    torch.export.save(_program(weights), str(path), extra_files={EXTRA: json.dumps(metadata)})


PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin")
MAX_PICKLE_BYTES = 2**24


def pickled_safely(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    """False for an entry that is a pickle (by its name or its first byte, a zip of one too)
    which torch's restricted loader (``weights_only=True``) refuses: torch.export.load reads
    some entries (``data/sample_inputs``) with ``weights_only=False``, so each pickle anywhere in
    the archive must be one that the restricted loader reads (tensors and plain containers)."""
    import io

    if member.is_dir():
        return True
    with archive.open(member) as handle:
        head = handle.read(4)
    name = member.filename.rpartition("/")[2]
    raw_tensor = name.startswith(("weight_", "tensor_")) and "." not in name  # read as bytes
    looks_pickled = member.filename.endswith(PICKLE_SUFFIXES) or (
        head[:1] == b"\x80" and not raw_tensor
    )
    if not looks_pickled:
        return True
    if member.file_size > MAX_PICKLE_BYTES:
        return False
    try:
        torch.load(io.BytesIO(archive.read(member)), weights_only=True, map_location="cpu")
    except Exception:  # any refusal or damage: not a pickle the restricted loader reads
        return False
    return True


def _checked(path: Path) -> Path:
    """``path`` if ``torch.export.load`` can read it without unpickling anything: it unpickles
    (``weights_only=False``) weights and constants marked ``use_pickle``, legacy ``.pt``
    payloads and custom or opaque objects, so an archive holding any of those is refused unread
    (fmnist writes raw tensors only)."""
    fix = "export it again with `fmnist export --format torch-export`"
    if path.stat().st_size > MAX_BYTES or not zipfile.is_zipfile(path):
        raise WeightsError(f"{path} is not a torch.export archive written by fmnist", fix=fix)
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # every entry read whole and checked against its CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        damaged = f"({type(exc).__name__}: {str(exc)[:60]})"
    if damaged is not None:
        raise WeightsError(
            f"{path} is a damaged archive (entry {str(damaged)[-60:]} cannot be read whole)",
            fix=fix,
        )
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if not pickled_safely(archive, member):
                raise WeightsError(
                    f"{path} holds a pickle that could run code ({member.filename[-60:]}); "
                    "refused, since torch would unpickle it unrestricted",
                    fix=fix,
                )
            folder, _, name = member.filename.rpartition("/")
            pickled = folder.endswith(("data/weights", "data/constants")) and (
                name.endswith(".pt") or name.startswith(("custom_obj", "opaque_obj"))
            )
            if name.endswith(("_weights_config.json", "_constants_config.json")):
                if member.file_size > 2**24:
                    pickled = True
                else:
                    try:
                        entries = json.loads(archive.read(member)).get("config", {}).values()
                        pickled = any(
                            e.get("use_pickle")
                            or not str(e.get("path_name", "")).startswith(("weight_", "tensor_"))
                            for e in entries
                        )
                    except (ValueError, AttributeError):
                        pickled = True
            if pickled:
                raise WeightsError(
                    f"{path} holds pickled objects ({member.filename[-60:]}); refused, since "
                    "unpickling runs code",
                    fix=fix,
                )
    return path


def load(path: Path):
    program = torch.export.load(str(_checked(path)))
    module = program.module()

    def run(images: np.ndarray) -> np.ndarray:
        array = np.ascontiguousarray(images, np.uint8)
        with torch.no_grad():
            return module(torch.from_numpy(array.copy())).numpy()

    return run


def read_metadata(path: Path) -> dict[str, str]:
    extra = {EXTRA: ""}
    torch.export.load(str(_checked(path)), extra_files=extra)
    try:
        found = json.loads(extra[EXTRA] or "{}")
    except ValueError:
        found = {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def stamp(path: Path, metadata: dict[str, str]) -> None:
    import os
    import tempfile

    program = torch.export.load(str(_checked(path)))
    handle, name = tempfile.mkstemp(prefix=".partial-", suffix=f"-{path.name}", dir=path.parent)
    os.close(handle)
    try:
        torch.export.save(program, name, extra_files={EXTRA: json.dumps(metadata)})
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)
