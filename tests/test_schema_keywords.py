"""Per-keyword exactness of the JSON Schema front end, on the grammar IR (no automata).

For each keyword: instances that jsonschema (format checking on) calls valid and invalid are
serialized with json.dumps (plain, indent=2, compact, ensure_ascii=False) and must be accepted
exactly when valid. The exact key-order mode ("any") is used unless a test says otherwise.
"""
from __future__ import annotations

import json

import pytest

try:
    from tests.schema_cases.helpers import (
        accepts,
        grammar,
        js_valid,
        mismatches,
        serializations,
    )
except ImportError:
    from schema_cases.helpers import (
        accepts,
        grammar,
        js_valid,
        mismatches,
        serializations,
    )
from structgen.errors import InvalidSchema, LimitExceeded, UnsupportedSchema
from structgen.schema import json_schema_to_grammar

A = "any"

CASES = {
    "type-single": ({"type": "integer"}, [1, -3, 0, 1.0, 2.5, "1", None, True, [1], {"a": 1}, 10 ** 30]),
    "type-list": ({"type": ["string", "null"]}, ["x", None, 0, False, [], {}]),
    "type-number": ({"type": "number"}, [1, 1.5, -0.0, 1e300, 1e-300, "1", True]),
    "type-boolean-null": ({"type": ["boolean", "null"]}, [True, False, None, 0, "true"]),
    "enum": ({"enum": ["a", 1, None, [1, "x"], {"k": [True]}, 2.5]},
             ["a", "b", 1, 1.0, True, None, [1, "x"], ["x", 1], {"k": [True]}, {"k": [1]}, 2.5, 2.50001]),
    "enum-escapes": ({"enum": ["a\"b", "tab\there", "é", "😀", "\u2028"]},
                     ["a\"b", "tab\there", "é", "😀", "\u2028", "e", "a'b"]),
    "const-object": ({"const": {"a": 1, "b": [1, 2]}}, [{"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1},
                                                        {"a": 1.0, "b": [1, 2.0]}, {"a": 1}, {"a": 1, "b": [2, 1]}]),
    "const-false-vs-0": ({"const": False}, [False, 0, None, True]),
    "boolean-true": (True, [1, "x", None, [], {"a": [1]}]),
    "boolean-false": ({"not": True}, [1, "x", None]),
    "properties": ({"properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
                   [{}, {"a": 1}, {"a": "x"}, {"b": "x", "a": 2}, {"c": [1]}, 5, "s"]),
    "required": ({"required": ["a", "b"]}, [{"a": 1, "b": 2}, {"a": 1}, {}, {"b": 1, "a": 2, "c": 3}, []]),
    "additionalProperties-false": ({"properties": {"a": {}}, "additionalProperties": False},
                                   [{}, {"a": 1}, {"a": 1, "b": 2}, {"b": 2}]),
    "additionalProperties-schema": ({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}},
                                    [{"a": "x", "b": 1}, {"b": "x"}, {"c": 1, "d": 2}]),
    "additionalProperties-absent-means-true": ({"properties": {"a": {"type": "null"}}},
                                               [{"zzz": [1, {"q": None}]}, {"a": 1}]),
    "patternProperties": ({"patternProperties": {"^x": {"type": "integer"}, "y$": {"minimum": 0}},
                           "additionalProperties": {"type": "string"}},
                          [{"x1": 1}, {"x1": "s"}, {"ay": -1}, {"xy": 3}, {"xy": -3}, {"xy": 3.5}, {"q": "s"},
                           {"q": 1}, {}]),
    "patternProperties-and-properties": ({"properties": {"xa": {"type": "integer"}},
                                          "patternProperties": {"^x": {"minimum": 2}}},
                                         [{"xa": 3}, {"xa": 1}, {"xb": 1}, {"xb": "s"}]),
    "propertyNames": ({"propertyNames": {"maxLength": 2, "pattern": "^[a-z]+$"}},
                      [{}, {"ab": 1}, {"abc": 1}, {"A": 1}, {"a": 1, "b": 2}]),
    "propertyNames-false": ({"propertyNames": False}, [{}, {"a": 1}, [1]]),
    "min-maxProperties": ({"minProperties": 1, "maxProperties": 2, "properties": {"a": {}}},
                          [{}, {"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}, {"b": 1, "c": 2, "d": 3}]),
    "dependentRequired": ({"dependentRequired": {"a": ["b", "c"], "b": ["d"]}},
                          [{}, {"a": 1}, {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1, "d": 1}, {"c": 1},
                           {"b": 1, "d": 1}]),
    "dependentSchemas": ({"dependentSchemas": {"a": {"required": ["b"], "properties": {"b": {"type": "integer"}}}}},
                         [{}, {"b": "x"}, {"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": "x"}]),
    "prefixItems-items": ({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "null"}},
                          [[], [1], [1, "a"], [1, "a", None, None], ["a"], [1, 2], [1, "a", 3]]),
    "items-false": ({"prefixItems": [{}, {}], "items": False}, [[], [1], [1, 2], [1, 2, 3]]),
    "items-schema": ({"items": {"type": "integer", "minimum": 0}}, [[], [0, 5], [-1], [1, "x"], "x"]),
    "min-maxItems": ({"minItems": 2, "maxItems": 3}, [[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]),
    "contains": ({"contains": {"type": "integer"}}, [[], [1], ["a"], ["a", 1, "b"], [1.5]]),
    "min-maxContains": ({"contains": {"const": 1}, "minContains": 2, "maxContains": 3},
                        [[1], [1, 1], [1, 2, 1, 3, 1], [1, 1, 1, 1], [2, 3]]),
    "minContains-0": ({"contains": {"type": "string"}, "minContains": 0, "maxContains": 1},
                      [[], [1, 2], ["a"], ["a", "b"]]),
    "contains-with-prefix": ({"prefixItems": [{"type": "string"}], "contains": {"type": "string"},
                              "maxContains": 1}, [["a"], ["a", "b"], ["a", 1], [1]]),
    "uniqueItems-enum": ({"items": {"enum": [1, "a", None, True]}, "uniqueItems": True},
                         [[], [1, "a"], [1, 1], [1, 1.0], [1, True], [None, None], ["a", None, True, 1]]),
    "uniqueItems-boolean-tuple": ({"prefixItems": [{"type": "boolean"}, {"type": "boolean"}],
                                   "items": False, "uniqueItems": True},
                                  [[True, False], [True, True], [False], []]),
    "uniqueItems-maxItems-1": ({"maxItems": 1, "uniqueItems": True}, [[], [{"a": 1}], [1, 2]]),
    "minLength-maxLength": ({"minLength": 2, "maxLength": 3}, ["", "a", "ab", "abc", "abcd", "é😀", "😀😀😀😀", 5]),
    "pattern": ({"pattern": "^[a-c]+x?$"}, ["abc", "abx", "x", "", "abcxx", "ABC", 3]),
    "pattern-unanchored": ({"pattern": "b.d"}, ["abcde", "bxd", "bd", "b\nd", "xxbyd"]),
    "pattern-with-length": ({"pattern": "^a", "minLength": 2, "maxLength": 3}, ["a", "ab", "abc", "abcd", "ba"]),
    "pattern-escapes": ({"pattern": "^\"\\\\\\n$"}, ["\"\\\n", "\"\\n", "x"]),
    "minimum-maximum": ({"minimum": -2.5, "maximum": 10}, [-2.5, -2.6, 0, 10, 10.0, 10.01, 1e1, "5"]),
    "exclusive": ({"exclusiveMinimum": 0, "exclusiveMaximum": 1.5}, [0, 0.0, 1e-9, 1, 1.5, 1.49999, -1]),
    "integer-range": ({"type": "integer", "minimum": 3, "maximum": 1000}, [2, 3, 3.0, 999, 1000, 1001, 3.5]),
    "multipleOf-int": ({"type": "integer", "multipleOf": 6}, [0, 6, -12, 7, 6.0, 3]),
    # (14.0 is valid but not accepted: "I.0" spellings need a bounded remainder automaton for 7)
    "multipleOf-7": ({"multipleOf": 7, "minimum": 0}, [0, 7, 700, 701, -7, 14.5, 7 * 10 ** 20]),
    "multipleOf-bounded": ({"multipleOf": 3, "minimum": 10, "maximum": 10000}, [9, 12, 9999, 10002, 30.0]),
    "allOf-merge": ({"allOf": [{"type": "integer"}, {"minimum": 3}, {"maximum": 5}]}, [2, 3, 5, 6, 4.0, 4.5]),
    "allOf-objects": ({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                                 {"properties": {"a": {"minimum": 3}, "b": {"type": "string"}}}]},
                      [{"a": 3}, {"a": 2}, {"a": 3, "b": "s"}, {"a": 3, "b": 1}, {"b": "s"}]),
    "allOf-additional": ({"allOf": [{"properties": {"a": {}}, "additionalProperties": False},
                                    {"properties": {"b": {}}}]}, [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 1}]),
    "anyOf": ({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 5}]},
              ["ab", "abc", 5, 4, 5.5, None]),
    "oneOf-disjoint": ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, ["a", 1, 1.5, None]),
    "oneOf-overlapping": ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 2, 2.5, 3, "x", 1.5]),
    "oneOf-discriminator": ({"oneOf": [{"properties": {"k": {"const": "a"}, "v": {"type": "integer"}},
                                        "required": ["k"]},
                                       {"properties": {"k": {"const": "b"}, "v": {"type": "string"}},
                                        "required": ["k"]}]},
                            [{"k": "a", "v": 1}, {"k": "b", "v": "s"}, {"k": "a", "v": "s"}, {"k": "c"}]),
    "not-type": ({"not": {"type": ["string", "integer"]}}, ["a", 1, 1.5, None, [1], {}]),
    "not-enum": ({"not": {"enum": ["a", 1, None]}}, ["a", "b", 1, 1.0, 2, None, False]),
    "not-required": ({"not": {"required": ["a"]}}, [{}, {"a": 1}, {"b": 1}, 3]),
    "not-bounds": ({"type": "number", "not": {"minimum": 1, "maximum": 2}}, [0, 1, 1.5, 2, 2.5]),
    "not-pattern": ({"type": "string", "not": {"pattern": "^a"}}, ["abc", "bac", ""]),
    "oneOf-closed-objects": ({"oneOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
                                        {"properties": {"b": {}}, "additionalProperties": {"type": "string"}}]},
                             [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 2}, {"c": "s"}, {"c": 1}, {"a": "x"},
                              {"a": 1, "c": "s"}, 3]),
    "not-patternProperties": ({"type": "object", "not": {"patternProperties": {"^x": {"type": "integer"}}}},
                              [{}, {"x1": 1}, {"x1": "s"}, {"y": "s"}, {"x1": 1, "x2": "s"}]),
    "not-additionalProperties": ({"not": {"properties": {"a": {}}, "additionalProperties": {"type": "null"}}},
                                 [{}, {"a": 1}, {"b": None}, {"b": 1}, {"a": 1, "b": None, "c": 2}, "s"]),
    "if-then-else": ({"if": {"properties": {"t": {"const": "n"}}, "required": ["t"]},
                      "then": {"properties": {"v": {"type": "number"}}},
                      "else": {"properties": {"v": {"type": "string"}}}},
                     [{"t": "n", "v": 1}, {"t": "n", "v": "s"}, {"t": "s", "v": "s"}, {"t": "s", "v": 1},
                      {"v": 1}, {"v": "x"}]),
    "if-then-only": ({"if": {"type": "integer"}, "then": {"minimum": 10}}, [5, 10, 5.5, "x"]),
    "ref-defs": ({"$defs": {"pos": {"type": "integer", "minimum": 1}}, "items": {"$ref": "#/$defs/pos"}},
                 [[1, 2], [0], ["x"]]),
    "ref-definitions": ({"definitions": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/definitions/s"}}},
                        [{"a": "x"}, {"a": 1}]),
    "ref-root-recursion": ({"type": "object", "properties": {"c": {"type": "array", "items": {"$ref": "#"}}},
                            "additionalProperties": False},
                           [{}, {"c": []}, {"c": [{"c": [{}]}]}, {"c": [{"d": 1}]}, {"c": [1]}]),
    "ref-anchor": ({"$defs": {"x": {"$anchor": "thing", "type": "boolean"}}, "items": {"$ref": "#thing"}},
                   [[True], [1]]),
    "ref-id-relative": ({"$id": "https://example.com/root.json",
                         "$defs": {"b": {"$id": "sub/b.json", "$defs": {"c": {"type": "null"}},
                                         "items": {"$ref": "#/$defs/c"}}},
                         "properties": {"p": {"$ref": "sub/b.json"}}},
                        [{"p": [None]}, {"p": [1]}]),
    "mutual-recursion": ({"$defs": {"a": {"type": "array", "items": {"$ref": "#/$defs/b"}},
                                    "b": {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/a"}]}},
                          "$ref": "#/$defs/a"}, [[], [1, [2, [3, []]]], [1, ["x"]], 1]),
    "format-date": ({"format": "date"}, ["2020-02-29", "2021-02-29", "2020-13-01", "20200101", 3]),
    "format-ipv4": ({"format": "ipv4"}, ["1.2.3.4", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3"]),
    "format-uuid": ({"format": "uuid"}, ["12345678-1234-1234-1234-123456789abc",
                                         "12345678-1234-1234-1234-123456789abg", "1234"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_keyword_exact(name):
    schema, values = CASES[name]
    assert mismatches(schema, values) == []


@pytest.mark.parametrize("ws", ["compact", {"indent": 2}, {"indent": 0}])
@pytest.mark.parametrize("name", ["enum", "properties", "prefixItems-items", "min-maxContains",
                                  "ref-root-recursion", "dependentRequired", "uniqueItems-enum"])
def test_keyword_exact_other_layouts(name, ws):
    schema, values = CASES[name]
    assert mismatches(schema, values, whitespace=ws) == []


def test_schema_order_accepts_schema_ordered_objects():
    schema = {"properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {}},
              "required": ["b"], "additionalProperties": {"type": "boolean"}}
    g, _ = grammar(schema, property_order="schema")
    for v, ok in [({"b": "x"}, True), ({"a": 1, "b": "x"}, True), ({"a": 1, "b": "x", "c": [1], "z": True}, True),
                  ({"b": "x", "a": 1}, False),  # valid, but not in schema order
                  ({"a": 1}, False), ({"b": "x", "z": 1}, False)]:
        for text in serializations(v):
            assert accepts(g, text) == ok, text
    # the "schema" mode is a subset of the exact one
    ga, _ = grammar(schema, property_order="any")
    assert accepts(ga, json.dumps({"b": "x", "a": 1}))


def test_any_order_limit_names_the_count():
    schema = {"properties": {f"p{i}": {} for i in range(9)}}
    with pytest.raises(UnsupportedSchema) as ei:
        json_schema_to_grammar(schema, property_order="any")
    assert ei.value.keyword == "properties" and "9" in str(ei.value)
    json_schema_to_grammar(schema, property_order="schema")


def test_any_order_each_key_once():
    g, _ = grammar({"properties": {"a": {}, "b": {}}, "additionalProperties": False}, property_order="any")
    assert accepts(g, '{"b": 1, "a": 2}')
    assert not accepts(g, '{"a": 1, "a": 2}')


def test_flexible_order_tracks_only_keys_that_matter():
    props = {f"p{i}": {"type": "integer"} for i in range(12)}
    schema = {"properties": props, "required": ["p11", "p3"], "additionalProperties": False}
    with pytest.raises(UnsupportedSchema):
        json_schema_to_grammar(schema, property_order="any")  # 12 keys: too many subsets
    g, warnings = grammar(schema, property_order="flexible")
    assert warnings == []
    assert accepts(g, '{"p11": 1, "p0": 2, "p3": 3}')  # any order
    assert not accepts(g, '{"p11": 1, "p0": 2}')  # a required key is missing
    assert not accepts(g, '{"p3": 1, "p11": 2, "p3": 3}')  # a tracked key twice
    assert not accepts(g, '{"p3": 1, "p11": "x"}')  # values still checked
    assert accepts(g, '{"p3": 1, "p11": 2, "p0": 3, "p0": 4}')  # untracked: not deduplicated


def test_flexible_order_min_properties_tracks_every_key():
    g, _ = grammar({"properties": {"a": {}, "b": {}}, "minProperties": 2}, property_order="flexible")
    assert accepts(g, '{"b": 1, "a": 2}')
    assert not accepts(g, '{"a": 1, "a": 2}')  # two members, but one key


def test_flexible_order_falls_back_to_schema_order():
    schema = {"properties": {f"p{i}": {} for i in range(10)}, "required": [f"p{i}" for i in range(10)]}
    g, warnings = grammar(schema, property_order="flexible")
    assert any("schema order" in w for w in warnings)
    ordered = json.dumps({f"p{i}": i for i in range(10)})
    assert accepts(g, ordered)
    assert not accepts(g, json.dumps({f"p{i}": i for i in reversed(range(10))}))


def test_flexible_order_compile_falls_back_when_automata_are_too_big(small_vocab, monkeypatch):
    import structgen.automata.compiled as C

    real = C.compile_grammar
    calls = []

    def once_too_big(grammar, vocab, **kw):
        if "warnings" not in grammar.meta:  # the engine's own warm-up grammar
            return real(grammar, vocab, **kw)
        calls.append(grammar)
        if len(calls) == 1:
            raise LimitExceeded("DFA exceeds 1 states")
        return real(grammar, vocab, **kw)

    monkeypatch.setattr(C, "compile_grammar", once_too_big)
    import structgen.automata as A
    monkeypatch.setattr(A, "compile_grammar", once_too_big, raising=False)
    from structgen.schema import compile_json_schema

    cg = compile_json_schema({"properties": {"a": {}, "b": {}}}, small_vocab, property_order="flexible")
    assert len(calls) == 2 and any("schema order" in w for w in cg.warnings)
    with pytest.raises(LimitExceeded):
        calls.clear()
        compile_json_schema({"properties": {"a": {}}}, small_vocab, property_order="schema")


def test_whitespace_bounded():
    g, _ = grammar({"type": "array"}, max_whitespace=4)
    assert accepts(g, "[    1]")
    assert not accepts(g, "[     1]")
    g2, _ = grammar({"type": "object", "properties": {"a": {"type": "array"}}})
    nested = {"a": [[[[[[1]]]]]]}
    assert accepts(g2, json.dumps(nested, indent=2))
    assert not accepts(g2, "{" + " " * 100 + "}")


def test_indent_layout_is_exact():
    g, _ = grammar({"type": "object"}, whitespace={"indent": 2})
    v = {"a": [1, {"b": []}], "c": {}}
    assert accepts(g, json.dumps(v, indent=2))
    assert not accepts(g, json.dumps(v))
    assert not accepts(g, json.dumps(v, indent=4))


def test_compact_layout():
    g, _ = grammar({"type": "array"}, whitespace="compact")
    assert accepts(g, "[1,2]")
    assert not accepts(g, "[1, 2]")


def test_unsupported_errors_name_keyword_and_pointer():
    cases = [
        ({"properties": {"a": {"type": "number", "multipleOf": 0.1}}}, "multipleOf", "#/properties/a"),
        ({"items": {"uniqueItems": True}}, "uniqueItems", "#/items"),
        ({"properties": {"x": {"format": "regex"}}}, "format", "#/properties/x"),
        ({"$ref": "https://example.com/other.json"}, "$ref", "#"),
        ({"nullable": True}, "nullable", "#"),
        ({"oneOf": [{"minimum": 1}, {"format": "uuid"}]}, "oneOf", "#"),
    ]
    for schema, kw, ptr in cases:
        with pytest.raises(UnsupportedSchema) as ei:
            json_schema_to_grammar(schema)
        assert ei.value.keyword == kw, (schema, ei.value)
        if ptr:
            assert ei.value.pointer == ptr, (schema, ei.value.pointer)


def test_lenient_mode_lists_what_it_ignored():
    schema = {"properties": {"a": {"type": "number", "multipleOf": 0.1}, "b": {"format": "regex"}}}
    g, warnings = json_schema_to_grammar(schema, lenient=True)
    assert len(warnings) == 2 and any("multipleOf" in w for w in warnings)
    assert accepts(g, '{"a": 0.15, "b": "("}')  # over-approximation, as declared
    assert not accepts(g, '{"a": "x"}')  # everything else still enforced


def test_annotations_ignored_and_invalid_schemas_rejected():
    g, w = grammar({"title": "t", "description": "d", "examples": [1], "default": 2, "$comment": "c",
                    "deprecated": True, "readOnly": True, "x-vendor": 1, "type": "integer"})
    assert accepts(g, "1") and not accepts(g, '"a"') and w == []
    for bad in [{"type": "integr"}, {"minLength": -1}, {"required": "a"}, {"enum": 3}, 5]:
        with pytest.raises(InvalidSchema):
            json_schema_to_grammar(bad)


def test_limits():
    from structgen.schema import Limits

    with pytest.raises(LimitExceeded):
        json_schema_to_grammar({"enum": list(range(20))}, limits=Limits(max_enum=10))
    with pytest.raises(LimitExceeded):
        json_schema_to_grammar({"properties": {str(i): {} for i in range(50)}}, limits=Limits(max_schema_nodes=20))
    deep = {"$ref": "#/$defs/d0", "$defs": {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(300)}}
    deep["$defs"]["d300"] = {"type": "null"}
    with pytest.raises(LimitExceeded):
        json_schema_to_grammar(deep)


def test_unguarded_self_reference_is_an_error():
    with pytest.raises(UnsupportedSchema):
        json_schema_to_grammar({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"})


def test_draft7_items_array_and_additionalItems():
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "integer"}],
              "additionalItems": {"type": "string"}}
    values = [[], [1], [1, "a"], ["a"], [1, 2]]
    assert mismatches(schema, values, draft="7") == []


def test_draft7_dependencies_and_ref_siblings():
    schema = {"$schema": "http://json-schema.org/draft-07/schema#",
              "definitions": {"i": {"type": "integer"}},
              "properties": {"a": {"$ref": "#/definitions/i", "type": "string"}},  # sibling ignored
              "dependencies": {"a": ["b"], "c": {"required": ["d"]}}}
    values = [{"a": 1, "b": 0}, {"a": 1}, {"a": "s", "b": 0}, {"c": 1}, {"c": 1, "d": 1}, {}]
    assert mismatches(schema, values, draft="7") == []


def test_schema_inputs():
    g1, _ = json_schema_to_grammar('{"type": "integer"}')
    assert accepts(g1, "3")
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):
        name: str
        price: float
        tags: list[str] = pydantic.Field(default_factory=list)

    g, _ = json_schema_to_grammar(Item)
    assert accepts(g, json.dumps({"name": "x", "price": 1.5}))
    assert accepts(g, json.dumps({"name": "x", "price": 1, "tags": ["a"]}))
    assert not accepts(g, json.dumps({"price": 1.5}))
    assert js_valid(Item.model_json_schema(), {"name": "x", "price": 1.5})


def test_oneof_overlapping_with_format_complement():
    # email's complement is known exactly (jsonschema accepts any string with "@"), so oneOf works
    schema = {"oneOf": [{"minLength": 3}, {"format": "email"}]}
    bad = mismatches(schema, ["ab", "abc", "a@b", "x@y.com", "x@", 5, None])
    # the only difference: "x@" passes jsonschema's email check but is no RFC 5321 mailbox
    assert {m[0] for m in bad} == {"x@"} and all(m[2] and not m[3] for m in bad)


def test_long_tuples_and_wide_objects_stay_shallow():
    schema = {"prefixItems": [{"const": i} for i in range(100)], "minItems": 50}
    g, _ = grammar(schema)
    assert accepts(g, json.dumps(list(range(60)))) and not accepts(g, json.dumps(list(range(40))))
    assert not accepts(g, json.dumps(list(range(59)) + [0]))
    wide = {"properties": {f"p{i}": {"type": "integer"} for i in range(400)}, "required": ["p399"]}
    g, _ = grammar(wide, property_order="schema")
    assert accepts(g, json.dumps({"p3": 1, "p399": 2})) and not accepts(g, json.dumps({"p3": 1}))
