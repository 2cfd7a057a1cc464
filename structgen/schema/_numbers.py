"""Exact languages of JSON number texts: ranges, integrality, multipleOf.

Why this is more than "a regex for digits": a JSON number may be written as ``5``, ``5.0``,
``5e0`` or ``0.5e1``; validators parse texts with a fraction or exponent as binary floats
(``json.loads('1.1') == 1.1000000000000000888``), and a JSON Schema bound given as a float is a
binary value too. We accept a text only when it is valid both *mathematically* (the decimal value
of the text against the decimal the schema was written with) and *for jsonschema* (float/int
semantics). Every language here is a subset of both, and it always contains the
``json.dumps`` serialization of every value that is valid for both.

Text classes (each gets its own bounds, see `Bounds`):

* integer texts ``-?(0|[1-9]\\d*)``: parsed as Python ints, compared exactly;
* plain decimals ``-?(0|[1-9]\\d*)\\.\\d+``: any length, exact digit comparisons;
* normalized scientific ``-?[1-9](\\.\\d+)?[eE][+-]?\\d+`` (what ``repr(float)`` writes). Other
  exponent spellings (``0.5e1``, ``12e3``) are rejected whenever a constraint applies, because
  "value <= bound" over them is not a regular language (leading zeros vs. exponent).

An unconstrained ``{"type": "number"}`` accepts the whole JSON number grammar.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from structgen.errors import LimitExceeded, UnsupportedSchema
from structgen.grammar.ir import (
    EMPTY,
    NOTHING,
    And,
    Expr,
    Not,
    Ref,
    alt,
    chars,
    lit,
    opt,
    repeat,
    seq,
)

DIGIT = chars("09")
NZDIGIT = chars("19")
DIGITS = repeat(DIGIT, 1, None)
DBL_MAX = 1.7976931348623157e308
TWO53 = 2 ** 53
MAX_BOUND_DIGITS = 400  # a bound needing more digits than this is refused (LimitExceeded)

# The full JSON number grammar (RFC 8259).
INT_PART = alt(lit("0"), seq(NZDIGIT, repeat(DIGIT, 0, None)))
FRAC_PART = seq(lit("."), DIGITS)
EXP_PART = seq(chars("e", "E"), opt(chars("+", "-")), DIGITS)
JSON_NUMBER = seq(opt(lit("-")), INT_PART, opt(FRAC_PART), opt(EXP_PART))
JSON_INTEGER_TEXT = seq(opt(lit("-")), INT_PART)


# ============================================================================ digit strings

def _suffix_ge(s: str) -> list[Expr]:
    """Digit strings t with len(t) == len(s) and t >= s, as a flat list of alternatives
    (t agrees with s up to position i, then has a larger digit): no deep nesting for long s."""
    n = len(s)
    out = [lit(s)] if s else [EMPTY]
    for i in range(n - 1, -1, -1):
        d = s[i]
        if d != "9":
            out.append(seq(lit(s[:i]), chars(chr(ord(d) + 1) + "9" if d != "8" else "9"),
                           repeat(DIGIT, n - 1 - i, n - 1 - i)))
    return out


def _suffix_le(s: str) -> list[Expr]:
    n = len(s)
    out = [lit(s)] if s else [EMPTY]
    for i in range(n - 1, -1, -1):
        d = s[i]
        if d != "0":
            out.append(seq(lit(s[:i]), chars("0" + chr(ord(d) - 1) if d != "1" else "0"),
                           repeat(DIGIT, n - 1 - i, n - 1 - i)))
    return out


def _same_len(a: str, b: str) -> Expr:
    """All digit strings s with len(s) == len(a) == len(b) and a <= s <= b (a flat expression)."""
    n = len(a)
    if n == 0:
        return EMPTY
    if a == b:
        return lit(a)
    k = 0
    while a[k] == b[k]:
        k += 1
    p, rest = a[:k], n - k - 1
    if a[k + 1:] == "0" * rest and b[k + 1:] == "9" * rest:
        return seq(lit(p), chars(a[k] + b[k]), repeat(DIGIT, rest, rest))
    parts = [seq(lit(a[k]), alt(_suffix_ge(a[k + 1:])))]
    if ord(b[k]) - ord(a[k]) > 1:
        lo, hi = chr(ord(a[k]) + 1), chr(ord(b[k]) - 1)
        parts.append(seq(chars(lo + hi if lo != hi else lo), repeat(DIGIT, rest, rest)))
    parts.append(seq(lit(b[k]), alt(_suffix_le(b[k + 1:]))))
    return seq(lit(p), alt(parts))


def uint_range(lo: int, hi: int | None) -> Expr:
    """Canonical unsigned integer texts ``0|[1-9]\\d*`` with lo <= n <= hi (hi None: no bound)."""
    lo = max(lo, 0)
    if hi is not None and lo > hi:
        return NOTHING
    parts = []
    if lo == 0:
        parts.append(lit("0"))
        lo = 1
        if hi is not None and hi < 1:
            return alt(parts)
    ls = str(lo)
    if len(ls) > MAX_BOUND_DIGITS or (hi is not None and len(str(hi)) > MAX_BOUND_DIGITS):
        raise LimitExceeded("numeric bound has too many digits")
    top = len(str(hi)) if hi is not None else len(ls)
    for n in range(len(ls), top + 1):
        a = max(lo, 10 ** (n - 1))
        b = min(hi, 10 ** n - 1) if hi is not None else 10 ** n - 1
        if a <= b:
            parts.append(_same_len(str(a), str(b)))
    if hi is None:
        parts.append(seq(NZDIGIT, repeat(DIGIT, len(ls), None)))
    return alt(parts)


def int_range(lo: int | None, hi: int | None, *, neg_zero: bool = True) -> Expr:
    """Integer texts ``-?(0|[1-9]\\d*)`` whose value is in [lo, hi] (None: unbounded)."""
    if lo is not None and hi is not None and lo > hi:
        return NOTHING
    parts = []
    if hi is None or hi >= 1:
        parts.append(uint_range(max(lo, 1) if lo is not None else 1, hi))
    if (lo is None or lo <= 0) and (hi is None or hi >= 0):
        parts.append(lit("0"))
        if neg_zero:
            parts.append(lit("-0"))
    if lo is None or lo <= -1:
        parts.append(seq(lit("-"), uint_range(max(-hi, 1) if hi is not None else 1,
                                              -lo if lo is not None else None)))
    return alt(parts)


# ============================================================================ fractions

def _frac(lo: str | None, lo_strict: bool, hi: str | None, hi_strict: bool) -> tuple[Expr, bool]:
    """Digit strings F (after the '.') with lo (<|<=) 0.F (<|<=) hi.

    Bounds are digit strings without trailing zeros ("" is 0); None means no bound (0 inclusive,
    1 exclusive). Returns (language of the non-empty F, whether the empty F -- value 0 -- fits).
    """
    return _frac_cached(lo, lo_strict, hi, hi_strict)


@lru_cache(maxsize=65536)
def _frac_cached(lo, lo_strict, hi, hi_strict):
    if lo == "" and not lo_strict:
        lo = None
    eps = (lo is None) and (hi is None or hi != "" or not hi_strict)
    if lo is None and hi is None:
        return DIGITS, True
    if hi == "":
        if hi_strict:
            return NOTHING, False
        return (repeat(lit("0"), 1, None), True) if lo is None else (NOTHING, False)
    if lo == "" and hi is None:  # > 0: some non-zero digit
        return seq(repeat(lit("0"), 0, None), NZDIGIT, repeat(DIGIT, 0, None)), False
    # Runs of leading zeros in the bounds (tiny values like 5e-324) are consumed in one step, so
    # the expression depth follows the significant digits only.
    zl = len(lo) - len(lo.lstrip("0")) if lo else (0 if lo is None else None)
    zh = len(hi) - len(hi.lstrip("0")) if hi is not None else None
    zeros = lambda a, b: repeat(lit("0"), a, b)
    rest_any = seq(NZDIGIT, repeat(DIGIT, 0, None))
    if lo is None and zh and zh > 1:
        # 0.F < 0.0^z h..: F is all zeros (up to z of them), or 0^z then compare with h..
        e, _ok = _frac_cached(None, False, hi[zh:], hi_strict)
        return alt(zeros(1, zh), seq(zeros(zh, zh), e)), eps
    if hi is None and zl and zl > 1:
        # 0.F > 0.0^z l..: fewer than z leading zeros then a non-zero digit, or 0^z then compare
        e, _ok = _frac_cached(lo[zl:], lo_strict, None, False)
        return alt(seq(zeros(0, zl - 1), rest_any), seq(zeros(zl, zl), e)), False
    if zl is not None and zh is not None and zl and zh and min(zl, zh) > 1:
        z = min(zl, zh)
        e, ok = _frac_cached(lo[z:], lo_strict, hi[z:], hi_strict)
        out = seq(zeros(z, z), alt(EMPTY, e) if ok else e)
        return (alt(zeros(1, z - 1), out) if eps else out), eps
    groups: dict[object, list[int]] = {}
    for d in range(10):
        if lo is None:
            ls = "free"
        else:
            l0 = int(lo[0]) if lo else 0
            ls = "free" if d > l0 else ("tail" if d == l0 else "dead")
        if hi is None:
            hs = "free"
        else:
            h0 = int(hi[0])
            hs = "free" if d < h0 else ("tail" if d == h0 else "dead")
        if "dead" in (ls, hs):
            continue
        key = (ls, hs)
        groups.setdefault(key, []).append(d)
    parts = []
    for (ls, hs), ds in groups.items():
        if ls == "free" and hs == "free":
            tail = repeat(DIGIT, 0, None)
        else:
            sub_lo = (lo[1:] if lo else "") if ls == "tail" else None
            sub_hi = hi[1:] if hs == "tail" else None
            sub_lo_s = lo_strict if ls == "tail" else False
            sub_hi_s = hi_strict if hs == "tail" else False
            e, ok = _frac_cached(sub_lo, sub_lo_s, sub_hi, sub_hi_s)
            tail = alt(EMPTY, e) if ok else e
        parts.append(seq(_digit_class(ds), tail))
    return alt(parts), eps


def _digit_class(ds: list[int]) -> Expr:
    if len(ds) == 1:
        return lit(str(ds[0]))
    return chars(*[(ord("0") + d, ord("0") + d) for d in ds])


def _dec(q: Fraction) -> tuple[int, str]:
    """(integer part, fraction digits without trailing zeros) of a non-negative finite decimal."""
    if q < 0:
        raise ValueError("negative")
    ip = q.numerator // q.denominator
    rem = q - ip
    digits = []
    while rem:
        rem *= 10
        d = rem.numerator // rem.denominator
        digits.append(str(d))
        rem -= d
        if len(digits) > MAX_BOUND_DIGITS:
            raise LimitExceeded("numeric bound has too many digits")
    return ip, "".join(digits)


# ============================================================================ intervals

@dataclass(frozen=True)
class Interval:
    """An interval of rationals; None ends are infinite."""

    lo: Fraction | None = None
    lo_strict: bool = False
    hi: Fraction | None = None
    hi_strict: bool = False

    def empty(self) -> bool:
        if self.lo is None or self.hi is None:
            return False
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_strict or self.hi_strict))

    def contains(self, v: Fraction) -> bool:
        if self.lo is not None and (v < self.lo or (self.lo_strict and v == self.lo)):
            return False
        return not (self.hi is not None and (v > self.hi or (self.hi_strict and v == self.hi)))

    def intersect(self, o: Interval) -> Interval:
        lo, ls = _max_lo((self.lo, self.lo_strict), (o.lo, o.lo_strict))
        hi, hs = _min_hi((self.hi, self.hi_strict), (o.hi, o.hi_strict))
        return Interval(lo, ls, hi, hs)

    def neg(self) -> Interval:
        return Interval(-self.hi if self.hi is not None else None, self.hi_strict,
                        -self.lo if self.lo is not None else None, self.lo_strict)


def _max_lo(a, b):
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    return a[0], a[1] or b[1]


def _min_hi(a, b):
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    if a[0] != b[0]:
        return a if a[0] < b[0] else b
    return a[0], a[1] or b[1]


def udec(iv: Interval, frac: str) -> Expr:
    """Unsigned plain decimals I(.F) with I canonical and value in iv (iv.lo >= 0 or None).

    frac: "required" (I.F), "optional" (I or I.F) -- the fraction may have trailing zeros.
    """
    lo, ls, hi, hs = iv.lo, iv.lo_strict, iv.hi, iv.hi_strict
    if lo is None or lo < 0:
        lo, ls = Fraction(0), False
    if hi is not None and (hi < lo or (hi == lo and (ls or hs))):
        return NOTHING
    il, fl = _dec(lo)
    parts = []

    def tail(e_ok: tuple[Expr, bool]) -> Expr:
        e, ok = e_ok
        body = seq(lit("."), e)
        if frac == "optional" and ok:
            return alt(EMPTY, body)
        return body

    any_frac = seq(lit("."), DIGITS)
    free_tail = alt(EMPTY, any_frac) if frac == "optional" else any_frac
    if hi is None:
        parts.append(seq(lit(str(il)), tail(_frac(fl, ls, None, False))))
        parts.append(seq(uint_range(il + 1, None), free_tail))
        return alt(parts)
    ih, fh = _dec(hi)
    if il == ih:
        return seq(lit(str(il)), tail(_frac(fl, ls, fh, hs)))
    parts.append(seq(lit(str(il)), tail(_frac(fl, ls, None, False))))
    if ih - il >= 2:
        parts.append(seq(uint_range(il + 1, ih - 1), free_tail))
    parts.append(seq(lit(str(ih)), tail(_frac(None, False, fh, hs))))
    return alt(parts)


def _exp10(q: Fraction) -> int:
    """k with 10**k <= q < 10**(k+1), q > 0."""
    k = len(str(q.numerator)) - len(str(q.denominator))
    while Fraction(10) ** k > q:
        k -= 1
    while Fraction(10) ** (k + 1) <= q:
        k += 1
    return k


def exponent_range(a: int | None, b: int | None) -> Expr:
    """Exponent suffixes ``[eE][+-]?\\d+`` whose value X is in [a, b] (None: unbounded)."""
    if a is not None and b is not None and a > b:
        return NOTHING
    parts = []
    zeros = repeat(lit("0"), 0, None)
    if b is None or b >= 1:
        parts.append(seq(opt(lit("+")), zeros, uint_range(max(a, 1) if a is not None else 1, b)))
    if (a is None or a <= 0) and (b is None or b >= 0):
        parts.append(seq(opt(chars("+", "-")), repeat(lit("0"), 1, None)))
    if a is None or a <= -1:
        parts.append(seq(lit("-"), zeros, uint_range(max(-b, 1) if b is not None else 1,
                                                       -a if a is not None else None)))
    body = alt(parts)
    return seq(chars("e", "E"), body) if body != NOTHING else NOTHING


def _integral_mantissa(x: int) -> Expr:
    """Mantissas d(.F)? with at most x significant fraction digits (trailing zeros free)."""
    if x <= 0:
        return seq(NZDIGIT, opt(seq(lit("."), repeat(lit("0"), 1, None))))
    return seq(NZDIGIT, opt(seq(lit("."), repeat(DIGIT, 1, x), repeat(lit("0"), 0, None))))


SCI_INTEGRAL_LUMP = 16  # integral exponent forms: exponent >= 16, at most 16 fraction digits (repr)


def usci(iv: Interval, integral: bool = False) -> Expr:
    """Unsigned normalized scientific texts d(.F)?[eE]X with value in iv (which must be > 0)."""
    lo, ls, hi, hs = iv.lo, iv.lo_strict, iv.hi, iv.hi_strict
    if lo is None or lo <= 0:
        lo, ls = None, False
    if hi is not None and hi <= 0:
        return NOTHING
    if lo is not None and hi is not None and (hi < lo or (hi == lo and (ls or hs))):
        return NOTHING
    xl = _exp10(lo) if lo is not None else None
    xh = _exp10(hi) if hi is not None else None
    parts = []
    one, ten = Fraction(1), Fraction(10)

    def mantissa(x: int) -> Expr:
        scale = Fraction(10) ** x
        mlo, mls = (lo / scale, ls) if (lo is not None and x == xl) else (one, False)
        if mlo < one:
            mlo, mls = one, False
        if hi is not None and x == xh:
            mhi, mhs = hi / scale, hs
        else:
            mhi, mhs = ten, True
        body = udec(Interval(mlo, mls, mhi, mhs), "optional")
        if integral:
            body = And((body, _integral_mantissa(min(x, SCI_INTEGRAL_LUMP))))
        return seq(body, exponent_range(x, x))

    specials = sorted({x for x in (xl, xh) if x is not None})
    for x in specials:
        if integral and x < SCI_INTEGRAL_LUMP:
            continue
        parts.append(mantissa(x))
    # exponents strictly between the special ones take any mantissa
    a = xl + 1 if xl is not None else None
    b = xh - 1 if xh is not None else None
    if integral:
        a = max(a, SCI_INTEGRAL_LUMP) if a is not None else SCI_INTEGRAL_LUMP
        if b is None or b >= a:
            parts.append(seq(_integral_mantissa(SCI_INTEGRAL_LUMP), exponent_range(a, b)))
    elif a is None or b is None or a <= b:
        parts.append(seq(NZDIGIT, opt(seq(lit("."), DIGITS)), exponent_range(a, b)))
    return alt(parts)


# ============================================================================ bounds

def dec_value(x) -> Fraction:
    """The decimal a schema author wrote: a float's shortest repr, an int exactly."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int):
        return Fraction(x)
    if isinstance(x, Fraction):
        return x
    if not math.isfinite(x):
        raise ValueError("non-finite number")
    return Fraction(repr(float(x)))


def _floats_ge(b, strict: bool) -> float:
    """The smallest float >= b (> b when strict); b an int or float."""
    f = float(b)
    if Fraction(f) < Fraction(b) or (strict and Fraction(f) == Fraction(b)):
        f = math.nextafter(f, math.inf)
    return f


def _floats_le(b, strict: bool) -> float:
    f = float(b)
    if Fraction(f) > Fraction(b) or (strict and Fraction(f) == Fraction(b)):
        f = math.nextafter(f, -math.inf)
    return f


def _check_bound(b, keyword: str, pointer: str):
    if isinstance(b, bool) or not isinstance(b, (int, float)):
        from structgen.errors import InvalidSchema

        raise InvalidSchema(f"{keyword} must be a number", pointer=pointer)
    if isinstance(b, float) and not math.isfinite(b):
        raise UnsupportedSchema("non-finite bound", keyword=keyword, pointer=pointer)
    if abs(b) > 1e300:
        raise UnsupportedSchema("bound beyond 1e300", keyword=keyword, pointer=pointer)
    return True


@dataclass(frozen=True)
class Bound:
    """One schema bound: value (int/float as the schema gave it), strict, lower/upper."""

    value: object
    strict: bool
    lower: bool

    def int_interval(self) -> Interval:
        """For integer texts: Python compares int with int/float exactly, plus the decimal."""
        ex = Fraction(self.value)
        dv = dec_value(self.value)
        if self.lower:
            v = max(ex, dv)
            return Interval(v, self.strict, None, False)
        v = min(ex, dv)
        return Interval(None, False, v, self.strict)

    def float_interval(self) -> Interval:
        """For texts parsed as floats: snap to the shortest repr of the first valid float.

        round(t) >= G iff t >= (midpoint below G); every t >= repr(G) qualifies, and repr is
        monotone, so repr(x) of every valid float x is kept while the bound stays short.
        """
        dv = dec_value(self.value)
        if self.lower:
            g = _floats_ge(self.value, self.strict)
            snap = Fraction(repr(g))
            lo, ls = _max_lo((snap, False), (dv, self.strict))
            return Interval(lo, ls, None, False)
        g = _floats_le(self.value, self.strict)
        snap = Fraction(repr(g))
        hi, hs = _min_hi((snap, False), (dv, self.strict))
        return Interval(None, False, hi, hs)


def _split_points(iv: Interval, points: list[Fraction]) -> list[Interval]:
    out = [iv]
    for p in sorted(set(points)):
        nxt = []
        for x in out:
            if x.contains(p):
                nxt.append(Interval(x.lo, x.lo_strict, p, True))
                nxt.append(Interval(p, True, x.hi, x.hi_strict))
            else:
                nxt.append(x)
        out = [x for x in nxt if not x.empty()]
    return out


# ============================================================================ multipleOf

MOD_ENUM_LIMIT = 200     # enumerate multiples when there are at most this many in range
MOD_DFA_LIMIT = 3000     # node budget for the remainder automaton -> IR conversion


def _expr_size(e: Expr, memo=None) -> int:
    from structgen.grammar.ir import Alt as _A
    from structgen.grammar.ir import And as _N
    from structgen.grammar.ir import Not as _T
    from structgen.grammar.ir import Repeat as _R
    from structgen.grammar.ir import Seq as _S

    if isinstance(e, (_S, _A, _N)):
        return 1 + sum(_expr_size(x) for x in e.items)
    if isinstance(e, (_R, _T)):
        return 1 + _expr_size(e.item)
    return 1


MOD_MAX_DIGITS = 24  # without an upper bound, multiples of other factors get at most this many digits


def _pow25_multiples(q: int) -> Expr:
    """Canonical unsigned integer texts divisible by q = 2^a 5^b: decided by the last k digits."""
    k = 1
    while 10 ** k % q:
        k += 1
    if 10 ** k > 100000:
        raise LimitExceeded(f"multipleOf {q}: too many digit suffixes")
    small = [lit(str(n)) for n in range(10 ** k) if n % q == 0]          # at most k digits
    suffixes = alt([lit(str(n).zfill(k)) for n in range(10 ** k) if n % q == 0])
    return alt(small + [seq(NZDIGIT, repeat(DIGIT, 0, None), suffixes)])  # k+1 digits or more


@lru_cache(maxsize=64)
def _state_elimination(m: int) -> Expr | None:
    """Canonical texts divisible by m (coprime to 10) by state elimination, or None if too big."""
    R: dict[tuple[int, int], Expr] = {}
    for i in range(m):
        by: dict[int, list[int]] = {}
        for d in range(10):
            by.setdefault((i * 10 + d) % m, []).append(d)
        for j, ds in by.items():
            R[(i, j)] = _digit_class(ds)
    S, F = m, m + 1
    for d in range(1, 10):
        key = (S, d % m)
        R[key] = alt(R.get(key, NOTHING), lit(str(d)))
    R[(0, F)] = EMPTY
    size = 0
    for k in range(m):
        loop = R.pop((k, k), None)
        star = repeat(loop, 0, None) if loop is not None else EMPTY
        ins = [(i, e) for (i, j), e in R.items() if j == k]
        outs = [(j, e) for (i, j), e in R.items() if i == k]
        for i, _ in ins:
            del R[(i, k)]
        for j, _ in outs:
            del R[(k, j)]
        for i, ei in ins:
            for j, ej in outs:
                e = seq(ei, star, ej)
                R[(i, j)] = alt(R[(i, j)], e) if (i, j) in R else e
                size += _expr_size(e)
                if size > MOD_DFA_LIMIT:
                    return None
    return alt(lit("0"), R.get((S, F), NOTHING))


MOD_RULES_MAX = 1000  # largest factor handled by the remainder automaton


def _mod_rules(q: int, zero: bool, rules: dict | None) -> Expr:
    """Canonical positive integers with (n % q == 0) == zero, as the remainder automaton written
    as right-linear rules `modq_r` (one per remainder; they recurse, so the compiler keeps them as
    shared rules instead of unrolling digits)."""
    if rules is None:
        raise UnsupportedSchema(f"multipleOf {q} needs helper rules", keyword="multipleOf")
    tag = f"mod{q}{'z' if zero else 'n'}"
    for r in range(q):
        name = f"{tag}_{r}"
        if name in rules:
            continue
        by: dict[int, list[int]] = {}
        for d in range(10):
            by.setdefault((r * 10 + d) % q, []).append(d)
        accept = (r == 0) == zero
        rules[name] = alt(([EMPTY] if accept else []) +
                          [seq(_digit_class(ds), Ref(f"{tag}_{j}")) for j, ds in sorted(by.items())])
    firsts: dict[int, list[int]] = {}
    for d in range(1, 10):
        firsts.setdefault(d % q, []).append(d)
    return alt([seq(_digit_class(ds), Ref(f"{tag}_{r}")) for r, ds in sorted(firsts.items())])


def _regex_multiples(q: int) -> Expr | None:
    """Canonical unsigned multiples of q as a plain expression, when q = 2^a 5^b (times 3 or not)."""
    p25, m = 1, q
    for f in (2, 5):
        while m % f == 0:
            m //= f
            p25 *= f
    if m not in (1, 3):
        return None
    parts = []
    if p25 > 1:
        parts.append(_pow25_multiples(p25))
    if m == 3:
        parts.append(_state_elimination(3))
    if not parts:
        return uint_range(0, None)
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def multiples_text(q: int, lo: int | None, hi: int | None, residues_zero: bool = True,
                   rules: dict | None = None) -> Expr:
    """Integer texts (signed) in [lo, hi] that are (residues_zero) or are not multiples of q."""
    if lo is not None and hi is not None:
        if lo > hi:
            return NOTHING
        first = -((-lo) // q) * q
        n_mult = 0 if first > hi else (hi - first) // q + 1
        vals = None
        if residues_zero and n_mult <= MOD_ENUM_LIMIT:
            vals = list(range(first, hi + 1, q))
        elif not residues_zero and hi - lo + 1 <= MOD_ENUM_LIMIT:
            vals = [v for v in range(lo, hi + 1) if v % q]
        if vals is not None:
            parts = [lit(str(v)) for v in vals]
            if 0 in vals:
                parts.append(lit("-0"))
            return alt(parts)
    rx = _regex_multiples(q)
    if rx is not None:
        mult = seq(opt(lit("-")), rx)
        if lo is None and hi is None:
            return mult if residues_zero else And((JSON_INTEGER_TEXT, Not(mult)))
        return And((int_range(lo, hi), mult if residues_zero else Not(mult)))
    # other factors: the remainder automaton, for ranges it can follow without counting digits
    # (everything, the non-negatives, the positives, or their mirror images)
    if q > MOD_RULES_MAX or not ((hi is None and (lo is None or lo in (0, 1)))
                                 or (lo is None and hi in (0, -1))):
        raise UnsupportedSchema(f"multipleOf {q} over this range: only factors 2^a 5^b (times 3 or not) "
                                f"work with arbitrary bounds", keyword="multipleOf")
    pos = _mod_rules(q, residues_zero, rules)  # positive texts only
    zero = [lit("0"), lit("-0")] if residues_zero else []
    parts = []
    if hi is None:
        parts.append(pos)
        if lo is None or lo <= 0:
            parts += zero
    if lo is None:
        parts.append(seq(lit("-"), pos))
        if hi is not None and hi >= 0:
            parts += zero
    return alt(parts)


# ============================================================================ number languages

@dataclass(frozen=True)
class NumSpec:
    """Conjunctive constraints on a JSON number (all fields optional)."""

    bounds: tuple[Bound, ...] = ()
    integral: bool | None = None        # True: integer value; False: non-integer value
    mults: tuple[int, ...] = ()         # value is a multiple of each (positive ints)
    nonmults: tuple[int, ...] = ()      # value is not a multiple of any
    excluded: tuple[object, ...] = ()   # values (int/float) that are not allowed
    points: tuple[object, ...] | None = None  # finite set of allowed values (enum/const)
    # spelled as an integer too (no fraction, no exponent): draft-04 "integer", whose validators
    # take 1.0 for a float; from draft 6 on, 1.0 is an integer
    int_text: bool = False
    float_text: bool = False            # spelled with a fraction or an exponent (int_text's complement)


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def _int_bounds(iv: Interval) -> tuple[int | None, int | None]:
    """The integer interval [lo, hi] inside iv."""
    lo = hi = None
    if iv.lo is not None:
        lo = int(iv.lo) + (1 if iv.lo_strict else 0) if iv.lo.denominator == 1 else math.ceil(iv.lo)
    if iv.hi is not None:
        hi = int(iv.hi) - (1 if iv.hi_strict else 0) if iv.hi.denominator == 1 else math.floor(iv.hi)
    return lo, hi


SAFE_INT = Interval(Fraction(-TWO53), True, Fraction(TWO53), True)
FINITE = Interval(Fraction(repr(-DBL_MAX)), False, Fraction(repr(DBL_MAX)), False)


_NUMBER_CACHE: dict[tuple, Expr] = {}
_NUMBER_CACHE_SIZE = 4096


def _spec_key(spec: NumSpec) -> tuple:
    """A cache key that tells 1 from 1.0 and 0.0 from -0.0 (their texts differ)."""
    def val(x):
        return (type(x).__name__, repr(x))

    return (tuple((val(b.value), b.strict, b.lower) for b in spec.bounds), spec.integral, spec.mults,
            spec.nonmults, tuple(val(x) for x in spec.excluded),
            None if spec.points is None else tuple(val(x) for x in spec.points), spec.int_text, spec.float_text)


def number_language(spec: NumSpec, rules: dict | None = None) -> Expr:
    """The language of JSON number texts satisfying `spec` (a subset of both semantics).
    Results without helper rules are cached per process (schemas repeat their number types)."""
    key = _spec_key(spec)
    got = _NUMBER_CACHE.get(key)
    if got is not None:
        return got
    e = _number_language(spec, rules)
    if not _has_ref(e):
        if len(_NUMBER_CACHE) >= _NUMBER_CACHE_SIZE:
            _NUMBER_CACHE.clear()
        _NUMBER_CACHE[key] = e
    return e


def _number_language(spec: NumSpec, rules: dict | None = None) -> Expr:
    if (not spec.bounds and spec.integral is None and not spec.mults and not spec.nonmults
            and not spec.excluded and spec.points is None and not spec.int_text and not spec.float_text):
        return JSON_NUMBER
    if spec.int_text and spec.float_text:
        return NOTHING
    if spec.points is not None:
        parts = []
        for p in spec.points:
            pspec = NumSpec(spec.bounds + (Bound(p, False, True), Bound(p, False, False)), spec.integral,
                            spec.mults, spec.nonmults, spec.excluded, None, spec.int_text, spec.float_text)
            parts.append(number_language(pspec, rules))
        return alt(parts)
    int_iv = Interval()
    flt_iv = Interval()
    for b in spec.bounds:
        int_iv = int_iv.intersect(b.int_interval())
        flt_iv = flt_iv.intersect(b.float_interval())
    integral = spec.integral
    mult = 1
    for m in spec.mults:
        mult = _lcm(mult, m)
    nonmults = tuple(q for q in spec.nonmults if q != 1) if mult == 1 else tuple(
        q for q in spec.nonmults if mult % q != 0)
    if mult > 1 and len(nonmults) != len(spec.nonmults):
        return NOTHING  # a multiple of `mult` is a multiple of each q dividing it
    if any(q == 1 for q in spec.nonmults):
        return NOTHING if mult > 1 or integral else _nonintegral_only(flt_iv, spec)
    if spec.mults:  # a multiple of a positive integer (multipleOf 1 included) is an integer
        if integral is False:
            return NOTHING
        integral = True
    if spec.int_text:
        integral = True
    # excluded points: for int texts the exact and the decimal value; for float texts the whole
    # rounding neighbourhood of the float, snapped to the neighbours' shortest reprs.
    int_points: list[Fraction] = []
    cuts: list[tuple[Fraction, Fraction]] = []
    for x in spec.excluded:
        int_points += [Fraction(x), dec_value(x)]
        f = float(x)
        lo = min(Fraction(repr(math.nextafter(f, -math.inf))), dec_value(x), Fraction(f))
        hi = max(Fraction(repr(math.nextafter(f, math.inf))), dec_value(x), Fraction(f))
        cuts.append((lo, hi))
    int_ivs = _split_points(int_iv, int_points) if not int_iv.empty() else []
    flt_ivs = [flt_iv] if not flt_iv.empty() else []
    for lo, hi in cuts:
        nxt = []
        for iv in flt_ivs:
            left = iv.intersect(Interval(None, False, lo, False))
            right = iv.intersect(Interval(hi, False, None, False))
            nxt += [x for x in (left, right) if not x.empty()]
        flt_ivs = nxt
    parts = []
    # ---- integer texts
    if integral is not False and not spec.float_text:
        for iv in int_ivs:
            lo, hi = _int_bounds(iv)
            parts.append(_int_mod_texts(lo, hi, mult, nonmults, rules))
    # ---- texts with a fraction and/or exponent
    for iv in (() if spec.int_text else flt_ivs):
        if integral is None and not nonmults:
            parts.append(_float_texts(iv))
            continue
        if integral is not True:
            parts.append(_nonintegral_texts(iv))  # non-integers are never multiples of an int
        if integral is not False:
            if mult > 1 or nonmults:
                # "I.0" spellings, |I| < 2**53 (float % int is exact there). For factors other
                # than 2^a 5^b (times 3) the bounded remainder language is not available, and
                # these spellings are left out: a documented over-constraint (json.dumps(14.0)).
                lo, hi = _int_bounds(iv.intersect(SAFE_INT))
                try:
                    ints = _int_mod_texts(lo, hi, mult, nonmults, rules)
                except UnsupportedSchema:
                    ints = NOTHING
                parts.append(seq(ints, lit("."), repeat(lit("0"), 1, None)))
            else:
                parts.append(_integral_float_texts(iv.intersect(FINITE)))
    return alt(parts)


def _nonintegral_only(flt_iv: Interval, spec: NumSpec) -> Expr:
    """Every integer is a multiple of 1: only non-integral texts remain."""
    if spec.integral is True or flt_iv.empty():
        return NOTHING
    ivs = [flt_iv]
    return alt([_nonintegral_texts(iv) for iv in ivs])


def _has_ref(e: Expr) -> bool:
    from structgen.grammar.ir import Alt as _A
    from structgen.grammar.ir import And as _N
    from structgen.grammar.ir import Not as _T
    from structgen.grammar.ir import Repeat as _R
    from structgen.grammar.ir import Seq as _S

    if isinstance(e, Ref):
        return True
    if isinstance(e, (_S, _A, _N)):
        return any(_has_ref(x) for x in e.items)
    if isinstance(e, (_R, _T)):
        return _has_ref(e.item)
    return False


def _int_mod_texts(lo, hi, mult, nonmults, rules) -> Expr:
    parts = []
    if mult > 1:
        parts.append(multiples_text(mult, lo, hi, rules=rules))
    for q in nonmults:
        parts.append(multiples_text(q, lo, hi, residues_zero=False, rules=rules))
    if not parts:
        return int_range(lo, hi)
    if len(parts) == 1:
        return parts[0]
    if any(_has_ref(x) for x in parts):
        raise UnsupportedSchema("this combination of multipleOf constraints needs an intersection of digit "
                                "automata", keyword="multipleOf")
    return And(tuple(parts))


def _signed(iv: Interval, build) -> Expr:
    """Apply an unsigned builder to the positive and negative parts of iv (zero excluded)."""
    parts = []
    pos = iv.intersect(Interval(Fraction(0), True, None, False))
    if not pos.empty():
        parts.append(build(pos))
    neg = iv.intersect(Interval(None, False, Fraction(0), True))
    if not neg.empty():
        e = build(neg.neg())
        if e != NOTHING:
            parts.append(seq(lit("-"), e))
    return alt(parts)


_ZERO_FRAC = seq(opt(lit("-")), lit("0."), repeat(lit("0"), 1, None))


PLAIN_FRACTION_DIGITS = 24


def _plain_bounds(iv: Interval) -> Interval:
    """Round bounds needing more than 24 fraction digits inward, for plain decimal texts.

    Only texts with more than 24 fraction digits are lost (json.dumps writes plain decimals with
    at most 21), and tiny bounds such as 5e-324 stop costing hundreds of automaton states.
    """
    scale = 10 ** PLAIN_FRACTION_DIGITS
    lo, ls, hi, hs = iv.lo, iv.lo_strict, iv.hi, iv.hi_strict
    if lo is not None and (lo * scale).denominator != 1:
        lo, ls = Fraction(math.ceil(lo * scale), scale), False
    if hi is not None and (hi * scale).denominator != 1:
        hi, hs = Fraction(math.floor(hi * scale), scale), False
    return Interval(lo, ls, hi, hs)


def _float_texts(iv: Interval) -> Expr:
    """Texts with a fraction or an exponent, value in iv."""
    if iv.lo is None and iv.hi is None:
        return seq(opt(lit("-")), INT_PART, alt(seq(FRAC_PART, opt(EXP_PART)), EXP_PART))
    piv = _plain_bounds(iv)
    parts = [_signed(piv, lambda x: udec(x, "required")), _signed(iv, usci)]
    if iv.contains(Fraction(0)):
        parts.append(_ZERO_FRAC)
    return alt(parts)


PLAIN_INTEGRAL_DIGITS = 16  # json.dumps writes integral floats below 1e16 as "I.0"
SCI_INTEGRAL_MIN_EXP = 16   # ... and from 1e16 on as "d.ddde+XX"


def _integral_float_texts(iv: Interval) -> Expr:
    """Texts with a fraction or exponent whose value is an integer in iv (iv finite).

    Exactly the spellings json.dumps uses for integral floats: "I.0" (any number of zeros) with
    |I| < 10**16, and normalized exponent notation from 1e16 on.
    """
    big = 10 ** PLAIN_INTEGRAL_DIGITS - 1
    ilo, ihi = _int_bounds(iv)
    ilo = -big if ilo is None else max(ilo, -big)
    ihi = big if ihi is None else min(ihi, big)
    return alt(seq(int_range(ilo, ihi), lit("."), repeat(lit("0"), 1, None)),
               _signed(iv, lambda x: usci(x, integral=True)))


MAX_NONINTEGRAL_SIG = 15


def _nz_fraction(n: int) -> Expr:
    """Digit strings of length 1..n with a non-zero digit."""
    return alt([seq(repeat(lit("0"), j, j), NZDIGIT, repeat(DIGIT, 0, n - 1 - j)) for j in range(n)])


@lru_cache(maxsize=1)
def _nonintegral_shape() -> Expr:
    sig = MAX_NONINTEGRAL_SIG
    shapes = [seq(lit("0."), repeat(lit("0"), 0, None), NZDIGIT, repeat(DIGIT, 0, sig - 1))]
    for k in range(1, sig):
        shapes.append(seq(NZDIGIT, repeat(DIGIT, k - 1, k - 1), lit("."), _nz_fraction(sig - k)))
    # d(.F)?e-X, X in 1..323: 1e-323 <= value < 1, so neither 0 nor 1 after rounding
    frac = opt(seq(lit("."), repeat(DIGIT, 1, sig - 1)))
    shapes.append(seq(NZDIGIT, frac, exponent_range(-323, -1)))
    shapes.append(seq(chars("39"), frac, exponent_range(-324, -324)))  # >= 3e-324 rounds to 5e-324
    return alt(shapes)


def _nonintegral_texts(iv: Interval) -> Expr:
    """Non-integral texts with at most 15 significant digits (plain, or with a negative exponent).

    Such a text is non-integral both as a decimal and after rounding to a double (a relative
    rounding error of 2**-53 cannot reach an integer from 15 significant digits away), which is
    what makes "not an integer" / "not a multiple" safe to accept.
    """
    shape = _nonintegral_shape()
    if iv.lo is None and iv.hi is None:
        return seq(opt(lit("-")), shape)
    return _signed(iv, lambda x: And((alt(udec(x, "required"), usci(x)), shape)))
