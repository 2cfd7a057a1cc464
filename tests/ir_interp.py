"""Reference matcher for regular grammar IR: a test oracle, written for obviousness, not speed.

Semantics are computed directly from the definitions on byte positions: `_ends(e, i)` is the set
of positions j such that data[i:j] is in L(e). This is a set-of-states simulation of the byte-level
NFA, without building the NFA. `Chars` is matched through `utf8_sequences`, so the oracle also
exercises the code-point -> byte-range splitter the compiler relies on.

Supports Lit, Chars, ByteRange, Seq, Alt, Repeat (bounded or not), And, Not (complement relative to
valid UTF-8). `Ref` and `Regex` leaves are not supported. Prefix viability does not support And/Not.
"""
from __future__ import annotations

import functools

from structgen.grammar.ir import Alt, And, ByteRange, Chars, Expr, Lit, Not, Repeat, Seq
from structgen.regex.utf8 import utf8_sequences


@functools.lru_cache(maxsize=512)
def _char_sequences(ranges) -> dict[int, list[list[tuple[int, int]]]]:
    """utf8_sequences of every range, indexed by each possible first byte (only for speed)."""
    by_lead: dict[int, list[list[tuple[int, int]]]] = {}
    for lo, hi in ranges:
        for seq in utf8_sequences(lo, hi):
            for b in range(seq[0][0], seq[0][1] + 1):
                by_lead.setdefault(b, []).append(seq)
    return by_lead


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8", "strict")
    except UnicodeDecodeError:
        return False
    return True


class _Sim:
    def __init__(self, data: bytes):
        self.data = data
        self.n = len(data)
        self.memo: dict[tuple[int, int], frozenset[int]] = {}
        self.keep: list[Expr] = []  # keep memo keys (ids) alive

    # ------------------------------------------------------------------ full matching
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
        if isinstance(e, ByteRange):
            if i < self.n and any(a <= d[i] <= b for a, b in e.ranges):
                return {i + 1}
            return set()
        if isinstance(e, Chars):
            out = set()
            if i < self.n:
                for seq in _char_sequences(e.ranges).get(d[i], ()):
                    if i + len(seq) <= self.n and all(
                        a <= d[i + k] <= b for k, (a, b) in enumerate(seq)
                    ):
                        out.add(i + len(seq))
            return out
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
            return self._repeat_ends(e, i)
        if isinstance(e, And):
            if not e.items:
                raise ValueError("And() with no items has no defined universe")
            sets = [self.ends(item, i) for item in e.items]
            return set.intersection(*map(set, sets))
        if isinstance(e, Not):
            inner = self.ends(e.item, i)
            return {j for j in range(i, self.n + 1) if j not in inner and _valid_utf8(self.data[i:j])}
        raise NotImplementedError(f"ir_interp does not support {type(e).__name__}")

    def _repeat_ends(self, e: Repeat, i: int) -> set[int]:
        # level = positions after exactly k iterations; collect levels k in [min, max].
        level = {i}
        k = 0
        accepted: set[int] = set()
        while True:
            if k >= e.min:
                if level <= accepted and k > e.min:
                    # Level k adds nothing new; by induction neither does any later level, since
                    # each level is the image of the previous one under the same step.
                    break
                accepted |= level
            if e.max is not None and k >= e.max:
                break
            if not level:
                break
            nxt = {j for p in level for j in self.ends(e.item, p)}
            k += 1
            if nxt == level and k < e.min:
                k = e.min  # a fixed point: every level up to min is the same set
            level = nxt
        return accepted

    # ------------------------------------------------------------------ prefix viability
    def nonempty(self, e: Expr) -> bool:
        """Does L(e) contain at least one string?"""
        if isinstance(e, Lit):
            return True
        if isinstance(e, ByteRange):
            return any(a <= b for a, b in e.ranges)
        if isinstance(e, Chars):
            return any(utf8_sequences(lo, hi) for lo, hi in e.ranges)
        if isinstance(e, Seq):
            return all(self.nonempty(x) for x in e.items)
        if isinstance(e, Alt):
            return any(self.nonempty(x) for x in e.items)
        if isinstance(e, Repeat):
            if e.max is not None and e.max < e.min:
                return False
            return e.min == 0 or self.nonempty(e.item)
        raise NotImplementedError(f"prefix viability does not support {type(e).__name__}")

    def viable(self, e: Expr, i: int) -> bool:
        """Is data[i:] a prefix of some string of L(e)?"""
        d, rest = self.data, self.n - i
        if rest == 0:
            return self.nonempty(e)
        if isinstance(e, Lit):
            return e.value.startswith(d[i:])
        if isinstance(e, ByteRange):
            return rest == 1 and any(a <= d[i] <= b for a, b in e.ranges)
        if isinstance(e, Chars):
            for seq in _char_sequences(e.ranges).get(d[i], ()):
                if rest <= len(seq) and all(a <= d[i + k] <= b for k, (a, b) in enumerate(seq[:rest])):
                    return True
            return False
        if isinstance(e, Seq):
            return self._seq_viable(e.items, 0, i)
        if isinstance(e, Alt):
            return any(self.viable(x, i) for x in e.items)
        if isinstance(e, Repeat):
            if not self.nonempty(e):
                return False
            # BFS over positions after k whole iterations, remembering the fewest k that reach it.
            best = {i: 0}
            frontier = [i]
            while frontier:
                nxt = []
                for p in frontier:
                    k = best[p]
                    if (p == self.n and (k >= e.min or self.nonempty(e.item))
                            and (e.max is None or k <= e.max)):
                        return True
                    if e.max is not None and k >= e.max:
                        continue
                    if p < self.n and self.viable(e.item, p):
                        return True  # finish inside iteration k+1, then pad to min iterations
                    for j in self.ends(e.item, p):
                        if j not in best:
                            best[j] = k + 1
                            nxt.append(j)
                frontier = nxt
            return False
        raise NotImplementedError(f"prefix viability does not support {type(e).__name__}")

    def _seq_viable(self, items, idx: int, i: int) -> bool:
        if idx == len(items):
            return i == self.n
        head, tail = items[idx], items[idx + 1:]
        if i < self.n and self.viable(head, i) and all(self.nonempty(x) for x in tail):
            return True
        return any(self._seq_viable(items, idx + 1, j) for j in self.ends(head, i))


def ir_fullmatch(expr: Expr, data: bytes) -> bool:
    """Is `data` (bytes) in the language of `expr`?"""
    return len(data) in _Sim(bytes(data)).ends(expr, 0)


def ir_prefix_viable(expr: Expr, data: bytes) -> bool:
    """Is `data` a prefix of some string of the language of `expr`? (no And/Not)"""
    return _Sim(bytes(data)).viable(expr, 0)
