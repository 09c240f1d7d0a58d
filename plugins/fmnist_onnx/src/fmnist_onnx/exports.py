"""The onnxruntime export targets: ``onnx`` (float, the graph of ``fmnist_core.io.onnx``),
``onnx-int8`` (onnxruntime's static quantiser, QDQ, int8 weights per channel and uint8
activations, calibrated on training images) and ``web`` (a folder: a page, the ONNX model and
onnxruntime-web, classifying in the browser with no server)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

from fmnist_core import WeightsError
from fmnist_core.plugin_api import architecture_of, atomic_write_bytes, build_onnx

MAX_BYTES = 2**30


def _session(path: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the quantised graph's optimiser notes are not the user's
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_onnx(path: Path):
    """uint8 images → logits, by onnxruntime."""
    session = _session(path)
    return lambda images: session.run(
        ["logits"], {"images": np.ascontiguousarray(images, np.uint8)}
    )[0]


def write_onnx(path: Path, weights, metadata: dict[str, str], calibration) -> None:
    model = build_onnx(architecture_of(weights), weights.params, metadata)
    atomic_write_bytes(path, model.SerializeToString())


def _load_model(path: Path) -> onnx.ModelProto:
    if path.stat().st_size > MAX_BYTES:
        raise WeightsError(f"{path} is larger than any fmnist export", fix="check the path")
    return onnx.load(str(path), load_external_data=False)


def read_metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in _load_model(path).metadata_props}


def stamp(path: Path, metadata: dict[str, str]) -> None:
    model = _load_model(path)
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    atomic_write_bytes(path, model.SerializeToString())


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over uint8 training images."""

    def __init__(self, images: np.ndarray, batch: int = 64):
        self.batches = iter([images[i : i + batch] for i in range(0, len(images), batch)])

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {"images": np.ascontiguousarray(batch, np.uint8)}


def write_int8(path: Path, weights, metadata: dict[str, str], calibration) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise WeightsError(
            "int8 quantisation needs training images to calibrate on",
            fix="export from weights whose data folder is readable",
        )
    with tempfile.TemporaryDirectory(prefix="fmnist-int8-") as work:
        source, prepared = Path(work) / "float.onnx", Path(work) / "prepared.onnx"
        write_onnx(source, weights, metadata, calibration)
        # the quantiser logs a warning per 1-d tensor it quantises per tensor: not the user's
        logging.disable(logging.WARNING)
        try:
            # folds BatchNorm into convolutions and infers shapes, as the quantiser's docs advise
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(Path(work) / "int8.onnx"),
                _Calibration(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                # 7-bit weights: 8-bit ones saturate the u8×s8 products of CPUs without VNNI
                # (AVX2, AVX-512 before it), where the file would lose ~0.7 point; with 7
                # bits it computes the same on every x86 CPU
                reduce_range=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        finally:
            logging.disable(logging.NOTSET)
        stamp(Path(work) / "int8.onnx", metadata)
        os.replace(Path(work) / "int8.onnx", path)


# -- web ----------------------------------------------------------------------------------------

ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_WEB_VERSION = "1.31.1"
"""The onnxruntime-web release the page is tested with (``nox -s tests-browser`` packs it)."""


def ort_web_source() -> Path | None:
    """Where onnxruntime-web's files are: ``$FMNIST_ORT_WEB`` (the package folder, its dist/
    folder or the .tgz ``npm pack onnxruntime-web`` writes), else ./node_modules/onnxruntime-web,
    else the copy in fmnist's cache, fetched there once with ``npm pack`` when npm is on PATH
    (``packed_ort_web``)."""
    named = os.environ.get("FMNIST_ORT_WEB")
    if named:
        return Path(named) if Path(named).exists() else None
    local = Path("node_modules/onnxruntime-web")
    if local.exists():
        return local
    return packed_ort_web()


def _integrity(path: Path) -> str:
    import base64
    import hashlib

    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def packed_ort_web() -> Path | None:
    """onnxruntime-web's npm tarball in fmnist's cache: fetched once with ``npm pack`` (npm's
    configured registry) and kept only if its sha512 is the integrity the registry publishes
    (``npm view ... dist.integrity``); None where npm is missing. Says what it does."""
    import subprocess

    from fmnist_core.plugin_api import cache_dir

    folder = Path(cache_dir()) / "onnxruntime-web"
    tarball = folder / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    stamp = folder / f"onnxruntime-web-{ORT_WEB_VERSION}.integrity"
    if tarball.is_file() and stamp.is_file() and stamp.read_text().strip() == _integrity(tarball):
        return tarball
    if shutil.which("npm") is None:
        return None
    spec = f"onnxruntime-web@{ORT_WEB_VERSION}"
    print(f"fmnist: fetching {spec} once with npm pack into {folder}", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as work:
        try:
            published = subprocess.run(
                ["npm", "view", spec, "dist.integrity"],
                capture_output=True, text=True, timeout=300, check=True,
            ).stdout.strip()  # fmt: skip
            subprocess.run(
                ["npm", "pack", spec, "--pack-destination", work],
                capture_output=True, text=True, timeout=600, check=True,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            raise WeightsError(
                f"npm could not fetch {spec} ({type(exc).__name__})",
                fix="run `npm pack onnxruntime-web@1.31.1` yourself and set FMNIST_ORT_WEB to "
                "the .tgz",
            ) from None
        packed = Path(work) / tarball.name
        if not packed.is_file() or _integrity(packed) != published:
            raise WeightsError(
                f"the {spec} tarball npm fetched does not match the integrity its registry "
                "publishes; nothing was kept",
                fix="check npm's registry (npm config get registry), or set FMNIST_ORT_WEB",
            )
        os.replace(packed, tarball)
        stamp.write_text(published + "\n")
    print(f"fmnist: {spec} checked against its published sha512 and kept", flush=True)
    return tarball


def _ort_web_files(source: Path) -> dict[str, bytes]:
    import tarfile

    found: dict[str, bytes] = {}
    if source.is_file():
        try:
            with tarfile.open(source, "r:gz") as archive:
                for name in ORT_WEB_FILES:
                    member = archive.extractfile(f"package/dist/{name}")
                    if member is not None:
                        found[name] = member.read()
        except (tarfile.TarError, KeyError, OSError) as exc:
            raise WeightsError(
                f"{source} is not onnxruntime-web's npm package ({exc})",
                fix="npm pack onnxruntime-web and point FMNIST_ORT_WEB at the .tgz",
            ) from None
    else:
        dist = source / "dist" if (source / "dist").is_dir() else source
        found = {n: (dist / n).read_bytes() for n in ORT_WEB_FILES if (dist / n).is_file()}
    missing = [n for n in ORT_WEB_FILES if n not in found]
    if missing:
        raise WeightsError(
            f"{source} lacks onnxruntime-web's {', '.join(missing)}",
            fix=f"npm pack onnxruntime-web@{ORT_WEB_VERSION} and set FMNIST_ORT_WEB to the .tgz",
        )
    return found


def write_web(path: Path, weights, metadata: dict[str, str], calibration) -> None:
    from fmnist_core.plugin_api import page_asset

    source = ort_web_source()
    if source is None:
        raise WeightsError(
            "the web export vendors onnxruntime-web, which was not found",
            fix=f"run `npm pack onnxruntime-web@{ORT_WEB_VERSION}` and set FMNIST_ORT_WEB to the "
            ".tgz it writes (or its unpacked folder); nothing is fetched when the page loads",
        )
    path.mkdir(parents=True, exist_ok=True)
    for name, data in _ort_web_files(source).items():
        atomic_write_bytes(path / name, data)
    write_onnx(path / "model.onnx", weights, metadata, calibration)
    atomic_write_bytes(path / "page.css", page_asset("page.css"))
    here = Path(__file__).parent / "web"
    for name in ("index.html", "web.js"):
        shutil.copyfile(here / name, path / name)
    stamp_web(path, metadata)


def load_web(path: Path):
    return load_onnx(path / "model.onnx")


def read_web_metadata(path: Path) -> dict[str, str]:
    return read_metadata(path / "model.onnx")


def stamp_web(path: Path, metadata: dict[str, str]) -> None:
    """The model's metadata in model.onnx and, for the page, in model.js (a plain script: a page
    opened from a file may not fetch JSON)."""
    stamp(path / "model.onnx", metadata)
    shown = {
        k: metadata[k]
        for k in ("fmnist_model", "labels", "test_accuracy", "fmnist_gate")
        if k in metadata
    }
    script = f"window.FMNIST_MODEL = {json.dumps(shown)};\n"
    atomic_write_bytes(path / "model.js", script.encode())
