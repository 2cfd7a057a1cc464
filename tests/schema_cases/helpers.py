"""Helpers for the JSON Schema tests: compile to IR, serialize instances, decide membership.

Membership is decided by the shared Earley oracle (tests/oracle.py) on the grammar IR -- no
automata involved -- and validity by jsonschema with format checking on.
"""
from __future__ import annotations

import json
from functools import lru_cache

import jsonschema

try:
    from tests.oracle import earley_accepts
except ImportError:  # tests/ not a package on this path
    from oracle import earley_accepts
from structgen.schema import json_schema_to_grammar

_VALIDATORS = {"2020-12": jsonschema.Draft202012Validator, "7": jsonschema.Draft7Validator}


def js_valid(schema, value, draft: str = "2020-12") -> bool:
    cls = _VALIDATORS[draft]
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)


@lru_cache(maxsize=512)
def _grammar(schema_text: str, opts: str):
    return json_schema_to_grammar(json.loads(schema_text), **json.loads(opts))


def grammar(schema, **opts):
    """(Grammar, warnings), cached by the schema's JSON text and the options."""
    return _grammar(json.dumps(schema, sort_keys=False), json.dumps(opts, sort_keys=True))


def accepts(g, text: str | bytes) -> bool:
    return earley_accepts(g, text.encode("utf-8") if isinstance(text, str) else text)


def serializations(value, whitespace="flexible") -> list[str]:
    """The texts a layout must accept for `value`."""
    if whitespace == "compact":
        return [json.dumps(value, separators=(",", ":")),
                json.dumps(value, separators=(",", ":"), ensure_ascii=False)]
    if isinstance(whitespace, dict):
        return [json.dumps(value, indent=whitespace["indent"]),
                json.dumps(value, indent=whitespace["indent"], ensure_ascii=False)]
    return [json.dumps(value), json.dumps(value, ensure_ascii=False), json.dumps(value, indent=2),
            json.dumps(value, separators=(",", ":"))]


def mismatches(schema, values, *, draft="2020-12", **opts) -> list[tuple]:
    """(value, text, expected, got) for every serialization whose membership differs from
    jsonschema's verdict. Default options: property_order='any' (the exact mode)."""
    opts.setdefault("property_order", "any")
    g, _w = grammar(schema, draft=draft, **opts)
    out = []
    for v in values:
        want = js_valid(schema, v, draft)
        for text in serializations(v, opts.get("whitespace", "flexible")):
            got = accepts(g, text)
            if got != want:
                out.append((v, text, want, got))
    return out
