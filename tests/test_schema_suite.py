"""JSON-Schema-Test-Suite, fast subset, at the grammar-IR level (membership by the Earley oracle).

Every group of the selected files must either compile and decide every instance exactly as the
suite says, or be one of the recorded unsupported groups (an UnsupportedSchema error: fail
closed). The full run with a per-file table is benchmarks/json_schema_test_suite.py.
"""
from __future__ import annotations

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "jsts_ir", os.path.join(os.path.dirname(HERE), "benchmarks", "json_schema_test_suite.py"))
jsts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jsts)

if not os.path.isdir(os.path.join(jsts.SUITE, "tests")):
    pytest.skip("JSON-Schema-Test-Suite data not available", allow_module_level=True)

# (draft, file) -> descriptions of groups that must raise UnsupportedSchema (all others: exact)
EXPECTED_UNSUPPORTED = {
    ("draft2020-12", "defs"): {"validate definition against metaschema"},
    ("draft2020-12", "multipleOf"): {"by number", "by small number", "float division = inf",
                                     "small multiple of large integer"},
    ("draft2020-12", "not"): {"collect annotations inside a 'not', even if collection is disabled"},
    ("draft2020-12", "ref"): {"remote ref, containing refs itself"},
    ("draft2020-12", "uniqueItems"): {"uniqueItems validation", "uniqueItems with an array of items"},
    ("draft7", "definitions"): {"validate definition against metaschema"},
    ("draft7", "multipleOf"): {"by number", "by small number", "float division = inf",
                               "small multiple of large integer"},
    ("draft7", "ref"): {"remote ref, containing refs itself"},
    ("draft7", "uniqueItems"): {"uniqueItems validation", "uniqueItems with an array of items"},
}

FAST = [("draft2020-12", f) for f in (
    "additionalProperties", "allOf", "anchor", "anyOf", "boolean_schema", "const", "content", "default", "defs",
    "dependentRequired", "dependentSchemas", "enum", "exclusiveMaximum", "exclusiveMinimum", "if-then-else",
    "infinite-loop-detection", "items", "maxContains", "maxItems", "maxLength", "maxProperties", "maximum",
    "minContains", "minItems", "minLength", "minProperties", "minimum", "multipleOf", "not", "oneOf", "pattern",
    "prefixItems", "properties", "propertyNames", "ref", "required", "type", "uniqueItems")] + \
    [("draft7", f) for f in ("additionalItems", "definitions", "dependencies", "items", "multipleOf", "ref",
                             "uniqueItems")]


@pytest.fixture(scope="module")
def env():
    return jsts.make_matcher(use_oracle=True), jsts.remote_resources()


@pytest.mark.parametrize("draft,name", FAST, ids=[f"{d}/{n}" for d, n in FAST])
def test_suite_file(env, draft, name):
    accepts, resources = env
    fr = jsts.run_file(draft, name, "any", accepts, resources, timeout_s=30)
    expected = EXPECTED_UNSUPPORTED.get((draft, name), set())
    problems = []
    for g in fr["groups"]:
        if g["description"] in expected:
            if g["status"] != "unsupported":
                problems.append(("now supported? update EXPECTED_UNSUPPORTED", g["description"], g["tests"]))
            continue
        if g["status"] != "ok" or any(t != "pass" for t in g["tests"]):
            bad = [(d, t) for d, t in zip(g["test_descriptions"], g["tests"]) if t != "pass"]
            problems.append((g["description"], g["status"], g.get("error"), bad))
    assert problems == []
