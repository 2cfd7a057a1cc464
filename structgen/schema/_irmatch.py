"""A small membership test for char-level IR over concrete strings.

The schema front end must decide facts about *known* strings at compile time (does property name
"foo" match a `patternProperties` regex? is an `enum` string inside `pattern` + `maxLength`?).
Building automata for that would be overkill; a memoized set-of-end-positions walk over the
UTF-8 bytes is exact and cheap for the short strings involved.
"""
from __future__ import annotations

import bisect
from functools import lru_cache

from structgen.grammar.ir import (
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
)


@lru_cache(maxsize=4096)
def parse_pattern(pattern: str, flavor: str = "ecma", flags: str = "", search: bool = True) -> Expr:
    """`structgen.regex.parse_regex`, cached (patterns repeat a lot inside one schema)."""
    from structgen.regex import parse_regex

    return parse_regex(pattern, flavor=flavor, flags=flags, search=search)


class _Walk:
    def __init__(self, data: bytes, rules: dict[str, Expr] | None):
        self.data = data
        self.n = len(data)
        self.rules = rules or {}
        self.memo: dict[tuple[int, int], frozenset[int]] = {}
        self.keep: list[Expr] = []
        self.active: set[tuple[str, int]] = set()

    def ends(self, e: Expr, i: int) -> frozenset[int]:
        key = (id(e), i)
        got = self.memo.get(key)
        if got is None:
            self.keep.append(e)
            got = frozenset(self._ends(e, i))
            self.memo[key] = got
        return got

    def _ends(self, e: Expr, i: int) -> set[int]:
        d = self.data
        if isinstance(e, Lit):
            return {i + len(e.value)} if d.startswith(e.value, i) else set()
        if isinstance(e, Chars):
            cp, j = _decode_at(d, i)
            if cp < 0:
                return set()
            k = bisect.bisect_right(e.ranges, (cp, 0x7FFFFFFF)) - 1
            return {j} if k >= 0 and e.ranges[k][0] <= cp <= e.ranges[k][1] else set()
        if isinstance(e, ByteRange):
            if i < self.n and any(a <= d[i] <= b for a, b in e.ranges):
                return {i + 1}
            return set()
        if isinstance(e, Seq):
            cur = {i}
            for item in e.items:
                cur = {j for p in cur for j in self.ends(item, p)}
                if not cur:
                    break
            return cur
        if isinstance(e, Alt):
            return {j for item in e.items for j in self.ends(item, i)}
        if isinstance(e, Repeat):
            level, k, out = {i}, 0, set()
            seen_levels: set[frozenset[int]] = set()
            while level:
                if k >= e.min:
                    key = frozenset(level)
                    if key in seen_levels:
                        break
                    seen_levels.add(key)
                    out |= level
                if e.max is not None and k >= e.max:
                    break
                level = {j for p in level for j in self.ends(e.item, p)}
                k += 1
            return out
        if isinstance(e, And):
            sets = [self.ends(x, i) for x in e.items]
            return set.intersection(*map(set, sets)) if sets else set()
        if isinstance(e, Not):
            inner = self.ends(e.item, i)
            return {j for j in range(i, self.n + 1) if j not in inner and _valid(d[i:j])}
        if isinstance(e, Regex):
            return set(self.ends(parse_pattern(e.pattern, e.flavor, e.flags, e.search), i))
        if isinstance(e, Ref):
            key = (e.name, i)
            if key in self.active:  # left recursion: least fixpoint contributes nothing new
                return set()
            self.active.add(key)
            try:
                return set(self.ends(self.rules[e.name], i))
            finally:
                self.active.discard(key)
        raise TypeError(f"cannot match IR node {type(e).__name__}")


def _valid(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_at(d: bytes, i: int) -> tuple[int, int]:
    if i >= len(d):
        return -1, i
    b0 = d[i]
    n = 1 if b0 < 0x80 else 2 if 0xC2 <= b0 < 0xE0 else 3 if 0xE0 <= b0 < 0xF0 else 4 if 0xF0 <= b0 < 0xF5 else 0
    if n == 0 or i + n > len(d):
        return -1, i
    try:
        s = d[i:i + n].decode("utf-8")
    except UnicodeDecodeError:
        return -1, i
    return ord(s), i + n


def text_matches(expr: Expr, text: str) -> bool:
    """Is `text` (a Python str) in the char-level language of `expr`?"""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates are never in an IR language
        return False
    return len(data) in _Walk(data, None).ends(expr, 0)


def bytes_match(expr: Expr, data: bytes, rules: dict[str, Expr] | None = None) -> bool:
    """Is `data` in the language of `expr` (rules resolve `Ref`)?"""
    return len(data) in _Walk(bytes(data), rules).ends(expr, 0)
