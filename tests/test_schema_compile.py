"""compile_json_schema: IR front end + automata, end to end on a toy vocabulary (small schemas:
the automata compiler is tested on its own elsewhere)."""
from __future__ import annotations

import pytest

from structgen.schema import compile_json_schema, json_schema_to_grammar

try:
    from tests.schema_cases.helpers import accepts
except ImportError:
    from schema_cases.helpers import accepts


@pytest.fixture(scope="module")
def vocab():
    from structgen.vocab.builtin import toy_byte_bpe_vocab

    return toy_byte_bpe_vocab()


def test_compile_and_match(vocab):
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 100}},
              "required": ["n"], "additionalProperties": False}
    cg = compile_json_schema(schema, vocab, whitespace="compact")
    assert cg.warnings == []
    m = cg.matcher()
    assert m.accept_string('{"n":42}') and m.is_accepting()
    m = cg.matcher()
    assert not m.accept_string('{"n":420}')


def test_compile_warnings_attached(vocab):
    cg = compile_json_schema({"type": "number", "multipleOf": 0.1}, vocab, lenient=True, whitespace="compact")
    assert len(cg.warnings) == 1 and "multipleOf" in cg.warnings[0]
    assert cg.matcher().accept_string("0.15")


def test_lenient_drops_only_the_failing_feature():
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    g, warnings = json_schema_to_grammar(schema, lenient=True)
    assert any("uniqueItems" in w for w in warnings)
    assert accepts(g, "[1, 1]")         # uniqueness not enforced (declared)
    assert not accepts(g, '["a"]')      # items still enforced
    many = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(10)}}
    g, warnings = json_schema_to_grammar(many, lenient=True, property_order="any")
    assert warnings and accepts(g, '{"p0": 1, "p3": 2}') and not accepts(g, '{"p0": "x"}')
