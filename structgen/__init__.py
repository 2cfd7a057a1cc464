"""structgen: constrained generation with exact token masks.

Pipeline: constraint (regex / Lark / JSON Schema) -> grammar IR (`structgen.grammar.ir`)
-> byte-level automata (`structgen.automata`) -> per-sequence `Matcher` -> samplers and
integrations. Public names are imported lazily so `import structgen` stays cheap.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Vocabulary": "structgen.vocab.vocabulary",
    "Grammar": "structgen.grammar.ir",
    "CompiledGrammar": "structgen.automata.compiled",
    "Matcher": "structgen.matcher",
    "compile_grammar": "structgen.automata.compiled",
    "compile_regex": "structgen.automata.compiled",
    "compile_lark": "structgen.automata.compiled",
    "compile_json_schema": "structgen.schema",
    "allocate_token_bitmask": "structgen.matcher",
    "bitmask_to_token_ids": "structgen.matcher",
    "fill_next_token_bitmasks": "structgen.matcher",
    "generate": "structgen.integrations.generate",
    "GrammarAlignedSampler": "structgen.sampling",
    "errors": "structgen.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'structgen' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if name == "errors" else getattr(mod, name)
    globals()[name] = value
    return value
