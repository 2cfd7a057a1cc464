"""JSON Schema front end: schema -> grammar IR (`json_schema_to_grammar`) -> compiled grammar.

The grammar accepts exactly the JSON texts that are valid under the schema, modulo the whitespace
and escape policies below, or compilation fails with `UnsupportedSchema` naming the keyword and
JSON pointer. With `lenient=True` such a keyword is ignored (an over-approximation) and listed in
the returned warnings. "Valid" means valid for jsonschema (Draft 2020-12 / Draft 7, format checking
on) AND under the RFCs the formats cite: where the two disagree we accept only what both accept.

Pipeline: `_loader` (inputs, drafts, $id/$anchor index, $ref) -> `_compiler` normalizes each
schema node to a union of single-typed records (`_model`; allOf = merge, anyOf = union, not/oneOf/
if = record complements) -> emits one IR rule per distinct sub-schema, referenced with `Ref`
(so recursion of any depth works). Leaves: `_numbers` (number texts), `_jsontext` (string
escapes, whitespace), `_formats` (format languages), `_irmatch` (membership of known strings).

Keyword coverage (E = exact, S = exact up to a documented restriction, U = UnsupportedSchema):
  type (incl. lists), enum, const, boolean schemas ......................................... E
  properties, required, additionalProperties (absent = true), patternProperties .............. E
  propertyNames, minProperties/maxProperties, dependentRequired, dependentSchemas,
  draft-07 dependencies ................................................................... E
  prefixItems/items, draft-07 items arrays + additionalItems, minItems/maxItems ............... E
  contains/minContains/maxContains (one per array; needs the complement of its schema) ....... E/U
  uniqueItems: E when items have finitely many values (enum/const/boolean/null, <= 12), else . U
  minLength/maxLength (code points), pattern (ECMA-262, search semantics), both together .... E
  format: date, time, date-time, duration, email, idn-email, hostname, idn-hostname, ipv4, ipv6,
  uri, uri-reference, iri, iri-reference, uuid, json-pointer, relative-json-pointer,
  uri-template: a subset of RFC and of jsonschema's checker (e.g. no leap seconds, no IDN
  A-labels, host names <= 253 chars as length tiers) ........................................ S
  format "regex" .......................................................................... U
  unknown formats: annotations (ignored, with a warning), as jsonschema does.
  minimum/maximum/exclusive*: exact decimal ranges over every spelling of a number, except that
  exponent notation must be normalized (d.ddde+X, what json.dumps writes) when bounded ....... S
  multipleOf: integers; 2^a*5^b(*3) with any bounds, other factors when unbounded (or <= 200
  multiples in range); non-integer factors .................................................. U
  type "integer": an integer value from draft 6 on (1.0 is one); in drafts 3 and 4 also an
  integer spelling (no fraction, no exponent), as their validators type 1.0 as a float ...... E
  allOf (real intersection), anyOf, $ref (#, #/$defs, #/definitions, $anchor, $id-relative,
  remote documents passed as `resources=`), recursion ........................................ E
  oneOf: E when branches are provably disjoint or their complements are expressible, else .... U
  not, if/then/else: E when the complement is expressible (type, enum/const of scalars, required,
  bounds, lengths, pattern, items/contains, properties, additional/patternProperties, ...), else U
  unevaluatedProperties/Items: only without in-place applicators, else ....................... U
  $dynamicRef: as $ref when only one $dynamicAnchor of that name exists, else ................ U
  annotations (title, description, default, examples, $comment, deprecated, readOnly, ...):
  ignored; assertion keywords from other dialects (nullable, extends, ...): U.

Policies (options of `json_schema_to_grammar`):
  whitespace="flexible": JSON whitespace where JSON allows it, at most `max_whitespace` (16)
  characters per gap -- enough for json.dumps(indent=2) seven levels deep, and never an
  unbounded run; "compact": none; {"indent": n}: exactly json.dumps(indent=n) (nesting depth
  limited to Limits.max_indent_depth).
  property_order="schema": named keys in schema order (optional ones may be skipped), then other
  keys; "any": any order, each key at most once, required ones present -- exact, via one rule per
  reachable subset of seen keys, for at most 8 named properties per object; "flexible": any
  order, tracking only the keys whose presence matters (required ones, dependentRequired ones,
  all of them under minProperties) -- each of those at most once -- while the other named keys
  are not deduplicated (each value is still validated; a JSON parser keeps the last). An object
  with more than 8 tracked keys falls back to schema order, with a warning, and so does the
  whole schema when its any-order automata exceed a limit.
  string_escapes="canonical": the escapes json.dumps writes (ensure_ascii either way: \\uXXXX
  for controls and non-ASCII, which may also be raw); "any": every RFC 8259 escape (\\u0041,
  \\/ ...), about six times larger automata for ASCII-heavy languages.
Known gaps, on purpose: JSON texts with duplicate member names (the grammar prevents duplicates
among named properties, not among additional ones, so minProperties can be met by repeating an
additional key); lone surrogate escapes ("\\ud800") are never produced.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict

from structgen.errors import LimitExceeded
from structgen.schema._compiler import Limits, json_schema_to_grammar

__all__ = ["Limits", "compile_json_schema", "json_schema_to_grammar"]

# Default `precompute_budget_s` for schemas: none. A schema's rows are computed on first use
# (most JSON states accept few tokens, and string states OR in the precomputed string slice);
# on the MaskBench sample a 50 ms budget cost 50 ms of compile time at the median and did not
# change the mask p95/p99 (the expensive rows -- bounded strings -- lie beyond what it covers).
SCHEMA_PRECOMPUTE_BUDGET_S = 0.0


# Compiled schemas, per process, keyed by the schema text and every option: a repeated schema
# skips the front end, and a new one costs a json.dumps instead of a digest of its grammar.
_CACHE: OrderedDict[tuple, object] = OrderedDict()
_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()


def _cache_key(schema, vocab, options: dict) -> tuple | None:
    """None for a schema that is not plain JSON data (a pydantic class, non-string keys)."""
    if not isinstance(schema, (dict, list, bool, str)):
        return None
    try:
        text = json.dumps([schema, options], sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    return text, vocab.fingerprint


def compile_json_schema(schema, vocab, *, whitespace="flexible", max_whitespace=None, property_order="schema",
                        lenient=False, draft=None, string_escapes="canonical", resources=None,
                        limits: Limits | None = None, **compile_opts):
    """`json_schema_to_grammar` then `structgen.automata.compile_grammar`; the result carries
    `.warnings` (what lenient mode could not enforce). Extra keyword arguments go to
    `compile_grammar`; `cache=False` compiles afresh."""
    use_cache = compile_opts.pop("cache", True)
    key = _cache_key(schema, vocab, dict(
        whitespace=whitespace, max_whitespace=max_whitespace, property_order=property_order, lenient=lenient,
        draft=draft, string_escapes=string_escapes, resources=resources, limits=limits,
        compile_opts=sorted(compile_opts.items()))) if use_cache else None
    if key is not None:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
    # the grammar-level cache would key on a digest of the grammar: only without ours
    compile_opts["cache"] = use_cache and key is None
    compiled = _compile(schema, vocab, whitespace, max_whitespace, property_order, lenient, draft, string_escapes,
                        resources, limits, compile_opts)
    if key is not None:
        with _CACHE_LOCK:
            _CACHE[key] = compiled
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return compiled


def _compile(schema, vocab, whitespace, max_whitespace, property_order, lenient, draft, string_escapes, resources,
             limits, compile_opts):
    grammar, warnings = json_schema_to_grammar(
        schema, whitespace=whitespace, max_whitespace=max_whitespace, property_order=property_order,
        lenient=lenient, draft=draft, string_escapes=string_escapes, resources=resources, limits=limits)
    try:  # lazy: the automata layer is heavy
        from structgen.automata import compile_grammar
    except ImportError:
        from structgen.automata.compiled import compile_grammar
    compile_opts.setdefault("precompute_budget_s", SCHEMA_PRECOMPUTE_BUDGET_S)
    try:
        compiled = compile_grammar(grammar, vocab, **compile_opts)
    except LimitExceeded as ex:
        if property_order != "flexible":
            raise
        # any-order objects can multiply automata; schema order is the affordable fallback
        grammar, warnings = json_schema_to_grammar(
            schema, whitespace=whitespace, max_whitespace=max_whitespace, property_order="schema",
            lenient=lenient, draft=draft, string_escapes=string_escapes, resources=resources, limits=limits)
        compiled = compile_grammar(grammar, vocab, **compile_opts)
        warnings = warnings + [f"property_order='flexible' exceeded a limit ({ex}); keys use schema order"]
    compiled.warnings = warnings
    return compiled
