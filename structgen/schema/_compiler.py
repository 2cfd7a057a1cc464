"""JSON Schema -> grammar IR.

Two phases. *Normalize*: each schema node becomes a union of single-typed records (`_model`),
with `allOf`/`$ref` merged, `anyOf` unioned, `not`/`if`/`oneOf` resolved through record
negation. *Emit*: each distinct sub-schema reference (`Sub`) becomes one grammar rule whose body
is the alternation of its records' languages; containers reference their members' rules with
`Ref`, which is how recursion of any depth works.

Anything that cannot be enforced exactly raises `UnsupportedSchema` naming the keyword and JSON
pointer; with `lenient=True` the keyword is ignored instead (an over-approximation) and a warning
is recorded.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from structgen.errors import InvalidSchema, LimitExceeded, UnsupportedSchema
from structgen.grammar.ir import (
    ANY_CHAR,
    NOTHING,
    And,
    Expr,
    Grammar,
    Not,
    Ref,
    Regex,
    Repeat,
    alt,
    lit,
    repeat,
    seq,
)
from structgen.schema import _formats
from structgen.schema._irmatch import bytes_match, text_matches
from structgen.schema._jsontext import Layout, StringEncoder
from structgen.schema._loader import Node, Registry, detect_draft, load_schema
from structgen.schema._model import (
    ALL,
    FALSE,
    FULL,
    TRUE,
    TYPES,
    ArrR,
    BoolR,
    Contains,
    Exists,
    NullR,
    NumR,
    ObjPart,
    ObjR,
    Record,
    StrR,
    Sub,
    Values,
    canon,
    conj,
    dedupe,
    intersect,
    json_type,
    merge,
)
from structgen.schema._numbers import Bound, NumSpec, _check_bound, number_language

ANNOTATIONS = {
    "title", "description", "default", "examples", "example", "$comment", "deprecated", "readOnly",
    "writeOnly", "contentMediaType", "contentEncoding", "contentSchema", "$schema", "$id", "id",
    "$anchor", "$dynamicAnchor", "$vocabulary", "$defs", "definitions", "discriminator", "xml",
    "externalDocs", "$recursiveAnchor",
}
# Keywords with assertion meaning (elsewhere) that we do not implement: an error, never ignored.
ASSERTION_LIKE = {"nullable", "divisibleBy", "disallow", "extends", "requires", "$recursiveRef"}


@dataclass(frozen=True)
class Part:
    """One char-level constraint of a string: its language and (if known) its complement."""

    expr: Expr
    neg: Expr | None
    label: str = "pattern"


@dataclass
class Limits:
    """Bounds that keep compilation time and memory bounded on hostile schemas."""

    max_schema_nodes: int = 200_000
    max_ref_depth: int = 128
    max_enum: int = 10_000
    max_alternatives: int = 512
    max_rules: int = 50_000
    max_any_order_properties: int = 8
    max_pattern_properties: int = 6
    max_unique_universe: int = 12
    max_indent_depth: int = 32
    max_prefix_items: int = 1000


class SchemaCompiler:
    def __init__(self, schema, *, whitespace="flexible", max_whitespace=None, property_order="schema",
                 lenient=False, draft=None, resources=None, limits: Limits | None = None,
                 string_escapes="canonical"):
        self.limits = limits or Limits()
        self.lenient = lenient
        self.warnings: list[str] = []
        if property_order not in ("schema", "any", "flexible"):
            raise ValueError("property_order must be 'schema', 'any' or 'flexible'")
        self.order = property_order
        self.layout = _make_layout(whitespace, max_whitespace)
        value = load_schema(schema)
        self.draft = detect_draft(value, draft)
        self.reg = Registry(value, self.draft, resources, self.limits.max_schema_nodes)
        self.root = self.reg.root()
        self._dnf: dict[tuple[int, bool], tuple[Record, ...]] = {}
        self._sub_dnf: dict[Sub, tuple[Record, ...]] = {}
        self._active: list[tuple[int, bool]] = []
        self.rules: dict[str, Expr] = {}
        self._rule_names: dict[tuple[Sub, int], str] = {}
        self._pending: list[tuple[Sub, int, str]] = []
        self._obj_count = 0
        self._frames: set[str] = set()  # value rules of any-order objects (see build_object)
        self.encoder = StringEncoder(string_escapes)
        self._node_by_id: dict[int, Node] = {}

    # ================================================================== errors
    def unsupported(self, msg: str, keyword: str, node) -> UnsupportedSchema:
        """node: a Node, a JSON pointer string, or None."""
        where = node if isinstance(node, str) else (node.where if node is not None else "")
        return UnsupportedSchema(msg, keyword=keyword, pointer=where)

    def _lenient(self, ex: UnsupportedSchema) -> None:
        self.warnings.append(f"ignored: {ex}")

    # ================================================================== normalize
    def node(self, nid: int) -> Node:
        return self.reg.node_list[nid]

    def dnf_atom(self, nid: int, positive: bool) -> tuple[Record, ...]:
        key = (nid, positive)
        got = self._dnf.get(key)
        if got is not None:
            return got
        node = self.node(nid)
        if key in self._active:
            raise self.unsupported("recursive reference that consumes no input (the schema refers to "
                                   "itself without going through a property or item)", "$ref", node)
        if len(self._active) > self.limits.max_ref_depth:
            raise LimitExceeded(f"reference chain deeper than {self.limits.max_ref_depth} at {node.where}")
        self._active.append(key)
        try:
            if positive:
                res = self._normalize(node)
            else:
                res = self.negate(self.dnf_atom(nid, True), node)
        finally:
            self._active.pop()
        self._dnf[key] = res
        return res

    def dnf_sub(self, sub: Sub) -> tuple[Record, ...]:
        if sub == TRUE:
            return ALL
        if sub == FALSE:
            return ()
        got = self._sub_dnf.get(sub)
        if got is None:
            atoms = sorted(sub)
            got = self.dnf_atom(*atoms[0])
            for a in atoms[1:]:
                if not got:
                    break
                got = intersect(got, self.dnf_atom(*a), self.limits.max_alternatives)
            self._sub_dnf[sub] = got
        return got

    def sub_of(self, node: Node) -> Sub:
        v = node.value
        if v is True or v == {}:
            return TRUE
        if v is False:
            return FALSE
        return frozenset({(node.id, True)})

    def _normalize(self, node: Node) -> tuple[Record, ...]:
        v = node.value
        if v is True:
            return ALL
        if v is False:
            return ()
        if not isinstance(v, dict):
            raise InvalidSchema("a schema must be an object or a boolean", pointer=node.where)
        legacy = node.draft in ("4", "6", "7")
        if legacy and "$ref" in v:
            target = self.reg.resolve(node, v["$ref"])
            return self.dnf_sub(self.sub_of(target))
        recs = self._base_records(node)
        lim = self.limits.max_alternatives
        for kw in ("enum", "const", "$ref", "$dynamicRef", "allOf", "anyOf", "oneOf", "not", "if",
                   "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems"):
            if kw not in v or not recs:
                continue
            try:
                other = self._applicator(node, kw, v[kw])
            except UnsupportedSchema as ex:
                if not self.lenient:
                    raise
                self._lenient(ex)
                continue
            if other is not None:
                recs = intersect(recs, other, lim)
        self._check_unknown(node)
        return recs

    def _check_unknown(self, node: Node) -> None:
        if node.draft in ("4", "6", "7") and ("contentMediaType" in node.value or "contentEncoding" in node.value):
            self.warnings.append(f"not enforced: contentMediaType/contentEncoding at {node.where} (annotations, "
                                 "as jsonschema treats them)")
        for k in node.value:
            if k in ASSERTION_LIKE:
                ex = self.unsupported(f"keyword {k!r} is not supported", k, node)
                if not self.lenient:
                    raise ex
                self._lenient(ex)

    # ------------------------------------------------------------------ local keywords
    def _kw(self, node: Node, keyword: str, fn, *args):
        """Run one keyword's handler; in lenient mode an unsupported keyword is skipped."""
        try:
            return fn(*args)
        except UnsupportedSchema as ex:
            if not self.lenient:
                raise
            self._lenient(ex)
            return None

    def _base_records(self, node: Node) -> tuple[Record, ...]:
        v = node.value
        types = self._types(node)
        t = v.get("type")
        declared = [t] if isinstance(t, str) else (t or [])
        integer_only = "integer" in declared and "number" not in declared
        out = []
        for t in types:
            if t == "integer":
                continue
            rec = FULL[t]
            if t == "number":
                rec = self._number(node, integral=integer_only)
            elif t == "string":
                rec = self._string(node)
            elif t == "array":
                rec = self._array(node)
            elif t == "object":
                rec = self._object(node)
            if rec is not None:
                out.append(rec)
        del v
        return dedupe(out)

    def _types(self, node: Node) -> list[str]:
        t = node.value.get("type")
        if t is None:
            return list(TYPES)
        ts = [t] if isinstance(t, str) else t
        if not isinstance(ts, list) or not all(isinstance(x, str) for x in ts):
            raise InvalidSchema("'type' must be a string or a list of strings", pointer=node.where)
        out = []
        for x in ts:
            if x not in TYPES and x != "integer":
                if x == "any" and node.draft in ("4",):
                    return list(TYPES)
                raise InvalidSchema(f"unknown type {x!r}", pointer=node.where)
            out.append(x)
        if "integer" in out and "number" not in out:
            out.append("number")
        return out

    # -- numbers
    def _number(self, node: Node, integral: bool) -> Record | None:
        v = node.value
        bounds = []
        legacy_excl = {}
        for kw, lower in (("minimum", True), ("maximum", False)):
            if kw in v:
                b = v[kw]
                ex_kw = "exclusiveMinimum" if lower else "exclusiveMaximum"
                strict = v.get(ex_kw) is True
                if isinstance(v.get(ex_kw), bool):
                    legacy_excl[ex_kw] = True
                if self._kw(node, kw, _check_bound, b, kw, node.where):
                    bounds.append(Bound(b, strict, lower))
        for kw, lower in (("exclusiveMinimum", True), ("exclusiveMaximum", False)):
            if kw in v and not isinstance(v[kw], bool):
                b = v[kw]
                if self._kw(node, kw, _check_bound, b, kw, node.where):
                    bounds.append(Bound(b, True, lower))
        mults = []
        if "multipleOf" in v:
            q = v["multipleOf"]
            if isinstance(q, bool) or not isinstance(q, (int, float)) or q <= 0:
                raise InvalidSchema("multipleOf must be a positive number", pointer=node.where)
            if isinstance(q, float) and q.is_integer() and q < 2 ** 53:
                q = int(q)
            if isinstance(q, int):
                mults.append(q)
            else:
                ex = self.unsupported(f"multipleOf {q!r} is not an integer (float division semantics "
                                      "cannot be expressed exactly)", "multipleOf", node)
                if not self.lenient:
                    raise ex
                self._lenient(ex)
        return NumR(NumSpec(tuple(bounds), True if integral else None, tuple(mults),
                            int_text=integral and node.draft in ("3", "4")))

    # -- strings
    def _string(self, node: Node) -> Record | None:
        v = node.value
        lo = v.get("minLength", 0)
        hi = v.get("maxLength")
        for k, x in (("minLength", lo), ("maxLength", hi)):
            if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0
                                  or (isinstance(x, float) and not x.is_integer())):
                raise InvalidSchema(f"{k} must be a non-negative integer", pointer=node.where)
        lo = int(lo)
        hi = int(hi) if hi is not None else None
        parts = []
        if "pattern" in v:
            p = v["pattern"]
            if not isinstance(p, str):
                raise InvalidSchema("pattern must be a string", pointer=node.where)
            part = self._kw(node, "pattern", self._pattern_part, p, node)
            if part is not None:
                parts.append(part)
        if "format" in v:
            part = self._kw(node, "format", self._format_part, v["format"], node)
            if part is not None:
                parts.append(part)
        if hi is not None and lo > hi:
            return None
        return StrR(tuple(parts), lo, hi, None)

    def _pattern_part(self, p: str, node: Node) -> Part:
        from structgen.errors import UnsupportedRegex

        r = Regex(p, flavor="ecma", search=True)
        try:
            from structgen.schema._irmatch import parse_pattern

            parse_pattern(p, "ecma", "", True)
        except UnsupportedRegex as ex:
            raise self.unsupported(f"pattern {p!r}: {ex}", "pattern", node) from None
        except LimitExceeded:
            raise
        return Part(r, Not(r), "pattern")

    def _format_part(self, name, node: Node) -> Part | None:
        if not isinstance(name, str):
            raise InvalidSchema("format must be a string", pointer=node.where)
        if name in _formats.UNSUPPORTED_FORMATS:
            raise self.unsupported(f"format {name!r} cannot be enforced", "format", node)
        lang = _formats.format_language(name)
        if lang is None:  # unknown formats are annotations (jsonschema ignores them too)
            self.warnings.append(f"not enforced: unknown format {name!r} at {node.where}")
            return None
        return Part(lang, _formats.negation(name, "7" if node.draft in ("4", "6", "7") else "2020-12"),
                    f"format {name}")

    # -- arrays
    def _array(self, node: Node) -> Record | None:
        v = node.value
        legacy = node.draft in ("4", "6", "7", "2019-09")
        prefix: list[Sub] = []
        rest = TRUE
        items = v.get("items")
        if "prefixItems" in v and not legacy:
            pi = v["prefixItems"]
            if not isinstance(pi, list):
                raise InvalidSchema("prefixItems must be an array", pointer=node.where)
            prefix = [self.sub_of(node.child("prefixItems", i)) for i in range(len(pi))]
        if isinstance(items, list):
            # draft-07 tuple form (also accepted, with draft-07 meaning, in a 2020-12 document)
            prefix = [self.sub_of(node.child("items", i)) for i in range(len(items))]
            if "additionalItems" in v:
                rest = self.sub_of(node.child("additionalItems"))
        elif items is not None:
            rest = self.sub_of(node.child("items"))
        if len(prefix) > self.limits.max_prefix_items:
            raise LimitExceeded(f"more than {self.limits.max_prefix_items} positional items at {node.where}")
        lo = v.get("minItems", 0)
        hi = v.get("maxItems")
        lo = int(lo)
        hi = int(hi) if hi is not None else None
        contains = []
        if "contains" in v:
            cmin = v.get("minContains", 1) if not legacy or node.draft == "2019-09" else 1
            cmax = v.get("maxContains") if not legacy or node.draft == "2019-09" else None
            contains.append(Contains(self.sub_of(node.child("contains")), int(cmin),
                                     int(cmax) if cmax is not None else None, 0))
        unique = v.get("uniqueItems") is True
        if hi is not None and lo > hi:
            return None
        return ArrR(tuple(prefix), rest, lo, hi, tuple(contains), unique, None, node.where)

    # -- objects
    def _object(self, node: Node) -> Record | None:
        v = node.value
        props = v.get("properties", {})
        pats = v.get("patternProperties", {})
        if not isinstance(props, dict) or not isinstance(pats, dict):
            raise InvalidSchema("properties/patternProperties must be objects", pointer=node.where)
        order: list[str] = []
        p_items = []
        for name in props:
            p_items.append((name, self.sub_of(node.child("properties", name))))
            order.append(name)
        pt_items = []
        for p in pats:
            part = self._kw(node, "patternProperties", self._pattern_part, p, node)
            if part is None:
                continue  # lenient: pattern ignored
            pt_items.append((p, self.sub_of(node.child("patternProperties", p))))
        additional = self.sub_of(node.child("additionalProperties")) if "additionalProperties" in v else TRUE
        part = ObjPart(tuple(p_items), tuple(pt_items), additional)
        parts = () if part.is_trivial() else (part,)
        req = v.get("required", [])
        if not isinstance(req, list) or not all(isinstance(x, str) for x in req):
            if isinstance(req, bool) and node.draft in ("4", "3"):
                req = []
            else:
                raise InvalidSchema("required must be an array of strings", pointer=node.where)
        for r in req:
            if r not in order:
                order.append(r)
        deps = []
        dr = dict(v.get("dependentRequired", {})) if node.draft not in ("4", "6", "7") else {}
        if isinstance(v.get("dependencies"), dict):  # also honoured after draft 7 (the stricter reading)
            for k, x in v["dependencies"].items():
                if isinstance(x, list):
                    dr[k] = x
        for k, xs in dr.items():
            deps.append((k, frozenset(xs)))
            for n in [k, *xs]:
                if n not in order:
                    order.append(n)
        names = []
        if "propertyNames" in v:
            lang = self._kw(node, "propertyNames", self._names_lang, node.child("propertyNames"))
            if lang is not None:
                names.append(lang)
        lo = int(v.get("minProperties", 0))
        hi = v.get("maxProperties")
        hi = int(hi) if hi is not None else None
        if hi is not None and lo > hi:
            return None
        return ObjR(parts, frozenset(req), frozenset(), lo, hi, tuple(names), tuple(deps), tuple(order), None,
                    node.where)

    def _names_lang(self, pnode: Node) -> Expr:
        """propertyNames: the char-level language of the string part of its schema."""
        recs = self.dnf_sub(self.sub_of(pnode))
        langs = [self.string_chars(r) for r in recs if isinstance(r, StrR)]
        return alt(langs) if langs else Not(Repeat(ANY_CHAR, 0, None))

    # ------------------------------------------------------------------ applicators
    def _applicator(self, node: Node, kw: str, x) -> tuple[Record, ...] | None:
        lim = self.limits.max_alternatives
        if kw in ("enum", "const"):
            vals = x if kw == "enum" else [x]
            if kw == "enum" and not isinstance(x, list):
                raise InvalidSchema("enum must be an array", pointer=node.where)
            if len(vals) > self.limits.max_enum:
                raise LimitExceeded(f"enum with more than {self.limits.max_enum} values at {node.where}")
            return finite_records(vals)
        if kw == "$ref":
            return self.dnf_sub(self.sub_of(self.reg.resolve(node, x)))
        if kw == "$dynamicRef":
            target = self.reg.resolve(node, x, "$dynamicRef")
            anchor = target.value.get("$dynamicAnchor") if isinstance(target.value, dict) else None
            if anchor is not None:
                owners = [k for k in self.reg.anchors if k.endswith("#" + anchor)]
                if len(owners) > 1:
                    raise self.unsupported("$dynamicRef with several matching $dynamicAnchor", "$dynamicRef", node)
            return self.dnf_sub(self.sub_of(target))
        if kw == "allOf":
            recs = ALL
            for i in range(len(_as_list(x, node, kw))):
                recs = intersect(recs, self.dnf_sub(self.sub_of(node.child("allOf", i))), lim)
            return recs
        if kw == "anyOf":
            out = []
            for i in range(len(_as_list(x, node, kw))):
                out += self.dnf_sub(self.sub_of(node.child("anyOf", i)))
            return _cap(dedupe(out), lim)
        if kw == "oneOf":
            return self._one_of(node, len(_as_list(x, node, kw)))
        if kw == "not":
            child = node.child("not")
            s = self.sub_of(child)
            if s == TRUE:
                return ()
            if s == FALSE:
                return ALL
            return self.dnf_atom(child.id, False)
        if kw == "if":
            v = node.value
            c = self.sub_of(node.child("if"))
            then = self.dnf_sub(self.sub_of(node.child("then"))) if "then" in v else ALL
            other = self.dnf_sub(self.sub_of(node.child("else"))) if "else" in v else ALL
            if "then" not in v and "else" not in v:
                return None
            pos = intersect(self.dnf_sub(c), then, lim)
            neg = intersect(self._neg_sub(c, node, "if"), other, lim)
            return _cap(dedupe(pos + neg), lim)
        if kw in ("dependentSchemas", "dependencies"):
            if kw == "dependentSchemas" and node.draft in ("4", "6", "7"):
                return None
            if not isinstance(x, dict):
                raise InvalidSchema(f"{kw} must be an object", pointer=node.where)
            recs = ALL
            for name, s in x.items():
                if kw == "dependencies" and isinstance(s, list):
                    continue  # handled as dependentRequired
                d = self.dnf_sub(self.sub_of(node.child(kw, name)))
                non_obj = tuple(FULL[t] for t in TYPES if t != "object")
                without = (ObjR(forbidden=frozenset({name}), order=(name,)),)
                with_ = intersect((ObjR(required=frozenset({name}), order=(name,)),), d, lim)
                recs = intersect(recs, dedupe(non_obj + without + with_), lim)
            return recs
        if kw in ("unevaluatedProperties", "unevaluatedItems"):
            return self._unevaluated(node, kw)
        return None

    def _unevaluated(self, node: Node, kw: str) -> tuple[Record, ...] | None:
        v = node.value
        sub = self.sub_of(node.child(kw))
        if sub == TRUE:
            return None
        inplace = {"allOf", "anyOf", "oneOf", "not", "if", "$ref", "$dynamicRef", "dependentSchemas",
                   "dependencies"}
        if inplace & set(v):
            raise self.unsupported(f"{kw} next to in-place applicators", kw, node)
        if kw == "unevaluatedProperties":
            if "additionalProperties" in v:
                return None
            props = tuple((name, TRUE) for name in v.get("properties", {}))
            pats = tuple((p, TRUE) for p in v.get("patternProperties", {}))
            rest = tuple(FULL[t] for t in TYPES if t != "object")
            return rest + (ObjR(parts=(ObjPart(props, pats, sub),)),)
        if "contains" in v:
            raise self.unsupported("unevaluatedItems next to contains", kw, node)
        legacy = node.draft in ("4", "6", "7", "2019-09")
        items = v.get("items")
        if (items is not None and not isinstance(items, list)) or ("additionalItems" in v and legacy):
            return None
        n = len(v.get("prefixItems", [])) if not isinstance(items, list) else len(items)
        rest = tuple(FULL[t] for t in TYPES if t != "array")
        return rest + (ArrR(prefix=(TRUE,) * n, rest=sub),)

    def _one_of(self, node: Node, n: int) -> tuple[Record, ...]:
        """Exactly one branch: branch i AND NOT branch j for every j that may overlap branch i
        (provably disjoint pairs need no complement, so discriminated unions stay cheap)."""
        lim = self.limits.max_alternatives
        subs = [self.sub_of(node.child("oneOf", i)) for i in range(n)]
        branches = [self.dnf_sub(s) for s in subs]
        overlap = [[False] * n for _ in range(n)]
        for i in range(n):
            for j in range(i + 1, n):
                overlap[i][j] = overlap[j][i] = not self.disjoint(branches[i], branches[j])
        negs: dict[int, tuple[Record, ...]] = {}
        out = []
        for i in range(n):
            acc = branches[i]
            for j in range(n):
                if j == i or not overlap[i][j] or not acc:
                    continue
                if j not in negs:
                    try:
                        negs[j] = self._neg_sub(subs[j], node, "oneOf")
                    except UnsupportedSchema as ex:
                        raise self.unsupported(f"oneOf branches may overlap and cannot be complemented ({ex})",
                                               "oneOf", node) from None
                acc = intersect(acc, negs[j], lim)
            out += acc
        return _cap(dedupe(out), lim)

    def _neg_sub(self, sub: Sub, node: Node, keyword: str) -> tuple[Record, ...]:
        if sub == TRUE:
            return ()
        if sub == FALSE:
            return ALL
        out = []
        for nid, pol in sorted(sub):
            out += self.dnf_atom(nid, not pol)
        return dedupe(out)

    # ------------------------------------------------------------------ disjointness
    def disjoint(self, a: tuple[Record, ...], b: tuple[Record, ...], depth: int = 0) -> bool:
        """True only when no value is in both (conservative)."""
        for r in a:
            for s in b:
                m = merge(r, s)
                if m is not None and not self.surely_empty(m, depth):
                    return False
        return True

    def surely_empty(self, r: Record, depth: int = 0) -> bool:
        if depth > 4:
            return False
        if isinstance(r, NumR):
            try:
                return number_language(r.spec, {}) == NOTHING
            except (UnsupportedSchema, LimitExceeded):
                return False
        if isinstance(r, StrR):
            if r.values is not None:
                return not any(self._str_ok(r, s) for s in r.values.items())
            return False
        if isinstance(r, BoolR):
            return not r.values
        if isinstance(r, (ArrR, ObjR)) and r.values is not None:
            try:
                return not any(self.accepts(replace(r, values=None), x) for x in r.values.items())
            except (UnsupportedSchema, LimitExceeded):
                return False
        if isinstance(r, ObjR):
            try:
                info = self.object_members(r)
            except (UnsupportedSchema, LimitExceeded):
                return False
            if info is None:
                return True
            for name in r.required:
                sub = info.named.get(name)
                if sub is not None and sub != TRUE:
                    try:
                        if self._sub_empty(sub, depth + 1):
                            return True
                    except (UnsupportedSchema, LimitExceeded):
                        return False
            return False
        if isinstance(r, ArrR):
            for i in range(min(r.min_items, len(r.prefix) + 1)):
                try:
                    if self._sub_empty(r.item(i), depth + 1):
                        return True
                except (UnsupportedSchema, LimitExceeded):
                    return False
        return False

    def _sub_empty(self, sub: Sub, depth: int) -> bool:
        recs = self.dnf_sub(sub)
        return all(self.surely_empty(x, depth) for x in recs)

    # ------------------------------------------------------------------ negation
    def negate(self, recs: tuple[Record, ...], node: Node) -> tuple[Record, ...]:
        out = ALL
        for r in recs:
            out = intersect(out, self.negate_record(r, node), self.limits.max_alternatives)
            if not out:
                break
        return out

    def negate_record(self, r: Record, node: Node) -> tuple[Record, ...]:
        others = [FULL[t] for t in TYPES if t != r.type]
        return dedupe(others + self._negate_within(r, node))

    def _negate_within(self, r: Record, node: Node) -> list[Record]:
        U = self.unsupported
        if isinstance(r, NullR):
            return []
        if isinstance(r, BoolR):
            rest = frozenset({True, False}) - r.values
            return [BoolR(rest)] if rest else []
        if isinstance(r, NumR):
            s = r.spec
            out: list[Record] = []
            for b in s.bounds:
                out.append(NumR(NumSpec((Bound(b.value, not b.strict, not b.lower),))))
            if s.int_text:  # not an integer spelling (integral=False below covers the values)
                out.append(NumR(NumSpec(float_text=True)))
            if s.float_text:
                out.append(NumR(NumSpec(int_text=True)))
            if s.integral is not None:
                out.append(NumR(NumSpec(integral=not s.integral)))
            for q in s.mults:
                out.append(NumR(NumSpec(nonmults=(q,))))
            for q in s.nonmults:
                out.append(NumR(NumSpec(mults=(q,))))
            for x in s.excluded:
                out.append(NumR(NumSpec(points=(x,))))
            if s.points is not None:
                out.append(NumR(NumSpec(excluded=tuple(s.points))))
            return out
        if isinstance(r, StrR):
            out = []
            for p in r.parts:
                if p.neg is None:
                    raise U(f"the complement of {p.label} cannot be expressed exactly", "not", node)
                out.append(StrR((Part(p.neg, p.expr, "not " + p.label),)))
            if r.min_len > 0:
                out.append(StrR(max_len=r.min_len - 1))
            if r.max_len is not None:
                out.append(StrR(min_len=r.max_len + 1))
            if r.values is not None:
                lits = alt([lit(x) for x in r.values.items()])
                out.append(StrR((Part(Not(lits), lits, "not enum"),)))
            return out
        if isinstance(r, ArrR):
            out = []
            if r.values is not None:
                raise U("the complement of an array enum/const cannot be expressed", "not", node)
            if r.unique:
                raise U("the complement of uniqueItems cannot be expressed", "not", node)
            if r.min_items > 0:
                out.append(ArrR(max_items=r.min_items - 1))
            if r.max_items is not None:
                out.append(ArrR(min_items=r.max_items + 1))
            for i, s in enumerate(r.prefix):
                if s == FALSE:
                    out.append(ArrR(min_items=i + 1))
                    continue
                for a in sorted(s):
                    out.append(ArrR(prefix=(TRUE,) * i + (frozenset({(a[0], not a[1])}),), min_items=i + 1))
            k = len(r.prefix)
            if r.rest == FALSE:
                out.append(ArrR(min_items=k + 1))
            else:
                for a in sorted(r.rest):
                    out.append(ArrR(contains=(Contains(frozenset({(a[0], not a[1])}), 1, None, k),)))
            for c in r.contains:
                if c.min > 0:
                    out.append(ArrR(contains=(Contains(c.sub, 0, c.min - 1, c.start),)))
                if c.max is not None:
                    out.append(ArrR(contains=(Contains(c.sub, c.max + 1, None, c.start),)))
            return out
        if isinstance(r, ObjR):
            out = []
            if r.values is not None:
                raise U("the complement of an object enum/const cannot be expressed", "not", node)
            if r.names:
                raise U("the complement of propertyNames cannot be expressed", "not", node)
            for name in r.required:
                out.append(ObjR(forbidden=frozenset({name}), order=(name,)))
            for name in r.forbidden:
                out.append(ObjR(required=frozenset({name}), order=(name,)))
            if r.min_props > 0:
                out.append(ObjR(max_props=r.min_props - 1))
            if r.max_props is not None:
                out.append(ObjR(min_props=r.max_props + 1))
            for a, bs in r.deps:
                for b in sorted(bs):
                    if b != a:
                        out.append(ObjR(required=frozenset({a}), forbidden=frozenset({b}), order=(a, b)))
            if r.exists:
                raise U("the complement of a negated additionalProperties/patternProperties cannot be "
                        "expressed", "not", node)
            for part in r.parts:
                for p, s in part.patterns:
                    for a in sorted(s) if s != FALSE else [None]:
                        key = Regex(p, "ecma", "", True)
                        val = TRUE if a is None else frozenset({(a[0], not a[1])})
                        out.append(ObjR(exists=(Exists(key, val),)))
                if part.additional != TRUE:
                    key_parts = [Not(Regex(p, "ecma", "", True)) for p, _ in part.patterns]
                    if part.props:
                        key_parts.append(Not(alt([lit(n) for n, _ in part.props])))
                    key = And(tuple(key_parts)) if len(key_parts) > 1 else (
                        key_parts[0] if key_parts else Repeat(ANY_CHAR, 0, None))
                    if part.additional == FALSE:
                        out.append(ObjR(exists=(Exists(key, TRUE),)))
                    else:
                        for a in sorted(part.additional):
                            out.append(ObjR(exists=(Exists(key, frozenset({(a[0], not a[1])})),)))
                for name, s in part.props:
                    if s == FALSE:
                        out.append(ObjR(required=frozenset({name}), order=(name,)))
                        continue
                    for a in sorted(s):
                        flipped = frozenset({(a[0], not a[1])})
                        out.append(ObjR(parts=(ObjPart(((name, flipped),)),), required=frozenset({name}),
                                        order=(name,)))
            return out
        raise TypeError(r)

    # ================================================================== strings (char level)
    def string_chars(self, r: StrR) -> Expr:
        """The char-level language of a string record."""
        if r.values is not None:
            return alt([lit(s) for s in r.values.items() if self._str_ok(r, s)]) if r.values.texts else NOTHING
        items = [p.expr for p in r.parts]
        if r.min_len > 0 or r.max_len is not None:
            items.append(repeat(ANY_CHAR, r.min_len, r.max_len))
        if not items:
            return Repeat(ANY_CHAR, 0, None)
        return items[0] if len(items) == 1 else And(tuple(items))

    def _str_ok(self, r: StrR, s: str) -> bool:
        n = len(s)
        if n < r.min_len or (r.max_len is not None and n > r.max_len):
            return False
        return all(text_matches(p.expr, s) for p in r.parts)

    # ================================================================== value membership
    def accepts(self, r: Record, v) -> bool:
        """Is the JSON value v in record r? (value level; used for enum/const of containers)."""
        t = json_type(v)
        if t != r.type:
            return False
        if isinstance(r, NullR):
            return True
        if isinstance(r, BoolR):
            return v in r.values
        if isinstance(r, NumR):
            return bytes_match(number_language(r.spec, (rules := {})), json.dumps(v).encode(), rules)
        if isinstance(r, StrR):
            if r.values is not None and canon(v) not in r.values.canon_keys():
                return False
            return self._str_ok(r, v)
        if r.values is not None and canon(v) not in r.values.canon_keys():
            return False
        if isinstance(r, ArrR):
            n = len(v)
            if n < r.min_items or (r.max_items is not None and n > r.max_items):
                return False
            if not all(self.accepts_sub(x, r.item(i)) for i, x in enumerate(v)):
                return False
            for c in r.contains:
                cnt = sum(1 for x in v[c.start:] if self.accepts_sub(x, c.sub))
                if cnt < c.min or (c.max is not None and cnt > c.max):
                    return False
            return not (r.unique and len({canon(x) for x in v}) != n)
        if isinstance(r, ObjR):
            n = len(v)
            if n < r.min_props or (r.max_props is not None and n > r.max_props):
                return False
            if any(k not in v for k in r.required) or any(k in v for k in r.forbidden):
                return False
            for a, bs in r.deps:
                if a in v and any(b not in v for b in bs):
                    return False
            for k, x in v.items():
                if not all(text_matches(lang, k) for lang in r.names):
                    return False
                if not self.accepts_sub(x, self.key_sub(r, k)):
                    return False
            for e in r.exists:
                if not any(text_matches(e.key, k) and self.accepts_sub(x, e.sub) for k, x in v.items()):
                    return False
            return True
        raise TypeError(r)

    def accepts_sub(self, v, sub: Sub) -> bool:
        return any(self.accepts(r, v) for r in self.dnf_sub(sub))

    def key_sub(self, r: ObjR, key: str) -> Sub:
        """The conjunction of schemas that apply to member `key` of an object in r."""
        subs = []
        for part in r.parts:
            hit = [s for name, s in part.props if name == key]
            matched = [s for p, s in part.patterns if text_matches(Regex(p, "ecma", "", True), key)]
            subs += hit + matched
            if not hit and not matched:
                subs.append(part.additional)
        return conj(*subs)

    # ================================================================== emission
    def rule_for(self, sub: Sub, depth: int) -> str:
        if self.layout.depth_sensitive:
            if depth > self.limits.max_indent_depth:
                depth = -1  # too deep for the fixed layout: an unsatisfiable rule
        else:
            depth = 0
        key = (sub, depth)
        name = self._rule_names.get(key)
        if name is None:
            name = f"v{len(self._rule_names)}" + (f"_d{depth}" if self.layout.depth_sensitive else "")
            if sub == TRUE and not self.layout.depth_sensitive:
                name = "any_value"  # the same body in every schema: its automaton is cached
            self._rule_names[key] = name
            self._pending.append((sub, depth, name))
            if len(self._rule_names) > self.limits.max_rules:
                raise LimitExceeded(f"grammar has more than {self.limits.max_rules} rules")
        return name

    def ref(self, sub: Sub, depth: int) -> Expr:
        if sub == FALSE:
            return NOTHING
        return Ref(self.rule_for(sub, depth))

    def build(self) -> Grammar:
        root_sub = self.sub_of(self.root)
        start = seq(self.layout.outer(), self.ref(root_sub, 0), self.layout.outer())
        while self._pending:
            sub, depth, name = self._pending.pop()
            self.rules[name] = self._emit_sub(sub, depth)
        self.rules["start"] = start
        g = Grammar(self.rules, "start", frames=frozenset(self._frames & set(self.rules)))
        g.meta["warnings"] = list(self.warnings)
        return g

    def _emit_sub(self, sub: Sub, depth: int) -> Expr:
        if depth < 0:
            return NOTHING
        try:
            recs = self.dnf_sub(sub)
        except UnsupportedSchema as ex:
            if not self.lenient:
                raise
            self._lenient(ex)
            recs = ALL
        out = []
        for r in recs:
            try:
                out.append(self.emit(r, depth))
            except UnsupportedSchema as ex:
                if not self.lenient:
                    raise
                self._lenient(ex)
                out.append(self._emit_relaxed(r, depth, ex))
        return alt(out) if out else NOTHING

    def _emit_relaxed(self, r: Record, depth: int, ex: UnsupportedSchema) -> Expr:
        """Lenient fallback for a record whose emission failed: drop only the failing feature
        (an over-approximation), or use schema key order when "any" order has too many names
        (a subset); anything else becomes the bare type."""
        try:
            if isinstance(r, ArrR) and ex.keyword == "uniqueItems" and r.unique:
                return self.emit(replace(r, unique=False), depth)
            if isinstance(r, ArrR) and ex.keyword == "contains" and r.contains:
                return self.emit(replace(r, contains=()), depth)
            if isinstance(r, ObjR) and ex.keyword == "properties" and self.order == "any":
                self.order = "schema"
                try:
                    return self.emit(r, depth)
                finally:
                    self.order = "any"
        except UnsupportedSchema as ex2:
            self._lenient(ex2)
        return self.emit(FULL[r.type], depth)

    def emit(self, r: Record, depth: int) -> Expr:
        if isinstance(r, NullR):
            return lit("null")
        if isinstance(r, BoolR):
            return alt([lit("true")] * (True in r.values) + [lit("false")] * (False in r.values)) \
                if r.values else NOTHING
        if isinstance(r, NumR):
            return number_language(r.spec, self.rules)
        if isinstance(r, StrR):
            return seq(lit('"'), self.encoder.encode(self.string_chars(r)), lit('"'))
        if isinstance(r, ArrR):
            return self.emit_array(r, depth)
        if isinstance(r, ObjR):
            return self.emit_object(r, depth)
        raise TypeError(r)

    # ------------------------------------------------------------------ constants
    def const_lang(self, v, depth: int) -> Expr:
        """Every JSON text of the value v (numbers in all their spellings, strings escaped any way)."""
        t = json_type(v)
        if t == "null":
            return lit("null")
        if t == "boolean":
            return lit("true" if v else "false")
        if t == "number":
            return number_language(NumSpec(points=(v,)), self.rules)
        if t == "string":
            return self.encoder.literal(v)
        L = self.layout
        if t == "array":
            if not v:
                return seq(lit("["), L.empty(), lit("]"))
            items = [self.const_lang(x, depth + 1) for x in v]
            body = [L.open(depth), items[0]]
            for x in items[1:]:
                body += [L.sep(depth), x]
            return seq(lit("["), *body, L.close(depth), lit("]"))
        members = [(self.encoder.literal(k), [(self.const_lang(x, depth + 1), 0)], True, k) for k, x in v.items()]
        return self.build_object(members, [], 0, None, (), depth, prefix="c")

    def emit_values(self, r: Record, depth: int) -> Expr:
        base = replace(r, values=None)
        return alt([self.const_lang(x, depth) for x in r.values.items() if self.accepts(base, x)])

    # ------------------------------------------------------------------ arrays
    def emit_array(self, r: ArrR, depth: int) -> Expr:
        if r.values is not None:
            return self.emit_values(r, depth)
        L = self.layout
        lo, hi = r.min_items, r.max_items
        prefix = list(r.prefix)
        rest = r.rest
        # items: false positions cap the length
        for i, s in enumerate(prefix):
            if s == FALSE:
                hi = i if hi is None else min(hi, i)
                break
        if rest == FALSE:
            hi = len(prefix) if hi is None else min(hi, len(prefix))
        if hi is not None and lo > hi:
            return NOTHING
        contains = []
        for c in r.contains:
            if c.sub == TRUE:  # every item counts: a length constraint
                lo = max(lo, c.start + c.min)
                if c.max is not None:
                    hi = c.start + c.max if hi is None else min(hi, c.start + c.max)
                continue
            if c.sub == FALSE:
                if c.min > 0:
                    return NOTHING
                continue
            if c.min == 0 and c.max is None:
                continue
            contains.append(c)
        if hi is not None and lo > hi:
            return NOTHING
        unique = r.unique and (hi is None or hi > 1)
        if unique:
            if contains:
                raise self.unsupported("uniqueItems together with contains", "uniqueItems", r.src)
            return self._unique_array(r, prefix, rest, lo, hi, depth)
        if len(contains) > 1:
            raise self.unsupported("several contains constraints on one array", "contains", r.src)
        item = lambda i: self.ref(prefix[i] if i < len(prefix) else rest, depth + 1)
        close = seq(L.close(depth), lit("]"))
        empty = seq(L.empty(), lit("]"))
        if not contains:
            k = len(prefix)
            # tails[i]: items 0..i-1 written; the rest, closing bracket included. Built from the
            # end without recursion; long tuples get a rule every 16 positions (shallow IR).
            self._obj_count += 1
            tag = f"p{self._obj_count}"
            top = max(k, 1)
            nmin = max(0, lo - top)
            nmax = None if hi is None else hi - top
            nxt = NOTHING if (nmax is not None and nmax < nmin) else \
                seq(repeat(seq(L.sep(depth), item(top)), nmin, nmax), close)
            for i in range(top - 1, 0, -1):
                opts = [close] if i >= lo else []
                if hi is None or i < hi:
                    opts.append(seq(L.sep(depth), item(i), nxt))
                nxt = alt(opts)
                if i % 16 == 0:
                    name = f"{tag}_{i}"
                    self.rules[name] = nxt
                    nxt = Ref(name)
            opts = []
            if lo == 0:
                opts.append(empty)
            if hi is None or hi > 0:
                opts.append(seq(L.open(depth), item(0), nxt))
            return seq(lit("["), alt(opts))
        return self._contains_array(prefix, rest, lo, hi, contains[0], depth, r.src)

    def _flip_atoms(self, sub: Sub) -> list[Sub]:
        return [frozenset({(n, not p)}) for n, p in sorted(sub)]

    def _contains_array(self, prefix, rest, lo, hi, c: Contains, depth: int, src: str = "") -> Expr:
        """Arrays where the number of items (from index c.start) matching c.sub is counted.

        Each counted item is written either as (item schema AND c.sub) or as (item schema AND NOT
        c.sub); states are (items written, matches so far) with both capped where it no longer
        matters, and the homogeneous tail loops over non-matches without growing the state.
        """
        L = self.layout
        for s in self._flip_atoms(c.sub):  # the complement must exist; fail here, naming contains
            try:
                self.dnf_sub(s)
            except UnsupportedSchema as ex:
                raise self.unsupported(f"contains needs the complement of its schema: {ex}", "contains", src) \
                    from None
        k = len(prefix)
        cap = (c.max + 1) if c.max is not None else c.min
        horizon = max(k, c.start, lo, 1)
        self._obj_count += 1
        tag = f"a{self._obj_count}"
        memo: dict[tuple[int, int], str] = {}
        close_full = seq(L.close(depth), lit("]"))

        def item_exprs(i: int) -> tuple[Expr, Expr]:
            base = prefix[i] if i < k else rest
            if i < c.start:
                return NOTHING, self.ref(base, depth + 1)
            m = self.ref(conj(base, c.sub), depth + 1)
            nm = alt([self.ref(conj(base, f), depth + 1) for f in self._flip_atoms(c.sub)])
            return m, nm

        def ok(i: int, m: int) -> bool:
            return i >= lo and m >= c.min and (c.max is None or m <= c.max)

        def inc(m: int) -> int:
            return min(m + 1, cap) if c.max is None else m + 1

        def may_match(m: int) -> bool:
            return c.max is None or m < c.max

        work: list = []

        def state(i: int, m: int) -> Expr:
            key = (i, m)
            if key not in memo:
                name = memo[key] = f"{tag}_{i}_{m}"
                self.rules[name] = NOTHING
                work.append((i, m, name))
            return Ref(memo[key])

        def build_state(i: int, m: int, name: str) -> None:
            sep = L.open(depth) if i == 0 else L.sep(depth)
            fin = []
            if ok(i, m):
                fin = [seq(L.empty(), lit("]")) if i == 0 else close_full]
            if hi is None and i >= horizon:
                M, N = item_exprs(i)
                if c.max is None and m >= cap:
                    body = seq(repeat(seq(L.sep(depth), alt(M, N)), 0, None), close_full)
                else:
                    nxt = [seq(L.sep(depth), M, state(i, inc(m)))] if may_match(m) else []
                    body = seq(repeat(seq(L.sep(depth), N), 0, None), alt([close_full] * ok(i, m) + nxt))
                self.rules[name] = body
                return
            opts = list(fin)
            if hi is None or i < hi:
                M, N = item_exprs(i)
                ni = i + 1 if hi is not None else min(i + 1, horizon)
                opts.append(seq(sep, N, state(ni, m)))
                if may_match(m):
                    opts.append(seq(sep, M, state(ni, inc(m))))
            self.rules[name] = alt(opts)

        top = seq(lit("["), state(0, 0))
        while work:
            build_state(*work.pop())
        return top

    def _finite_values(self, sub: Sub, where: str = "") -> list[tuple[str, object, list[Record]]]:
        """The finitely many values of a sub-schema, or UnsupportedSchema."""
        out: dict[str, tuple[object, list[Record]]] = {}
        for r in self.dnf_sub(sub):
            if isinstance(r, NullR):
                vals = [None]
            elif isinstance(r, BoolR):
                vals = sorted(r.values)
            elif isinstance(r, NumR) and r.spec.points is not None:
                vals = list(r.spec.points)
            elif isinstance(r, (StrR, ArrR, ObjR)) and r.values is not None:
                vals = r.values.items()
            else:
                raise self.unsupported("uniqueItems is only enforced for items with finitely many values "
                                       "(enum/const/boolean/null)", "uniqueItems", where)
            for x in vals:
                k = canon(x)
                out.setdefault(k, (x, []))[1].append(r)
        if len(out) > self.limits.max_unique_universe:
            raise self.unsupported(f"uniqueItems over {len(out)} possible values (at most "
                                   f"{self.limits.max_unique_universe} are enforced)", "uniqueItems", where)
        return [(k, x, rs) for k, (x, rs) in out.items()]

    def _value_in(self, recs: list[Record], x, depth: int) -> Expr:
        parts = []
        for r in recs:
            if isinstance(r, NumR):
                parts.append(number_language(replace(r.spec, points=(x,)), self.rules))
            elif isinstance(r, (StrR, ArrR, ObjR)) and r.values is not None:
                if self.accepts(replace(r, values=None), x):
                    parts.append(self.const_lang(x, depth))
            elif self.accepts(r, x):
                parts.append(self.const_lang(x, depth))
        return alt(parts)

    def _unique_array(self, r: ArrR, prefix, rest, lo, hi, depth: int) -> Expr:
        L = self.layout
        k = len(prefix)
        per_pos: list[list] = []
        universe: dict[str, int] = {}
        for i in range(k + 1):
            sub = prefix[i] if i < k else rest
            vals = self._finite_values(sub, r.src) if sub != FALSE else []
            per_pos.append(vals)
            for key, _x, _rs in vals:
                universe.setdefault(key, len(universe))
        if len(universe) > self.limits.max_unique_universe:
            raise self.unsupported("uniqueItems universe too large", "uniqueItems", r.src)
        maxlen = k + len(universe)
        hi = maxlen if hi is None else min(hi, maxlen)
        if lo > hi:
            return NOTHING
        self._obj_count += 1
        tag = f"u{self._obj_count}"
        memo: dict[tuple[int, int], str] = {}
        close = seq(L.close(depth), lit("]"))

        work: list = []

        def state(i: int, used: int) -> Expr:
            key = (i, used)
            if key not in memo:
                name = f"{tag}_{i}_{used}"
                memo[key] = name
                self.rules[name] = NOTHING
                work.append((i, used, name))
            return Ref(memo[key])

        def build_state(i: int, used: int, name: str) -> None:
            if True:
                opts = [close] if (i >= lo and i > 0) else []
                if i < hi:
                    vals = per_pos[min(i, k)]
                    for vkey, x, rs in vals:
                        bit = 1 << universe[vkey]
                        if used & bit:
                            continue
                        e = self._value_in(rs, x, depth + 1)
                        if e == NOTHING:
                            continue
                        sep = L.open(depth) if i == 0 else L.sep(depth)
                        opts.append(seq(sep, e, state(i + 1, used | bit)))
                self.rules[name] = alt(opts)

        first = [seq(L.empty(), lit("]"))] if lo == 0 else []
        top = seq(lit("["), alt(first + [state(0, 0)]))
        while work:
            build_state(*work.pop())
        return top

    # ------------------------------------------------------------------ objects
    def object_members(self, r: ObjR) -> _ObjInfo | None:
        """Named members (with their value sub) and key classes of an object record, or None
        when a required member can have no value (the record is empty)."""
        names: list[str] = list(r.order)
        for part in r.parts:
            for n, _ in part.props:
                if n not in names:
                    names.append(n)
        for n in sorted(r.required | r.forbidden):
            if n not in names:
                names.append(n)
        named: dict[str, Sub] = {}
        for n in names:
            s = self.key_sub(r, n)
            if n in r.forbidden or not all(text_matches(lang, n) for lang in r.names):
                s = FALSE
            named[n] = s
            if s == FALSE and n in r.required:
                return None
        pats: list[tuple[int, str, Sub]] = []
        for pi, part in enumerate(r.parts):
            for p, s in part.patterns:
                pats.append((pi, p, s))
        if len(pats) > self.limits.max_pattern_properties:
            raise self.unsupported(f"{len(pats)} patternProperties on one object (at most "
                                   f"{self.limits.max_pattern_properties})", "patternProperties", r.src)
        classes: dict[Sub, list[Expr]] = {}
        exclude = [Not(alt([lit(n) for n in names]))] if names else []
        for mask in range(1 << len(pats)):
            subs = []
            langs = []
            for j, (pi, p, s) in enumerate(pats):
                rx = Regex(p, "ecma", "", True)
                if mask >> j & 1:
                    subs.append(s)
                    langs.append(rx)
                else:
                    langs.append(Not(rx))
            for pi, part in enumerate(r.parts):
                if not any(mask >> j & 1 for j, (pj, _p, _s) in enumerate(pats) if pj == pi):
                    subs.append(part.additional)
            value = conj(*subs)
            if value == FALSE:
                continue
            key = langs + exclude + list(r.names)
            classes.setdefault(value, []).append(
                And(tuple(key)) if len(key) > 1 else (key[0] if key else Repeat(ANY_CHAR, 0, None)))
        return _ObjInfo(names, named, [(alt(ks), v) for v, ks in classes.items()])

    def emit_object(self, r: ObjR, depth: int) -> Expr:
        if r.values is not None:
            return self.emit_values(r, depth)
        info = self.object_members(r)
        if info is None:
            return NOTHING
        ex = list(r.exists)
        if len(ex) > 3:
            raise self.unsupported("more than 3 'some member is ...' constraints on one object", "not", r.src)
        members = []
        for n in info.names:
            s = info.named[n]
            if s == FALSE:
                continue
            hits = [j for j, e in enumerate(ex) if text_matches(e.key, n)]
            variants = []
            for v_sub, bits in self._exists_variants(s, [(j, ex[j].sub) for j in hits]):
                variants.append((self.ref(v_sub, depth + 1), bits))
            if variants:
                members.append((self.encoder.literal(n), variants, n in r.required, n))
            elif n in r.required:
                return NOTHING
        classes = []
        for key, s in info.classes:
            # split the key class by every exists constraint's key language
            pieces = [(key, [])]
            for j, e in enumerate(ex):
                nxt = []
                for k, hits in pieces:
                    nxt.append((And((k, e.key)), hits + [j]))
                    nxt.append((And((k, Not(e.key))), hits))
                pieces = nxt
            for k, hits in pieces:
                kexpr = seq(lit('"'), self.encoder.encode(k), lit('"'))
                for v_sub, bits in self._exists_variants(s, [(j, ex[j].sub) for j in hits]):
                    classes.append((kexpr, self.ref(v_sub, depth + 1), bits))
        return self.build_object(members, classes, r.min_props, r.max_props, r.deps, depth, src=r.src,
                                 n_exists=len(ex))

    def _exists_variants(self, sub: Sub, hits: list[tuple[int, Sub]]) -> list[tuple[Sub, int]]:
        """A member's value sub split by the exists constraints its key falls under: each variant
        says which constraints it satisfies (value in the constraint's sub or in its complement)."""
        out = [(sub, 0)]
        for j, esub in hits:
            nxt = []
            for s, bits in out:
                yes = conj(s, esub)
                if yes != FALSE:
                    nxt.append((yes, bits | 1 << j))
                if esub != TRUE:
                    for f in self._flip_atoms(esub):
                        no = conj(s, f)
                        if no != FALSE:
                            nxt.append((no, bits))
            out = nxt
        return out

    def build_object(self, members, classes, min_p, max_p, deps, depth, prefix="o", src: str = "",
                     n_exists: int = 0) -> Expr:
        """'{' ... '}' in the configured key order.

        members: named members (key expr, [(value expr, exists bits)], required, name); classes:
        (key expr, value expr, exists bits) for any number of other members; count bounds;
        dependentRequired; n_exists "some member is ..." constraints, each one a bit that a
        member variant sets and that must all be set when the object closes.
        """
        L = self.layout
        self._obj_count += 1
        tag = f"{prefix}{self._obj_count}"
        # a dependency on a member that can never appear forbids its trigger (to a fixpoint)
        present = {m[3] for m in members}
        changed = True
        while changed:
            changed = False
            for a, bs in deps:
                if a in present and any(b not in present for b in bs):
                    present.discard(a)
                    changed = True
        if any(m[2] and m[3] not in present for m in members):
            return NOTHING
        members = [m for m in members if m[3] in present]
        idx = {m[3]: i for i, m in enumerate(members)}
        dep_pairs = [(idx[a], [idx[b] for b in bs]) for a, bs in deps if a in idx]
        required = [i for i, m in enumerate(members) if m[2]]
        need = (1 << n_exists) - 1
        cap = max(1, min_p, (max_p + 1) if max_p is not None else 0)
        inc = (lambda c: min(c + 1, cap)) if max_p is None else (lambda c: c + 1)
        can_add = (lambda c: True) if max_p is None else (lambda c: c < max_p)
        by_bits: dict[int, list[Expr]] = {}
        for k, v, bits in classes:
            by_bits.setdefault(bits, []).append(seq(k, L.colon(), v))
        K = {bits: alt(xs) for bits, xs in by_bits.items()}
        member_vars = [[(seq(m[0], L.colon(), v), bits) for v, bits in m[1]] for m in members]
        close_full = seq(L.close(depth), lit("}"))
        close_empty = seq(L.empty(), lit("}"))
        sep = lambda c: L.open(depth) if c == 0 else L.sep(depth)

        def deps_ok(seen: int) -> bool:
            return all(not (seen >> a & 1) or all(seen >> b & 1 for b in bs) for a, bs in dep_pairs)

        def closing(c: int, seen: int, ex: int) -> list[Expr]:
            if c < min_p or ex != need or not deps_ok(seen):
                return []
            return [close_empty if c == 0 else close_full]

        memo: dict[tuple, str] = {}
        work: list = []  # states are built from a worklist: no Python recursion per member

        def rule(key, build) -> Expr:
            name = memo.get(key)
            if name is None:
                name = f"{tag}_{'_'.join(map(str, key))}"
                memo[key] = name
                self.rules[name] = NOTHING
                work.append((name, build))
                if len(self.rules) > self.limits.max_rules:
                    raise LimitExceeded(f"grammar has more than {self.limits.max_rules} rules")
            return Ref(name)

        def finish(top: Expr) -> Expr:
            while work:
                name, build = work.pop()
                self.rules[name] = build()
            return top

        def class_steps(c: int, ex: int, nxt) -> tuple[Expr | None, list[Expr]]:
            """Key-class members from count c: (a loop over members that change nothing, when the
            count is saturated) and the steps to the following states."""
            if not K or not can_add(c):
                return None, []
            if max_p is None and c == cap:
                neutral = [e for bits, e in K.items() if bits | ex == ex]
                loop = repeat(seq(L.sep(depth), alt(neutral)), 0, None) if neutral else None
                steps = [seq(L.sep(depth), e, nxt(c, ex | bits)) for bits, e in K.items() if bits | ex != ex]
                return loop, steps
            return None, [seq(sep(c), e, nxt(inc(c), ex | bits)) for bits, e in K.items()]

        dep_bits = {a for a, _ in dep_pairs} | {b for _, bs in dep_pairs for b in bs}

        tracked = set(range(len(members)))
        order = self.order
        if order == "flexible":
            # only keys whose presence matters are tracked (each at most once); the others may
            # come in any order and are not deduplicated (a JSON parser keeps the last value;
            # every value is still validated). A minimum count needs every key tracked.
            if not min_p:
                tracked = set(required) | dep_bits
            if len(tracked) > self.limits.max_any_order_properties:
                self.warnings.append(f"{src or '#'}: {len(tracked)} keys to track is too many for "
                                     "property_order='flexible'; this object uses schema order")
                order = "schema"
        if order in ("any", "flexible") and len(members) > 0:
            if len(tracked) > self.limits.max_any_order_properties:
                raise self.unsupported(
                    f"property_order='any' supports at most {self.limits.max_any_order_properties} named "
                    f"properties per object; this one has {len(members)} (property_order='flexible' "
                    "tracks only the required ones)", "properties", src)
            all_req = sum(1 << i for i in required)
            if len(members) > 2 and len(tracked) > 2:
                # every key-subset state offers every member: inlined values would be copied
                # into each of the 2^tracked states, so they stay frames of their own (a few
                # copies are cheaper than frames: no context-dependent tokens at run time)
                self._frames.update(e.name for m in members for e, _ in m[1] if isinstance(e, Ref))

            def T(seen: int, c: int, ex: int) -> Expr:
                def build():
                    fin = closing(c, seen, ex) if (seen & all_req) == all_req else []
                    named = []
                    if can_add(c):
                        for i in range(len(members)):
                            if i not in tracked:
                                for e, bits in member_vars[i]:
                                    named.append(seq(sep(c), e, T(seen, inc(c), ex | bits)))
                            elif not seen >> i & 1:
                                for e, bits in member_vars[i]:
                                    named.append(seq(sep(c), e, T(seen | 1 << i, inc(c), ex | bits)))
                    loop, steps = class_steps(c, ex, lambda c2, ex2: T(seen, c2, ex2))
                    body = alt(fin + named + steps)
                    return seq(loop, body) if loop is not None else body
                return rule((seen, c, ex), build)

            return finish(seq(lit("{"), T(0, 0, 0)))

        def B(i: int, c: int, mask: int, ex: int) -> Expr:
            """Members i.. of the schema order; c members so far; mask: dependency members seen."""
            def build():
                if i == len(members):
                    return A(c, mask, ex)
                opts = []
                if not members[i][2]:
                    opts.append(B(i + 1, c, mask, ex))
                if can_add(c):
                    bit = (1 << i) if i in dep_bits else 0
                    for e, bits in member_vars[i]:
                        opts.append(seq(sep(c), e, B(i + 1, inc(c), mask | bit, ex | bits)))
                return alt(opts)
            return rule((i, c, mask, ex), build)

        def A(c: int, mask: int, ex: int) -> Expr:
            """Only key-class members remain."""
            def build():
                loop, steps = class_steps(c, ex, lambda c2, ex2: A(c2, mask, ex2))
                body = alt(closing(c, mask, ex) + steps)
                return seq(loop, body) if loop is not None else body
            return rule(("a", c, mask, ex), build)

        return finish(seq(lit("{"), B(0, 0, 0, 0)))


@dataclass
class _ObjInfo:
    names: list[str]
    named: dict[str, Sub]
    classes: list[tuple[Expr, Sub]]




def _cap(recs, lim):
    if len(recs) > lim:
        raise LimitExceeded(f"schema expands to more than {lim} alternatives")
    return recs


def _as_list(x, node: Node, kw: str) -> list:
    if not isinstance(x, list) or not x:
        raise InvalidSchema(f"{kw} must be a non-empty array", pointer=node.where)
    return x


def finite_records(vals) -> tuple[Record, ...]:
    by: dict[str, list] = {}
    for x in vals:
        by.setdefault(json_type(x), []).append(x)
    out: list[Record] = []
    for t, xs in by.items():
        if t == "null":
            out.append(NullR())
        elif t == "boolean":
            out.append(BoolR(frozenset(xs)))
        elif t == "number":
            for x in xs:
                if isinstance(x, float) and not math.isfinite(x):
                    raise InvalidSchema("non-finite number in enum/const")
            seen = {}
            for x in xs:
                seen.setdefault(canon(x), x)
            out.append(NumR(NumSpec(points=tuple(seen.values()))))
        elif t == "string":
            out.append(StrR(values=Values.of(xs)))
        elif t == "array":
            out.append(ArrR(values=Values.of(xs)))
        else:
            out.append(ObjR(values=Values.of(xs)))
    return tuple(out)


def _make_layout(whitespace, max_whitespace) -> Layout:
    from structgen.schema._jsontext import DEFAULT_MAX_WHITESPACE

    mw = DEFAULT_MAX_WHITESPACE if max_whitespace is None else int(max_whitespace)
    if whitespace == "flexible":
        return Layout("flexible", mw)
    if whitespace == "compact":
        return Layout("compact", 0)
    if isinstance(whitespace, dict) and set(whitespace) == {"indent"}:
        n = whitespace["indent"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError("indent must be a non-negative integer")
        return Layout("indent", 0, n)
    raise ValueError("whitespace must be 'flexible', 'compact' or {'indent': n}")


def json_schema_to_grammar(schema, *, whitespace="flexible", max_whitespace=None, property_order="schema",
                           lenient=False, draft=None, string_escapes="canonical", resources=None,
                           limits: Limits | None = None) -> tuple[Grammar, list[str]]:
    """JSON Schema -> (grammar IR, warnings).

    schema: dict/bool, JSON text, or a pydantic v2 model class. whitespace: "flexible" (JSON
    whitespace, at most `max_whitespace` characters per gap, default 16), "compact" (none) or
    {"indent": n} (exactly json.dumps(indent=n)). property_order: "schema" (named keys in schema
    order, then other keys), "any" (any order, each key once; at most 8 named properties per
    object) or "flexible" (any order; only required/dependency keys tracked, see the package
    docstring). string_escapes: "canonical" (the escapes json.dumps writes) or "any" (every RFC 8259
    escape). draft: "2020-12" / "2019-09" / "7" / "6" / "4", default from $schema, else 2020-12.
    resources: {uri: schema} for references outside the document. lenient: ignore what cannot be
    enforced exactly, listing it in the warnings, instead of raising UnsupportedSchema.
    """
    c = SchemaCompiler(schema, whitespace=whitespace, max_whitespace=max_whitespace,
                       property_order=property_order, lenient=lenient, draft=draft, resources=resources,
                       limits=limits, string_escapes=string_escapes)
    try:
        g = c.build()
    except RecursionError:
        raise LimitExceeded("schema nested too deeply to compile") from None
    return g, list(c.warnings)
