"""The ``litert`` target: a ``.tflite`` model converted by TensorFlow's converter from the same
serving function as the SavedModel (uint8 images (n, 28, 28) in; logits, probabilities and
class_index out), run by the LiteRT interpreter (``ai_edge_litert`` where installed, else
``tf.lite.Interpreter``). fmnist's metadata is a metadata entry ``fmnist`` of the flatbuffer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fmnist_core import WeightsError
from fmnist_core.plugin_api import atomic_write_bytes

from .engine import tf  # the engine imports TensorFlow as fmnist configures it
from .formats import Serving, _module

KEY = "fmnist"
MAX_BYTES = 2**30


def write(path: Path, weights, metadata: dict[str, str], calibration) -> None:
    serving = Serving(_module(weights))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serving.serve.get_concrete_function()], serving
    )
    atomic_write_bytes(path, _with_metadata(converter.convert(), metadata))


def _with_metadata(model: bytes, metadata: dict[str, str]) -> bytes:
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    parsed = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    entry = schema.MetadataT()
    entry.name = KEY
    entry.buffer = len(parsed.buffers)
    parsed.buffers.append(buffer)
    parsed.metadata = [m for m in (parsed.metadata or []) if m.name not in (KEY, KEY.encode())]
    parsed.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))


def _read(path: Path) -> bytes:
    """The file's bytes, checked as a LiteRT flatbuffer (its identifier, its root table inside
    the file, and a whole parse by TensorFlow's Python schema reader) before any native
    interpreter is handed them."""
    from tensorflow.lite.tools import flatbuffer_utils

    fix = "export it again with `fmnist export --format litert`"
    if path.stat().st_size > MAX_BYTES:
        raise WeightsError(f"{path} is larger than any fmnist export", fix="check the path")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3" or int.from_bytes(data[:4], "little") >= len(data):
        raise WeightsError(f"{path} is not a LiteRT (.tflite) model", fix=fix)
    try:
        parsed = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
        for buffer in parsed.buffers or []:
            if getattr(buffer, "offset", 0) and buffer.offset + buffer.size > len(data):
                raise ValueError("a buffer lies past the end of the file")
        if not parsed.subgraphs:
            raise ValueError("no subgraph")
    except Exception as exc:  # the schema reader's struct.error, IndexError, ...
        raise WeightsError(
            f"{path} is a damaged LiteRT model ({type(exc).__name__}: {str(exc)[:80]})", fix=fix
        ) from None
    return data


def _interpreter(model: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own copy, deprecated (it warns)
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=model, num_threads=os.cpu_count() or 1)


def load(path: Path):
    from .runtime import quiet_native_stderr

    interpreter = _interpreter(_read(path))
    runner = interpreter.get_signature_runner()
    with quiet_native_stderr():  # the interpreter's note on its XNNPACK delegate
        runner(images=np.zeros((1, 28, 28), np.uint8))

    def run(images: np.ndarray) -> np.ndarray:
        return runner(images=np.ascontiguousarray(images, np.uint8))["logits"]

    return run


def read_metadata(path: Path) -> dict[str, str]:
    from tensorflow.lite.tools import flatbuffer_utils

    data = _read(path)
    parsed = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    for entry in parsed.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == KEY:
            data = parsed.buffers[entry.buffer].data
            try:
                found = json.loads(bytes(np.asarray(data, np.uint8)).decode())
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
    return {}


def stamp(path: Path, metadata: dict[str, str]) -> None:
    atomic_write_bytes(path, _with_metadata(_read(path), metadata))
