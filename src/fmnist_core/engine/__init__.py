"""The contract between the core and a framework backend: ``Backend``, ``Engine``, ``Option``,
lowering tables, the optimizer's slots, batching by index, and data-parallel workers."""

from .backend import Backend, Engine, EngineConfig, Option, StepResult, chunked_logits
from .lowering import Lowerings, LoweringTable, lowering_table
from .optimizer_slots import ArrayOps, OptimizerSlots

__all__ = [
    "ArrayOps",
    "Backend",
    "Engine",
    "EngineConfig",
    "LoweringTable",
    "Lowerings",
    "Option",
    "OptimizerSlots",
    "StepResult",
    "chunked_logits",
    "lowering_table",
]
