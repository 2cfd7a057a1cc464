"""Grammar IR: the one representation every front end (regex, Lark, JSON Schema) targets.

A grammar is a set of named rules whose bodies are expressions over *bytes*. Terminals are
regular sub-expressions; recursion only happens through `Ref`. The automata compiler
(`structgen.automata.compiler`) inlines what is not recursive, turns each remaining rule into a
byte-level DFA with "call" edges, and builds the token masks from that.

Expressions are immutable and hashable, so front ends can share and memoize them.

Text vs bytes: `Lit`, `Chars` and `Regex` describe *text* and are encoded as UTF-8; `ByteRange`
describes raw bytes. `Chars` ranges are Unicode code points (surrogates are never matched).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

MAX_CODEPOINT = 0x10FFFF


class Expr:
    """Base class of IR expressions."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Lit(Expr):
    """A literal byte string (text is passed UTF-8 encoded). `Lit(b"")` is the empty string."""

    value: bytes


@dataclass(frozen=True, slots=True)
class Chars(Expr):
    """One Unicode character from a set of inclusive code-point ranges (sorted, disjoint)."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ByteRange(Expr):
    """One raw byte from a set of inclusive byte ranges (0..255)."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Seq(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Alt(Expr):
    """Alternation. `Alt(())` is the empty language (matches nothing)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Repeat(Expr):
    """`item{min,max}`; `max=None` means unbounded."""

    item: Expr
    min: int = 0
    max: int | None = None


@dataclass(frozen=True, slots=True)
class Ref(Expr):
    """A reference to a rule of the grammar (the only way to recurse)."""

    name: str


@dataclass(frozen=True, slots=True)
class Regex(Expr):
    """A regex leaf, parsed lazily by `structgen.regex.parse_regex`.

    flavor: "python" (Python `re` semantics on str) or "ecma" (ECMA-262, as JSON Schema requires).
    flags: subset of "imsx" (ignorecase, multiline, dotall, verbose).
    search: True means unanchored search semantics (JSON Schema `pattern`): the language is
    `.*(pattern).*` with the anchors `^`/`$` honoured.
    """

    pattern: str
    flavor: str = "python"
    flags: str = ""
    search: bool = False


@dataclass(frozen=True, slots=True)
class And(Expr):
    """Intersection of regular sub-expressions (no `Ref` to a recursive rule inside)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not(Expr):
    """Complement of a regular sub-expression, relative to all valid UTF-8 strings."""

    item: Expr


EMPTY = Lit(b"")
NOTHING = Alt(())
ANY_CHAR = Chars(((0, 0xD7FF), (0xE000, MAX_CODEPOINT)))


@dataclass
class Grammar:
    """Named rules plus a start rule. Rule names are arbitrary strings."""

    rules: dict[str, Expr]
    start: str = "start"
    # Free-form notes from the front end (e.g. lenient-mode warnings); not used by the compiler.
    meta: dict = field(default_factory=dict)
    # Longest-match rules (a lexer's terminals): such a rule may end only where its own automaton
    # cannot take the next byte, so `NAME NAME` cannot split "ab" into "a" "b". They stay frames
    # of their own (never inlined); the restriction is a one-byte lookahead on their final states.
    greedy: frozenset = frozenset()
    # Rules that keep a frame of their own even when they could be inlined (a front end's hint
    # that copies would multiply an automaton, e.g. member values of any-order JSON objects).
    frames: frozenset = frozenset()

    def __post_init__(self) -> None:
        from structgen.errors import GrammarError

        if self.start not in self.rules:
            raise GrammarError(f"start rule {self.start!r} is not defined")
        missing = sorted(n for n in self.greedy | self.frames if n not in self.rules)
        if missing:
            raise GrammarError(f"greedy/frame rules {missing} are not defined")


# ----------------------------------------------------------------------------- constructors
# Small helpers that keep front ends short and fold trivial cases.

def lit(text: str | bytes) -> Expr:
    return Lit(text.encode("utf-8") if isinstance(text, str) else bytes(text))


def seq(*items: Expr | Iterable[Expr]) -> Expr:
    flat: list[Expr] = []
    for it in _flatten(items):
        if isinstance(it, Seq):
            flat.extend(it.items)
        elif it == EMPTY:
            continue
        elif it == NOTHING:
            return NOTHING
        else:
            flat.append(it)
    # merge adjacent literals
    merged: list[Expr] = []
    for it in flat:
        if merged and isinstance(it, Lit) and isinstance(merged[-1], Lit):
            merged[-1] = Lit(merged[-1].value + it.value)
        else:
            merged.append(it)
    if not merged:
        return EMPTY
    if len(merged) == 1:
        return merged[0]
    return Seq(tuple(merged))


def alt(*items: Expr | Iterable[Expr]) -> Expr:
    out: list[Expr] = []
    seen: set[Expr] = set()
    for it in _flatten(items):
        parts = it.items if isinstance(it, Alt) else (it,)
        for p in parts:
            if p not in seen:
                seen.add(p)
                out.append(p)
    if len(out) == 1:
        return out[0]
    return Alt(tuple(out))


def repeat(item: Expr, lo: int = 0, hi: int | None = None) -> Expr:
    if hi is not None and hi < lo:
        return NOTHING
    if hi == 0:
        return EMPTY
    if lo == 1 and hi == 1:
        return item
    if item == EMPTY:
        return EMPTY
    return Repeat(item, lo, hi)


def opt(item: Expr) -> Expr:
    return repeat(item, 0, 1)


def chars(*ranges: tuple[int, int] | str) -> Chars:
    """`chars("az", (0x100, 0x17F))`: a 2-char string means the range first..last."""
    rs: list[tuple[int, int]] = []
    for r in ranges:
        if isinstance(r, str):
            if len(r) == 1:
                rs.append((ord(r), ord(r)))
            elif len(r) == 2:
                rs.append((ord(r[0]), ord(r[1])))
            else:
                raise ValueError("chars() takes 1- or 2-character strings")
        else:
            rs.append((int(r[0]), int(r[1])))
    return Chars(normalize_ranges(rs))


def normalize_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge inclusive ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def intersect_ranges(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Intersection of two sorted, disjoint lists of inclusive ranges."""
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _flatten(items):
    for it in items:
        if isinstance(it, Expr):
            yield it
        else:
            yield from it
