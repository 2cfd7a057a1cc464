"""Property tests: random JSON values agree with jsonschema; random grammar sentences are valid.

Two directions: hypothesis-generated values must be accepted iff jsonschema says valid (the exact
"any" key order), and strings sampled from the grammar itself (tests/oracle.random_sentence) must
parse as JSON and validate -- which would catch any under-constraint the value tests miss.
"""
from __future__ import annotations

import json
import random
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    from tests.oracle import random_sentence
    from tests.schema_cases.helpers import accepts, grammar, js_valid
except ImportError:
    from oracle import random_sentence
    from schema_cases.helpers import accepts, grammar, js_valid

SCHEMAS = {
    "object": {"type": "object", "properties": {"a": {"type": "integer", "minimum": -3, "maximum": 40},
                                                "b": {"type": "string", "maxLength": 3, "pattern": "^[ab]*$"},
                                                "c": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}},
               "required": ["a"], "additionalProperties": {"type": "null"}, "maxProperties": 3},
    "numbers": {"type": "array", "items": {"anyOf": [{"type": "integer", "multipleOf": 5},
                                                     {"type": "number", "exclusiveMinimum": 0.5, "maximum": 2.25}]}},
    "contains": {"type": "array", "contains": {"type": "string"}, "minContains": 1, "maxContains": 2,
                 "maxItems": 4},
    "oneof": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 2}, {"const": "x"}]},
    "conditional": {"type": "object", "if": {"required": ["a"]}, "then": {"properties": {"b": {"type": "string"}},
                                                                          "required": ["b"]},
                    "else": {"maxProperties": 1}, "propertyNames": {"enum": ["a", "b", "c"]}},
    "recursive": {"$defs": {"t": {"type": "object", "properties": {"v": {"type": "integer"},
                                                                   "kids": {"type": "array",
                                                                            "items": {"$ref": "#/$defs/t"}}},
                                  "required": ["v"], "additionalProperties": False}},
                  "$ref": "#/$defs/t"},
    "not": {"not": {"anyOf": [{"type": "string", "minLength": 2}, {"type": "integer"}, {"required": ["a"]}]}},
    "unique": {"type": "array", "items": {"enum": [1, 2, "x", None]}, "uniqueItems": True},
    "patterns": {"type": "object", "patternProperties": {"^a": {"type": "integer"}, "b$": {"minimum": 0}},
                 "additionalProperties": False},
}

_KEYS = st.sampled_from(["a", "b", "c", "ab", "kids", "v", "x"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-50, 50),
                     st.floats(-5, 5, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 2)),
                     st.sampled_from(["", "a", "ab", "ba", "x", "abc", "é"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(_KEYS, inner, max_size=4)),
                     max_leaves=8)


@pytest.mark.parametrize("order", ["any", "flexible"])
@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(value=_JSON)
def test_values_agree_with_jsonschema(name, order, value):
    schema = SCHEMAS[name]
    g, _ = grammar(schema, property_order=order)
    want = js_valid(schema, value)
    for text in (json.dumps(value), json.dumps(value, indent=2, ensure_ascii=False)):
        assert accepts(g, text) == want, text


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


@pytest.mark.parametrize("order", ["any", "schema", "flexible"])
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_grammar_sentences_are_valid(name, order):
    schema = SCHEMAS[name]
    g, _ = grammar(schema, property_order=order)
    rng = random.Random(zlib.crc32(f"{name}/{order}".encode()))  # hash() varies per process
    checked = 0
    for _ in range(60):
        text = random_sentence(g, rng, max_depth=8).decode("utf-8")
        try:
            # "flexible" order repeats untracked keys on purpose: judge what a parser keeps
            value = json.loads(text) if order == "flexible" else json.loads(text, object_pairs_hook=_no_duplicates)
        except ValueError as ex:
            if "duplicate" in str(ex):
                continue  # duplicate additional keys: outside what JSON texts should contain
            raise AssertionError(f"grammar produced non-JSON {text!r}") from ex
        assert js_valid(schema, value), text
        checked += 1
    assert checked >= 30
