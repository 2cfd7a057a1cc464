"""Monitors: static analysis inside decoding (monitor-guided decoding, MGD).

- `structgen.monitors.base`: the protocol (`Monitor`), mask helpers (`intersect`, `combined_mask`,
  `fill_monitor_bitmasks`) and a reference decode loop (`monitored_greedy`).
- `structgen.monitors.python_deref`: `DereferenceMonitor` (jedi in-process) for Python.

jedi and parso are imported only when a dereference monitor is used.
"""
from structgen.monitors.base import (
    Monitor,
    apply_mask,
    combined_mask,
    fill_monitor_bitmasks,
    full_mask,
    ids_to_mask,
    intersect,
    mask_to_bool,
    mask_to_ids,
    monitored_greedy,
    sampling_choice,
)
from structgen.monitors.python_deref import (
    DereferenceMonitor,
    JediAnalysis,
    StaticAnalysis,
    TokenIndex,
    is_deref_dot,
)

__all__ = [
    "DereferenceMonitor",
    "JediAnalysis",
    "Monitor",
    "StaticAnalysis",
    "TokenIndex",
    "apply_mask",
    "combined_mask",
    "fill_monitor_bitmasks",
    "full_mask",
    "ids_to_mask",
    "intersect",
    "is_deref_dot",
    "mask_to_bool",
    "mask_to_ids",
    "monitored_greedy",
    "sampling_choice",
]
