"""The normalized form schemas are compiled through: unions of single-typed records.

A schema's meaning is a set of JSON values. We represent it in disjunctive normal form: a tuple
of *records*, each constraining one JSON type with a conjunction of per-type constraints. That is
what makes `allOf` a real intersection (merge records of the same type), `anyOf` a union, and
`not` a complement (De Morgan over the record's constraints, where each piece is expressible).

Sub-schemas (property values, array items, ...) are referenced by a `Sub`: a conjunction of
located schema nodes with a polarity (node id, True = the node, False = its complement). Each
distinct `Sub` becomes one grammar rule, so recursion and sharing come for free.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from structgen.grammar.ir import Expr
from structgen.schema._numbers import NumSpec

Sub = frozenset  # frozenset[tuple[int, bool]]
TRUE: Sub = frozenset()
FALSE: Sub = frozenset({(-1, True)})


def conj(*subs: Sub) -> Sub:
    out: set = set()
    for s in subs:
        if s == FALSE:
            return FALSE
        out |= s
    for n, pol in out:
        if (n, not pol) in out:
            return FALSE
    return frozenset(out)


TYPES = ("null", "boolean", "number", "string", "array", "object")


def json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise TypeError(f"not a JSON value: {v!r}")


def canon(v) -> str:
    """A key such that canon(a) == canon(b) iff a and b are equal JSON values (JSON Schema rules:
    1 == 1.0, object member order is irrelevant, true != 1)."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float)):
        from fractions import Fraction

        if isinstance(v, float) and not math.isfinite(v):
            return repr(v)
        f = Fraction(v)
        return f"n{f.numerator}/{f.denominator}"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + canon(v[k]) for k in sorted(v)) + "}"
    raise TypeError(f"not a JSON value: {v!r}")


@dataclass(frozen=True)
class Values:
    """A finite set of JSON values of one type (from enum/const), deduplicated by `canon`."""

    texts: tuple[str, ...]  # json.dumps of each value, original member order kept

    @staticmethod
    def of(values: Iterable) -> Values:
        seen: dict[str, str] = {}
        for v in values:
            seen.setdefault(canon(v), json.dumps(v))
        return Values(tuple(sorted(seen.values())))

    def items(self) -> list:
        return [json.loads(t) for t in self.texts]

    def canon_keys(self) -> set[str]:
        return {canon(json.loads(t)) for t in self.texts}

    def intersect(self, other: Values | None) -> Values:
        if other is None:
            return self
        ok = other.canon_keys()
        return Values(tuple(t for t in self.texts if canon(json.loads(t)) in ok))


def _vals_and(a: Values | None, b: Values | None) -> Values | None:
    if a is None:
        return b
    return a.intersect(b)


# ============================================================================ records

@dataclass(frozen=True)
class NullR:
    type = "null"


@dataclass(frozen=True)
class BoolR:
    values: frozenset = frozenset({True, False})
    type = "boolean"


@dataclass(frozen=True)
class NumR:
    spec: NumSpec = field(default_factory=NumSpec)
    type = "number"


@dataclass(frozen=True)
class StrR:
    parts: tuple[Expr, ...] = ()   # char-level languages the string must be in
    min_len: int = 0
    max_len: int | None = None
    values: Values | None = None
    type = "string"


@dataclass(frozen=True)
class Contains:
    sub: Sub
    min: int = 1
    max: int | None = None
    start: int = 0  # only items at index >= start are counted


@dataclass(frozen=True)
class ArrR:
    prefix: tuple[Sub, ...] = ()
    rest: Sub = TRUE
    min_items: int = 0
    max_items: int | None = None
    contains: tuple[Contains, ...] = ()
    unique: bool = False
    values: Values | None = None
    src: str = field(default="", compare=False)  # JSON pointer for error messages
    type = "array"

    def item(self, i: int) -> Sub:
        return self.prefix[i] if i < len(self.prefix) else self.rest


@dataclass(frozen=True)
class ObjPart:
    """properties / patternProperties / additionalProperties of ONE schema object (their
    interplay -- "additional" means "matched by neither" -- is local to the schema object)."""

    props: tuple[tuple[str, Sub], ...] = ()
    patterns: tuple[tuple[str, Sub], ...] = ()
    additional: Sub = TRUE

    def is_trivial(self) -> bool:
        return all(s == TRUE for _, s in self.props) and all(s == TRUE for _, s in self.patterns) \
            and self.additional == TRUE


@dataclass(frozen=True)
class Exists:
    """Some member has a key in `key` (char-level language) and a value in `sub` (what the
    complement of additionalProperties / patternProperties turns into)."""

    key: Expr
    sub: Sub


@dataclass(frozen=True)
class ObjR:
    parts: tuple[ObjPart, ...] = ()
    required: frozenset = frozenset()
    forbidden: frozenset = frozenset()
    min_props: int = 0
    max_props: int | None = None
    names: tuple[Expr, ...] = ()          # char-level languages every key must be in
    deps: tuple[tuple[str, frozenset], ...] = ()
    order: tuple[str, ...] = ()           # names mentioned, in schema order
    values: Values | None = None
    src: str = field(default="", compare=False)  # JSON pointer for error messages
    exists: tuple[Exists, ...] = ()
    type = "object"


Record = NullR | BoolR | NumR | StrR | ArrR | ObjR

FULL: dict[str, Record] = {"null": NullR(), "boolean": BoolR(), "number": NumR(), "string": StrR(),
                           "array": ArrR(), "object": ObjR()}
ALL: tuple[Record, ...] = tuple(FULL[t] for t in TYPES)


def _merge_spec(a: NumSpec, b: NumSpec) -> NumSpec | None:
    if a.integral is not None and b.integral is not None and a.integral != b.integral:
        return None
    integral = a.integral if a.integral is not None else b.integral
    points = a.points
    if b.points is not None:
        if points is None:
            points = b.points
        else:
            keep = {canon(x) for x in b.points}
            points = tuple(x for x in points if canon(x) in keep)
    return NumSpec(a.bounds + b.bounds, integral, a.mults + b.mults, a.nonmults + b.nonmults,
                   a.excluded + b.excluded, points, a.int_text or b.int_text, a.float_text or b.float_text)


def _min_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def merge(a: Record, b: Record) -> Record | None:
    """Intersection of two records (None when the types differ or it is plainly empty)."""
    if a.type != b.type:
        return None
    if a == b:
        return a
    if isinstance(a, NullR):
        return a
    if isinstance(a, BoolR):
        v = a.values & b.values
        return BoolR(v) if v else None
    if isinstance(a, NumR):
        s = _merge_spec(a.spec, b.spec)
        return NumR(s) if s is not None else None
    if isinstance(a, StrR):
        lo = max(a.min_len, b.min_len)
        hi = _min_opt(a.max_len, b.max_len)
        if hi is not None and lo > hi:
            return None
        parts = a.parts + tuple(p for p in b.parts if p not in a.parts)
        return StrR(parts, lo, hi, _vals_and(a.values, b.values))
    if isinstance(a, ArrR):
        n = max(len(a.prefix), len(b.prefix))
        prefix = tuple(conj(a.item(i), b.item(i)) for i in range(n))
        lo = max(a.min_items, b.min_items)
        hi = _min_opt(a.max_items, b.max_items)
        if hi is not None and lo > hi:
            return None
        cont = a.contains + tuple(c for c in b.contains if c not in a.contains)
        return ArrR(prefix, conj(a.rest, b.rest), lo, hi, cont, a.unique or b.unique,
                    _vals_and(a.values, b.values), a.src or b.src)
    if isinstance(a, ObjR):
        lo = max(a.min_props, b.min_props)
        hi = _min_opt(a.max_props, b.max_props)
        if hi is not None and lo > hi:
            return None
        req = a.required | b.required
        forb = a.forbidden | b.forbidden
        if req & forb:
            return None
        parts = a.parts + tuple(p for p in b.parts if p not in a.parts)
        # key order follows the record that defines properties: a bare `required: [x]` beside
        # an `anyOf` of objects must not move x ahead of the properties listed before it
        first, second = (b, a) if b.parts and not a.parts else (a, b)
        order = first.order + tuple(x for x in second.order if x not in first.order)
        names = a.names + tuple(x for x in b.names if x not in a.names)
        deps = a.deps + tuple(x for x in b.deps if x not in a.deps)
        exists = a.exists + tuple(x for x in b.exists if x not in a.exists)
        return ObjR(parts, req, forb, lo, hi, names, deps, order, _vals_and(a.values, b.values), a.src or b.src,
                    exists)
    raise TypeError(a)


def dedupe(records: Iterable[Record]) -> tuple[Record, ...]:
    out: list[Record] = []
    seen: set = set()
    for r in records:
        if r is None:
            continue
        if isinstance(r, (StrR, ArrR, ObjR)) and r.values is not None and not r.values.texts:
            continue
        if isinstance(r, NumR) and r.spec.points is not None and not r.spec.points:
            continue
        if r not in seen:
            seen.add(r)
            out.append(r)
    # a full record of a type absorbs every other record of that type
    full_types = {r.type for r in out if r == FULL[r.type]}
    return tuple(r for r in out if r.type not in full_types or r == FULL[r.type])


def intersect(a: tuple[Record, ...], b: tuple[Record, ...], limit: int) -> tuple[Record, ...]:
    from structgen.errors import LimitExceeded

    if len(a) * len(b) > limit * 8:
        raise LimitExceeded(f"schema combination too large ({len(a)} x {len(b)} alternatives)")
    out = []
    for r in a:
        for s in b:
            m = merge(r, s)
            if m is not None:
                out.append(m)
    res = dedupe(out)
    if len(res) > limit:
        raise LimitExceeded(f"schema expands to more than {limit} alternatives")
    return res


__all__ = [
    "ALL",
    "FALSE",
    "FULL",
    "TRUE",
    "TYPES",
    "ArrR",
    "BoolR",
    "Contains",
    "Exists",
    "NullR",
    "NumR",
    "ObjPart",
    "ObjR",
    "Record",
    "StrR",
    "Sub",
    "Values",
    "canon",
    "conj",
    "dedupe",
    "field",
    "intersect",
    "json_type",
    "merge",
    "replace",
]
