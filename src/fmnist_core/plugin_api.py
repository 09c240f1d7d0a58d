"""The public API for plugin authors: everything a backend, layer or weight-format plugin needs
from the core, and nothing else (docs/plugins.md). The plugins in this repository import only
this module and ``fmnist_core``'s top level (an import-linter contract in ``nox -s lint``).

- a backend: ``Backend``, ``Option``, ``Engine``, ``EngineConfig``, ``StepResult``, a lowering
  table (``LoweringTable``, ``lowering_table``), the optimizer update (``OptimizerSlots``,
  ``ArrayOps``, ``updated``), the loss (``per_sample_loss`` through ``LossOps``), blocks of
  steps (``pad_block``, ``shard``) and workers (``free_ports``, ``launch_local``,
  ``worker_rank``, ``peer_failure``, ``peer_reason``, ``port_in_use``);
- a layer: ``Layer``, ``ParamSpec``, ``hyper``, ``ReferenceOp``, ``ReferenceState``,
  ``LAYOUTS``, ``image_shape``, ``layer_types``;
- a weight format: ``WeightFormat``, ``Weights``, ``architecture_of``, ``models``,
  ``build_onnx``, ``atomic_write_bytes``;
- ejected programs: ``EjectionTable``, ``Ejections``, ``ProgramLines`` and the text helpers
  ``block``, ``escaped``, ``keras_optimizer``, ``keras_loss``;
- an export target: ``ExportTarget``, ``export_metadata``, ``page_asset`` (the serve page's
  files, for a page that looks the same);
- every plugin: ``hookimpl``, ``load_on_call`` and the errors.
"""

from __future__ import annotations

from .atomic import atomic_write_bytes
from .data.dataset import cache_dir
from .engine.backend import Backend, Engine, EngineConfig, Option, StepResult
from .engine.batching import pad_block, shard
from .engine.ejection import (
    Ejections,
    EjectionTable,
    ProgramLines,
    block,
    escaped,
    keras_loss,
    keras_optimizer,
)
from .engine.loss import LossOps, per_sample_loss
from .engine.lowering import Lowerings, LoweringTable, lowering_table
from .engine.optimizer_slots import ArrayOps, OptimizerSlots, updated
from .engine.workers import (
    free_ports,
    launch_local,
    peer_failure,
    peer_reason,
    port_in_use,
    worker_rank,
)
from .errors import (
    BackendError,
    ConfigError,
    ExportError,
    FmnistError,
    TrainingError,
    WeightsError,
)
from .hookspecs import hookimpl
from .io.exports import ExportTarget, export_metadata
from .io.onnx import build_onnx
from .io.weights import WeightFormat, Weights, architecture_of
from .plugins import layer_types, load_on_call, models
from .spec.layer import LAYOUTS, Layer, ParamSpec, ReferenceOp, ReferenceState, hyper, image_shape
from .spec.model import ModelSpec

__all__ = [
    "cache_dir",
    "ArrayOps",
    "Backend",
    "BackendError",
    "ConfigError",
    "Engine",
    "EngineConfig",
    "ExportError",
    "ExportTarget",
    "FmnistError",
    "LAYOUTS",
    "Layer",
    "LossOps",
    "LoweringTable",
    "EjectionTable",
    "Ejections",
    "ProgramLines",
    "block",
    "escaped",
    "keras_loss",
    "keras_optimizer",
    "Lowerings",
    "ModelSpec",
    "Option",
    "OptimizerSlots",
    "ParamSpec",
    "ReferenceOp",
    "ReferenceState",
    "StepResult",
    "TrainingError",
    "WeightFormat",
    "Weights",
    "WeightsError",
    "architecture_of",
    "atomic_write_bytes",
    "build_onnx",
    "export_metadata",
    "free_ports",
    "hookimpl",
    "hyper",
    "image_shape",
    "launch_local",
    "layer_types",
    "load_on_call",
    "lowering_table",
    "models",
    "page_asset",
    "pad_block",
    "peer_failure",
    "peer_reason",
    "per_sample_loss",
    "port_in_use",
    "shard",
    "updated",
    "worker_rank",
]


def page_asset(name: str) -> bytes:
    """A file of ``fmnist serve``'s page (``page.css``, ``page.js``, ``index.html``)."""
    from importlib.resources import files

    if name not in ("page.css", "page.js", "index.html"):
        raise ValueError(f"no page asset {name!r}")
    return (files("fmnist_core.apps") / "page" / name).read_bytes()
