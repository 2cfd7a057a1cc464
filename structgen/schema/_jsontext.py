"""JSON text details: the encoding of string contents, and the whitespace layout.

Schema keywords talk about *decoded* strings (code points); the grammar constrains the JSON
*serialization*. `encode_string` maps a char-level language L to the language of all JSON
encodings of the strings in L: each character may be written raw (when JSON allows it), as a
short escape (``\\n``, ``\\"``, ``\\/`` ...), as ``\\uXXXX`` with either hex case, or -- above
the BMP -- as a surrogate pair. Decoding is a function (no string has two decodings), so the map
commutes with intersection and complement, which is what lets `And`/`Not` pass through.

Lone surrogate escapes (``"\\ud800"``) are never produced: they do not encode a Unicode string.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from structgen.errors import UnsupportedSchema
from structgen.grammar.ir import intersect_ranges
from structgen.grammar.ir import (
    ANY_CHAR,
    EMPTY,
    NOTHING,
    Alt,
    And,
    ByteRange,
    Chars,
    Expr,
    Lit,
    Not,
    Ref,
    Regex,
    Repeat,
    Seq,
    alt,
    chars,
    lit,
    normalize_ranges,
    repeat,
    seq,
)

Ranges = tuple[tuple[int, int], ...]

_SHORT_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x2F: "\\/", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n",
                  0x0D: "\\r", 0x09: "\\t"}
_RAW_OK: Ranges = ((0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, 0x10FFFF))
_BMP: Ranges = ((0, 0xD7FF), (0xE000, 0xFFFF))




def _hex_digit_class(values: list[int]) -> Expr:
    rs = []
    for v in values:
        if v < 10:
            rs.append((0x30 + v, 0x30 + v))
        else:
            rs.append((0x61 + v - 10, 0x61 + v - 10))
            rs.append((0x41 + v - 10, 0x41 + v - 10))
    return Chars(normalize_ranges(rs))


HEX = _hex_digit_class(list(range(16)))


@lru_cache(maxsize=8192)
def hex_digits(ranges: Ranges, n: int) -> Expr:
    """n hex digits (either case) whose value lies in `ranges` (subsets of [0, 16**n))."""
    full = 16 ** n - 1
    if not ranges:
        return NOTHING
    if ranges == ((0, full),):
        return repeat(HEX, n, n)
    if n == 1:
        vals = [v for lo, hi in ranges for v in range(lo, hi + 1)]
        return _hex_digit_class(vals)
    step = 16 ** (n - 1)
    groups: dict[Ranges, list[int]] = {}
    for d in range(16):
        sub = intersect_ranges(ranges, ((d * step, d * step + step - 1),))
        if sub:
            groups.setdefault(tuple((lo - d * step, hi - d * step) for lo, hi in sub), []).append(d)
    return alt([seq(_hex_digit_class(ds), hex_digits(sub, n - 1)) for sub, ds in groups.items()])


_PRINTABLE_ASCII: Ranges = ((0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E))


@lru_cache(maxsize=8192)
def encode_chars(ranges: Ranges, escapes: str = "any") -> Expr:
    """All JSON encodings of one character from `ranges`.

    escapes="any": every encoding RFC 8259 allows. escapes="canonical": the encodings
    ``json.dumps`` produces with ensure_ascii either True or False -- printable ASCII raw only,
    the two-letter escapes only for the characters json.dumps escapes that way, ``\\uXXXX``
    (either hex case) for other control characters and for everything non-ASCII, which may also be
    written raw. Canonical keeps every json.dumps serialization and makes ASCII-heavy languages
    (formats, patterns, enums) about six times smaller as automata.
    """
    parts: list[Expr] = []
    canonical = escapes == "canonical"
    raw = intersect_ranges(ranges, _RAW_OK)
    if raw:
        parts.append(Chars(raw))
    for cp, esc in _SHORT_ESCAPES.items():
        if canonical and cp == 0x2F:
            continue
        if intersect_ranges(ranges, ((cp, cp),)):
            parts.append(lit(esc))
    bmp = intersect_ranges(ranges, _BMP)
    if canonical:
        drop = _PRINTABLE_ASCII + tuple((c, c) for c in _SHORT_ESCAPES if c != 0x2F)
        bmp = _subtract(bmp, normalize_ranges(drop))
    if bmp:
        parts.append(seq(lit("\\u"), hex_digits(bmp, 4)))
    astral = intersect_ranges(ranges, ((0x10000, 0x10FFFF),))
    if astral:
        # group the code points by high surrogate; equal low sets share one branch
        by_low: dict[Ranges, list[tuple[int, int]]] = {}
        for lo, hi in astral:
            a, b = lo - 0x10000, hi - 0x10000
            ha, hb = a >> 10, b >> 10
            if ha == hb:
                by_low.setdefault(((a & 0x3FF, b & 0x3FF),), []).append((ha, ha))
                continue
            by_low.setdefault(((a & 0x3FF, 0x3FF),), []).append((ha, ha))
            if hb - ha >= 2:
                by_low.setdefault(((0, 0x3FF),), []).append((ha + 1, hb - 1))
            by_low.setdefault(((0, b & 0x3FF),), []).append((hb, hb))
        for low, highs in by_low.items():
            hr = normalize_ranges((0xD800 + x, 0xD800 + y) for x, y in highs)
            lr = tuple((0xDC00 + x, 0xDC00 + y) for x, y in low)
            parts.append(seq(lit("\\u"), hex_digits(hr, 4), lit("\\u"), hex_digits(lr, 4)))
    return alt(parts)


def _subtract(a: Ranges, b: Ranges) -> Ranges:
    out = []
    for lo, hi in a:
        cur = lo
        for blo, bhi in b:
            if bhi < cur or blo > hi:
                continue
            if blo > cur:
                out.append((cur, blo - 1))
            cur = max(cur, bhi + 1)
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


ESCAPE_MODES = ("canonical", "any")


def _parse_regex(r: Regex) -> Expr:
    from structgen.schema._irmatch import parse_pattern

    return parse_pattern(r.pattern, r.flavor, r.flags, r.search)


class StringEncoder:
    """Memoized char-level -> JSON-encoded (byte-level) translation."""

    def __init__(self, escapes: str = "canonical") -> None:
        if escapes not in ESCAPE_MODES:
            raise ValueError(f"string_escapes must be one of {ESCAPE_MODES}")
        self.escapes = escapes
        self.any_string = repeat(encode_chars(ANY_CHAR.ranges, escapes), 0, None)
        self._memo: dict[int, tuple[Expr, Expr]] = {}

    def chars(self, ranges: Ranges) -> Expr:
        return encode_chars(ranges, self.escapes)

    def literal(self, text: str) -> Expr:
        """All encodings of one known string, quotes included."""
        return seq(lit('"'), seq([self.chars(((ord(c), ord(c)),)) for c in text]), lit('"'))

    def encode(self, e: Expr) -> Expr:
        hit = self._memo.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        out = self._encode(e)
        self._memo[id(e)] = (e, out)
        return out

    def _encode(self, e: Expr) -> Expr:
        if isinstance(e, Lit):
            if not e.value:
                return EMPTY
            text = e.value.decode("utf-8")
            return seq([self.chars(((ord(c), ord(c)),)) for c in text])
        if isinstance(e, Chars):
            return self.chars(e.ranges)
        if isinstance(e, Seq):
            return seq([self.encode(x) for x in e.items])
        if isinstance(e, Alt):
            return alt([self.encode(x) for x in e.items]) if e.items else NOTHING
        if isinstance(e, Repeat):
            return repeat(self.encode(e.item), e.min, e.max)
        if isinstance(e, And):
            return And(tuple(self.encode(x) for x in e.items))
        if isinstance(e, Not):
            return And((self.any_string, Not(self.encode(e.item))))
        if isinstance(e, Regex):
            return self.encode(_parse_regex(e))
        if isinstance(e, (ByteRange, Ref)):
            raise UnsupportedSchema(f"{type(e).__name__} inside a string language")
        raise TypeError(f"unknown IR node {e!r}")


# ============================================================================ layout

WS_CHAR = chars(" ", "\t", "\n", "\r")
DEFAULT_MAX_WHITESPACE = 16  # json.dumps(indent=2) up to depth 7, indent=4 up to depth 3


@dataclass(frozen=True)
class Layout:
    """Where whitespace may go. `depth` is the nesting depth of the container being written.

    flexible: any JSON whitespace, at most `max_ws` characters per gap (bounded, so a model
    cannot loop on whitespace); compact: none; indent: exactly json.dumps(indent=n).
    """

    mode: str = "flexible"
    max_ws: int = DEFAULT_MAX_WHITESPACE
    indent: int = 2

    @property
    def depth_sensitive(self) -> bool:
        return self.mode == "indent"

    def ws(self) -> Expr:
        return repeat(WS_CHAR, 0, self.max_ws) if self.mode == "flexible" else EMPTY

    def _nl(self, depth: int) -> Expr:
        return lit("\n" + " " * (self.indent * depth))

    def open(self, depth: int) -> Expr:
        """After '[' or '{' of a non-empty container."""
        return self._nl(depth + 1) if self.mode == "indent" else self.ws()

    def sep(self, depth: int) -> Expr:
        """Between two members (the comma included)."""
        if self.mode == "indent":
            return seq(lit(","), self._nl(depth + 1))
        return seq(self.ws(), lit(","), self.ws())

    def close(self, depth: int) -> Expr:
        """Before ']' or '}' of a non-empty container."""
        return self._nl(depth) if self.mode == "indent" else self.ws()

    def empty(self) -> Expr:
        """Between the brackets of an empty container."""
        return self.ws()

    def colon(self) -> Expr:
        if self.mode == "indent":
            return lit(": ")
        return seq(self.ws(), lit(":"), self.ws())

    def outer(self) -> Expr:
        """Before and after the whole document."""
        return self.ws()
