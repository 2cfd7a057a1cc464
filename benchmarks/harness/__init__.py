"""Benchmark harness: one measurement loop, one tokenization, one adapter per engine.

- `engines`: the shared Llama-3 vocabulary/tokenizer and the engine adapters
  (structgen, xgrammar, llguidance, outlines-core, and a `selftest` engine for the harness itself).
- `worker`: the per-engine worker subprocess (time limit, memory cap, crash isolation) and
  the measurement loop.
- `results`: JSONL results, resuming, statistics and the tables the CLIs print.
"""
from __future__ import annotations

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_ROOT = os.environ.get("STRUCTGEN_BENCH_DATA", os.path.join(os.path.dirname(REPO_ROOT), "shared", "data"))


def ensure_repo_on_path() -> None:
    """Make `structgen` and `benchmarks` importable when run from a checkout."""
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
