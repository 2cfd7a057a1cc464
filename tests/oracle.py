"""THE test oracle: a slow, obviously-correct byte-level Earley recognizer over IR grammars.

Every test suite checks the fast machinery (automata, masks, matcher) against this module, so it
favours plain, textbook algorithms over speed. Public API (keep it small):

    earley_accepts(grammar, data) -> bool
        `data` (bytes; str is UTF-8 encoded) is a complete string of the grammar's language.
    earley_prefix_viable(grammar, data) -> bool
        `data` is a prefix of some string of the language (a complete string counts).
    oracle_for(grammar) -> EarleyOracle
        The cached recognizer behind both functions: `.accepts(data)`, `.prefix_viable(data)`,
        and calling it is `prefix_viable`. Reuses the chart columns of the previous call up to
        the common prefix, so byte-by-byte loops (and rollbacks) stay cheap.
    random_sentence(grammar, rng, max_depth=10) -> bytes
        A random string of the language (`rng` is a `random.Random`).
    brute_force_mask(prefix_viable_fn, prefix, vocab, accepts_fn=None) -> set[int]
        The exact allowed-token set: id t is allowed iff prefix + bytes(t) is prefix-viable;
        EOS ids iff prefix is itself complete. `vocab` is a `structgen.vocab.Vocabulary` or a
        plain sequence of `bytes | None`. Pass an `EarleyOracle`, its bound method, or
        `functools.partial(earley_prefix_viable, grammar)` to get the fast path and the
        completeness test for free; any other callable needs `accepts_fn` when there are EOS ids.

How it works: the IR is expanded into BNF productions whose terminals are *byte sets*:
`Lit` -> one byte per symbol, `Chars` -> alternatives of UTF-8 byte-range sequences (surrogates
never), `Repeat` -> left-recursive helper rules (bounded ones as a chain of optionals), `Regex`
-> `structgen.regex.parse_regex` (a small private reader of simple Python regexes stands in
while that module is missing), `And`/`Not` -> DFA by subset construction, product and
complement (relative to valid UTF-8), written back as right-linear rules. Non-productive
symbols are pruned first, so "the chart at position n is non-empty" is exactly "data[:n] is a
viable prefix". The recognizer is Earley with the Aycock-Horspool nullable fix, so left
recursion, nullable rules and ambiguity are all fine.

Set STRUCTGEN_ORACLE_INDEPENDENT=1 to never import the project's own regex/UTF-8 helpers (use the
private ones), which keeps the oracle independent of the code it checks.
"""
from __future__ import annotations

import functools
import os
import re
import weakref
from functools import lru_cache
from typing import Callable, Iterable, Sequence

from structgen.grammar.ir import (
    ANY_CHAR,
    Alt,
    And,
    ByteRange,
    Chars,
    Expr,
    Grammar,
    Lit,
    Not,
    Ref,
    Regex,
    Repeat,
    Seq,
    alt,
    repeat,
    seq,
)

__all__ = [
    "EarleyOracle",
    "brute_force_mask",
    "earley_accepts",
    "earley_prefix_viable",
    "oracle_for",
    "random_sentence",
]

_INDEPENDENT = os.environ.get("STRUCTGEN_ORACLE_INDEPENDENT", "") not in ("", "0")


# ================================================================================ public API

def earley_accepts(grammar: Grammar, data: bytes | str) -> bool:
    """True iff `data` is a complete string of the grammar's language."""
    return oracle_for(grammar).accepts(data)


def earley_prefix_viable(grammar: Grammar, data: bytes | str) -> bool:
    """True iff `data` can still be extended into a string of the language (or already is one)."""
    return oracle_for(grammar).prefix_viable(data)


_ORACLES: dict[int, "EarleyOracle"] = {}


def oracle_for(grammar: Grammar) -> "EarleyOracle":
    """The (cached, per grammar object) recognizer. Do not mutate a grammar after using it here."""
    key = id(grammar)
    o = _ORACLES.get(key)
    if o is None or o.grammar is not grammar:
        o = EarleyOracle(grammar)
        _ORACLES[key] = o
        weakref.finalize(grammar, _ORACLES.pop, key, None)
    return o


def random_sentence(grammar: Grammar, rng, max_depth: int = 10) -> bytes:
    """A random string of the language.

    Rules are expanded uniformly at random until `max_depth` nested rule/repetition levels,
    then always along a shortest-height production, so generation terminates. Raises
    ValueError when the language is empty.
    """
    return oracle_for(grammar).bnf.random_sentence(rng, max_depth)


def brute_force_mask(
    prefix_viable_fn: Callable[[bytes], bool],
    prefix: bytes | str,
    vocab,
    accepts_fn: Callable[[bytes], bool] | None = None,
) -> set[int]:
    """Exact allowed-token set after `prefix` (token ids as a set).

    Token t is allowed iff `prefix + bytes(t)` is prefix-viable; ids with no bytes never are.
    EOS ids are allowed iff `prefix` is a complete string: that needs `accepts_fn`, which is
    taken from the oracle when `prefix_viable_fn` is an `EarleyOracle` or one of its methods.
    """
    prefix = _as_bytes(prefix)
    tokens, eos = _vocab_parts(vocab)
    owner = prefix_viable_fn if isinstance(prefix_viable_fn, EarleyOracle) else getattr(
        prefix_viable_fn, "__self__", None)
    if isinstance(prefix_viable_fn, functools.partial) and prefix_viable_fn.func is earley_prefix_viable \
            and len(prefix_viable_fn.args) == 1 and not prefix_viable_fn.keywords:
        owner = oracle_for(prefix_viable_fn.args[0])  # partial(earley_prefix_viable, grammar)
    if isinstance(owner, EarleyOracle):
        allowed = owner._mask(prefix, tokens)
        if accepts_fn is None:
            accepts_fn = owner.accepts
    else:
        allowed = {i for i, t in enumerate(tokens) if t and prefix_viable_fn(prefix + t)}
    if eos:
        if accepts_fn is None:
            raise TypeError("brute_force_mask needs accepts_fn to decide EOS for this vocabulary")
        if accepts_fn(prefix):
            allowed.update(eos)
    return allowed


# ================================================================================ recognizer

class _Column:
    """One Earley set: items waiting on each nonterminal, items about to scan a byte."""

    __slots__ = ("waiting", "scanners", "accepting", "size", "items", "pending", "byte", "ext")

    def __init__(self):
        self.waiting: dict[int, list[tuple[int, int, int]]] = {}
        self.scanners: list[tuple[int, int, int, int]] = []  # (mask, prod, dot, origin)
        self.accepting = False
        self.size = 0
        self.items: set[tuple[int, int, int]] = set()
        # completions of greedy rules, waiting for the next byte to say whether the match may
        # end here: (nonterminal, origin)
        self.pending: list[tuple[int, int]] = []
        self.byte = -1  # the byte that led into this column
        # the previous column as it was scanned into this one (its greedy completions released
        # for `byte`): completions reaching back to it must see its `waiting` from there
        self.ext: "_Column | None" = None


class EarleyOracle:
    """Earley recognizer for one grammar (see the module docstring)."""

    def __init__(self, grammar: Grammar):
        self.grammar = grammar
        self.bnf = _Bnf(grammar)
        self._last_data = b""
        self._last_chart: list[_Column] = [self._closure([], self._initial())]

    # -- public
    def accepts(self, data: bytes | str) -> bool:
        data = _as_bytes(data)
        chart = self._chart(data)
        if len(chart) != len(data) + 1:
            return False
        col = chart[-1]
        if col.pending:  # the end of the input ends every greedy match
            col = self._closure(chart[:-1], list(col.items), release=lambda nt, o: True, ext_last=col.ext)
        return col.accepting

    def prefix_viable(self, data: bytes | str) -> bool:
        data = _as_bytes(data)
        chart = self._chart(data)
        return len(chart) == len(data) + 1 and chart[-1].size > 0

    __call__ = prefix_viable

    # -- chart construction
    def _initial(self) -> list[tuple[int, int, int]]:
        return [(p, 0, 0) for p in self.bnf.prods_of[self.bnf.start]]

    def _chart(self, data: bytes) -> list[_Column]:
        """Columns 0..len(data) (stops early, shorter, once a column is empty)."""
        last = self._last_data
        lcp = 0
        for a, b in zip(last, data):
            if a != b:
                break
            lcp += 1
        chart = self._last_chart[:lcp + 1]  # columns 0..lcp depend on data[:lcp] only
        while len(chart) <= len(data) and chart[-1].size:
            chart.append(self._step(chart, data[len(chart) - 1]))
        self._last_data, self._last_chart = data, chart
        return chart

    def _step(self, chart: list[_Column], byte: int) -> _Column:
        col = chart[-1]
        if col.pending:
            # a greedy match may end here only if its own language cannot take `byte`
            def release(nt: int, o: int) -> bool:
                data = bytes(c.byte for c in chart[o + 1:]) + bytes((byte,))
                return not self.bnf.greedy[nt].viable(data)

            col = self._closure(chart[:-1], list(col.items), release=release, ext_last=col.ext)
        seeds = [(p, d + 1, o) for mask, p, d, o in col.scanners if (mask >> byte) & 1]
        out = self._closure(chart, seeds, ext_last=col)
        out.byte = byte
        out.ext = col
        return out

    def _closure(self, chart: list[_Column], seeds: list[tuple[int, int, int]], release=None,
                 ext_last: "_Column | None" = None) -> _Column:
        """Predict/complete to a fixed point; `chart` holds the previous columns.

        Completions of greedy rules are recorded in `pending` unless `release(nt, origin)` says
        they may happen now."""
        bnf = self.bnf
        rhs_of, lhs_of, prods_of, nullable = bnf.rhs, bnf.lhs, bnf.prods_of, bnf.nullable
        masks = bnf.masks
        k = len(chart)
        col = _Column()
        waiting = col.waiting
        seen = set(seeds)
        work = list(seen)
        predicted: set[int] = set()
        start = bnf.start
        while work:
            item = work.pop()
            p, d, o = item
            rhs = rhs_of[p]
            if d == len(rhs):
                lhs = lhs_of[p]
                if lhs == start and o == 0:
                    col.accepting = True
                if o == k:
                    continue  # an empty completion: the nullable fix already advanced its waiters
                if lhs in bnf.greedy and not (release is not None and release(lhs, o)):
                    if release is None and (lhs, o) not in col.pending:
                        col.pending.append((lhs, o))
                    continue
                src = (ext_last or chart[o]) if o == k - 1 else chart[o + 1].ext
                for p2, d2, o2 in src.waiting.get(lhs, ()):
                    new = (p2, d2 + 1, o2)
                    if new not in seen:
                        seen.add(new)
                        work.append(new)
                continue
            s = rhs[d]
            if s < 0:
                col.scanners.append((masks[~s], p, d, o))
                continue
            waiting.setdefault(s, []).append(item)
            if s not in predicted:
                predicted.add(s)
                for p2 in prods_of[s]:
                    new = (p2, 0, k)
                    if new not in seen:
                        seen.add(new)
                        work.append(new)
            if s in nullable:
                new = (p, d + 1, o)
                if new not in seen:
                    seen.add(new)
                    work.append(new)
        col.size = len(seen)
        col.items = seen
        return col

    def _mask(self, prefix: bytes, tokens: Sequence[bytes | None]) -> set[int]:
        """Allowed token ids, sharing chart columns between tokens with a common prefix."""
        base = self._chart(prefix)
        if len(base) != len(prefix) + 1 or not base[-1].size:
            return set()
        n0 = len(base)
        cols = list(base)
        allowed: set[int] = set()
        prev = b""
        for i in sorted((i for i, t in enumerate(tokens) if t), key=lambda i: tokens[i]):
            t = tokens[i]
            lcp = 0
            for a, b in zip(prev, t):
                if a != b:
                    break
                lcp += 1
            del cols[n0 + lcp:]
            while len(cols) < n0 + len(t) and cols[-1].size:
                cols.append(self._step(cols, t[len(cols) - n0]))
            if len(cols) == n0 + len(t) and cols[-1].size:
                allowed.add(i)
            prev = t
        return allowed


def _as_bytes(data) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _vocab_parts(vocab) -> tuple[Sequence[bytes | None], tuple[int, ...]]:
    if hasattr(vocab, "token_bytes"):
        return vocab.token_bytes, tuple(getattr(vocab, "eos_token_ids", ()))
    return list(vocab), ()


# ================================================================================ IR -> BNF

class _Bnf:
    """Productions over nonterminal ids (>= 0) and byte-set terminals (~index into `masks`)."""

    def __init__(self, grammar: Grammar):
        self.grammar = grammar
        self.lhs: list[int] = []
        self.rhs: list[tuple[int, ...]] = []
        self.prods_of: list[list[int]] = []
        self.names: list[str] = []
        self.weight: list[int] = []  # 1 = counts towards random_sentence's depth
        self.masks: list[int] = []
        self._mask_ids: dict[int, int] = {}
        self._rule_nt: dict[str, int] = {}
        self._memo: dict[Expr, tuple[int, ...]] = {}
        self._pending: list[str] = []
        self.start = self._nt("<start>", 0)
        self._add(self.start, (self._rule(grammar.start),))
        while self._pending:
            name = self._pending.pop()
            self._add(self._rule_nt[name], self._syms(grammar.rules[name]))
        self._prune()
        self.nullable = self._nullable()
        # greedy (longest-match) rules: nonterminal -> its language as a DFA
        self.greedy: dict[int, _Dfa] = {
            self._rule_nt[n]: _dfa_of(grammar.rules[n], grammar.rules)
            for n in getattr(grammar, "greedy", ()) if n in self._rule_nt}

    # -- building
    def _nt(self, name: str, weight: int) -> int:
        self.names.append(name)
        self.weight.append(weight)
        self.prods_of.append([])
        return len(self.names) - 1

    def _add(self, nt: int, rhs: tuple[int, ...]) -> None:
        self.lhs.append(nt)
        self.rhs.append(rhs)
        self.prods_of[nt].append(len(self.rhs) - 1)

    def _term(self, mask: int) -> int:
        tid = self._mask_ids.get(mask)
        if tid is None:
            tid = self._mask_ids[mask] = len(self.masks)
            self.masks.append(mask)
        return ~tid

    def _rule(self, name: str) -> int:
        nt = self._rule_nt.get(name)
        if nt is None:
            if name not in self.grammar.rules:
                raise ValueError(f"oracle: rule {name!r} is referenced but not defined")
            nt = self._rule_nt[name] = self._nt(name, 1)
            self._pending.append(name)
        return nt

    def _single(self, syms: tuple[int, ...], name: str) -> tuple[int, ...]:
        """Wrap a symbol string into one helper nonterminal (keeps repeated copies short)."""
        if len(syms) == 1:
            return syms
        nt = self._nt(name, 0)
        self._add(nt, syms)
        return (nt,)

    def _syms(self, e: Expr) -> tuple[int, ...]:
        hit = self._memo.get(e)
        if hit is not None:
            return hit
        out = self._convert(e)
        self._memo[e] = out
        return out

    def _convert(self, e: Expr) -> tuple[int, ...]:
        if isinstance(e, Lit):
            return tuple(self._term(1 << b) for b in e.value)
        if isinstance(e, ByteRange):
            return (self._term(_byte_mask(e.ranges)),)
        if isinstance(e, Chars):
            seqs = [s for lo, hi in e.ranges for s in utf8_sequences(lo, hi)]
            if all(len(s) == 1 for s in seqs):  # one byte per char (ASCII) or nothing at all
                return (self._term(_byte_mask([s[0] for s in seqs])),)
            if len(seqs) > 8:  # big classes (\w, [^x]): a small DFA beats thousands of productions
                return self._dfa_syms(_dfa_of(e, {}), weight=0)
            nt = self._nt("<chars>", 0)
            for s in seqs:
                self._add(nt, tuple(self._term(_byte_mask([r])) for r in s))
            return (nt,)
        if isinstance(e, Seq):
            return tuple(x for it in e.items for x in self._syms(it))
        if isinstance(e, Alt):
            nt = self._nt("<alt>", 0)
            for it in e.items:
                self._add(nt, self._syms(it))
            return (nt,)
        if isinstance(e, Repeat):
            if e.min < 0 or (e.max is not None and e.max < e.min):
                return (self._nt("<empty-repeat>", 0),)
            item = self._single(self._syms(e.item), "<item>")
            head = item * e.min
            if e.max is None:
                r = self._nt("<star>", 1)
                self._add(r, ())
                self._add(r, (r,) + item)
                return head + (r,)
            tail: tuple[int, ...] = ()
            for _ in range(e.max - e.min):  # O_j -> e | item O_{j-1}
                o = self._nt("<opt>", 1)
                self._add(o, ())
                self._add(o, item + tail)
                tail = (o,)
            return head + tail
        if isinstance(e, Ref):
            return (self._rule(e.name),)
        if isinstance(e, Regex):
            return self._syms(_regex_to_ir(e))
        if isinstance(e, (And, Not)):
            return self._dfa_syms(_dfa_of(e, self.grammar.rules))
        raise TypeError(f"oracle: unknown IR node {e!r}")

    def _dfa_syms(self, dfa: "_Dfa", weight: int = 1) -> tuple[int, ...]:
        nts = [self._nt("<dfa>", weight) for _ in dfa.trans]
        for q, row in enumerate(dfa.trans):
            by_target: dict[int, int] = {}
            for b, t in enumerate(row):
                if t >= 0:
                    by_target[t] = by_target.get(t, 0) | (1 << b)
            for t, mask in by_target.items():
                self._add(nts[q], (self._term(mask), nts[t]))
            if dfa.accept[q]:
                self._add(nts[q], ())
        return (nts[0],)

    # -- analysis
    def _prune(self) -> None:
        """Drop productions that use a non-productive symbol (so every chart item can finish)."""
        productive: set[int] = set()
        changed = True
        while changed:
            changed = False
            for p, rhs in enumerate(self.rhs):
                a = self.lhs[p]
                if a in productive:
                    continue
                if all((s >= 0 and s in productive) or (s < 0 and self.masks[~s]) for s in rhs):
                    productive.add(a)
                    changed = True
        self.productive = productive
        keep = [p for p, rhs in enumerate(self.rhs)
                if all((s >= 0 and s in productive) or (s < 0 and self.masks[~s]) for s in rhs)]
        self.lhs = [self.lhs[p] for p in keep]
        self.rhs = [self.rhs[p] for p in keep]
        self.prods_of = [[] for _ in self.names]
        for p, a in enumerate(self.lhs):
            self.prods_of[a].append(p)

    def _nullable(self) -> set[int]:
        nullable: set[int] = set()
        changed = True
        while changed:
            changed = False
            for a, rhs in zip(self.lhs, self.rhs):
                if a not in nullable and all(s >= 0 and s in nullable for s in rhs):
                    nullable.add(a)
                    changed = True
        return nullable

    # -- generation
    def random_sentence(self, rng, max_depth: int) -> bytes:
        if self.start not in self.productive:
            raise ValueError("random_sentence: the grammar's language is empty")
        height = self._heights()
        best = []
        for a in range(len(self.names)):
            hs = [self._prod_height(p, height) for p in self.prods_of[a]]
            best.append([p for p, h in zip(self.prods_of[a], hs) if h == min(hs)] if hs else [])
        out = bytearray()
        stack: list[tuple[int, int]] = [(self.start, 0)]
        while stack:
            s, depth = stack.pop()
            if s < 0:
                out.append(_random_bit(self.masks[~s], rng))
                continue
            depth += self.weight[s]
            choices = best[s] if depth > max_depth else self.prods_of[s]
            p = choices[rng.randrange(len(choices))]
            for x in reversed(self.rhs[p]):
                stack.append((x, depth))
        return bytes(out)

    def _heights(self) -> list[float]:
        inf = float("inf")
        h = [inf] * len(self.names)
        changed = True
        while changed:
            changed = False
            for p, a in enumerate(self.lhs):
                v = self._prod_height(p, h)
                if v < h[a]:
                    h[a] = v
                    changed = True
        return h

    def _prod_height(self, p: int, h: list[float]) -> float:
        return 1 + max((h[s] for s in self.rhs[p] if s >= 0), default=0)


def _byte_mask(ranges: Iterable[tuple[int, int]]) -> int:
    m = 0
    for lo, hi in ranges:
        lo, hi = max(lo, 0), min(hi, 255)
        if lo <= hi:
            m |= ((1 << (hi - lo + 1)) - 1) << lo
    return m


def _random_bit(mask: int, rng) -> int:
    bits = [b for b in range(256) if (mask >> b) & 1]
    return bits[rng.randrange(len(bits))]


# ================================================================================ UTF-8

def utf8_sequences(lo: int, hi: int) -> list[tuple[tuple[int, int], ...]]:
    """Byte-range sequences whose union is exactly the UTF-8 encodings of [lo, hi] minus surrogates."""
    if not _INDEPENDENT:
        ext = _project_utf8()
        if ext is not None:
            return ext(lo, hi)
    return _utf8_sequences(lo, hi)


@lru_cache(maxsize=None)
def _project_utf8():
    """`structgen.regex.utf8.utf8_sequences`, adapted to our shape, once it exists."""
    try:
        from structgen.regex.utf8 import utf8_sequences as f  # type: ignore
    except Exception:
        return None

    def adapted(lo: int, hi: int):
        out = []
        for s in f(lo, hi):
            out.append(tuple((int(a), int(b)) for a, b in s))
        return out

    try:  # shape check on a range that exercises every length and the surrogate gap
        probe = adapted(0x70, 0x10FFFF)
        if sorted(probe) != sorted(_utf8_sequences(0x70, 0x10FFFF)):
            return None
    except Exception:
        return None
    return adapted


@lru_cache(maxsize=4096)
def _utf8_sequences(lo: int, hi: int) -> list[tuple[tuple[int, int], ...]]:
    out: list[tuple[tuple[int, int], ...]] = []
    todo = [(max(lo, 0), min(hi, 0x10FFFF))]
    while todo:
        lo, hi = todo.pop()
        if lo > hi:
            continue
        if lo <= 0xDFFF and hi >= 0xD800:  # surrogates are not characters
            todo += [(lo, 0xD7FF), (0xE000, hi)]
            continue
        split = next((b for b in (0x7F, 0x7FF, 0xFFFF) if lo <= b < hi), None)
        if split is not None:  # same encoded length on both ends
            todo += [(lo, split), (split + 1, hi)]
            continue
        n = len(chr(lo).encode("utf-8"))
        for i in range(1, n):  # align so that every continuation byte spans a full range
            m = (1 << (6 * i)) - 1
            if lo & ~m != hi & ~m:
                if lo & m:
                    todo += [(lo, lo | m), ((lo | m) + 1, hi)]
                    break
                if hi & m != m:
                    todo += [(lo, (hi & ~m) - 1), (hi & ~m, hi)]
                    break
        else:
            out.append(tuple(zip(chr(lo).encode("utf-8"), chr(hi).encode("utf-8"))))
    return out


# ================================================================================ And / Not

class _Dfa:
    """Complete-or-partial byte DFA: trans[q][b] is a state or -1; state 0 starts."""

    def __init__(self, trans: list[list[int]], accept: list[bool]):
        self.trans = trans
        self.accept = accept
        self._live: set[int] | None = None

    def viable(self, data: bytes) -> bool:
        """`data` is a prefix of some string of the language."""
        if self._live is None:
            live = {q for q, a in enumerate(self.accept) if a}
            changed = True
            while changed:
                changed = False
                for q, row in enumerate(self.trans):
                    if q not in live and any(t in live for t in row if t >= 0):
                        live.add(q)
                        changed = True
            self._live = live
        q = 0
        for b in data:
            q = self.trans[q][b]
            if q < 0:
                return False
        return q in self._live


class _Nfa:
    def __init__(self):
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1


def _dfa_of(e: Expr, rules: dict[str, Expr]) -> _Dfa:
    nfa = _Nfa()
    s, f = _frag(nfa, e, rules, ())
    return _determinize(nfa, s, f)


def _frag(nfa: _Nfa, e: Expr, rules, stack: tuple[str, ...]) -> tuple[int, int]:
    """Thompson fragment (start, final) for a regular expression (Refs inlined)."""
    s = nfa.state()
    if isinstance(e, Lit):
        cur = s
        for b in e.value:
            nxt = nfa.state()
            nfa.edges[cur].append((1 << b, nxt))
            cur = nxt
        return s, cur
    if isinstance(e, ByteRange):
        f = nfa.state()
        nfa.edges[s].append((_byte_mask(e.ranges), f))
        return s, f
    if isinstance(e, Chars):
        f = nfa.state()
        for lo, hi in e.ranges:
            for sq in utf8_sequences(lo, hi):
                cur = s
                for i, r in enumerate(sq):
                    nxt = f if i == len(sq) - 1 else nfa.state()
                    nfa.edges[cur].append((_byte_mask([r]), nxt))
                    cur = nxt
        return s, f
    if isinstance(e, Seq):
        cur = s
        for it in e.items:
            a, b = _frag(nfa, it, rules, stack)
            nfa.eps[cur].append(a)
            cur = b
        return s, cur
    if isinstance(e, Alt):
        f = nfa.state()
        for it in e.items:
            a, b = _frag(nfa, it, rules, stack)
            nfa.eps[s].append(a)
            nfa.eps[b].append(f)
        return s, f
    if isinstance(e, Repeat):
        cur = s
        for _ in range(e.min):
            a, b = _frag(nfa, e.item, rules, stack)
            nfa.eps[cur].append(a)
            cur = b
        f = nfa.state()
        nfa.eps[cur].append(f)
        if e.max is None:
            a, b = _frag(nfa, e.item, rules, stack)
            nfa.eps[cur].append(a)
            nfa.eps[b].append(cur)
        else:
            for _ in range(e.max - e.min):
                a, b = _frag(nfa, e.item, rules, stack)
                nfa.eps[cur].append(a)
                nfa.eps[b].append(f)
                cur = b
        return s, f
    if isinstance(e, Ref):
        if e.name in stack:
            raise ValueError(f"oracle: recursive rule {e.name!r} inside And/Not")
        if e.name not in rules:
            raise ValueError(f"oracle: rule {e.name!r} is referenced but not defined")
        a, b = _frag(nfa, rules[e.name], rules, stack + (e.name,))
        nfa.eps[s].append(a)
        return s, b
    if isinstance(e, Regex):
        a, b = _frag(nfa, _regex_to_ir(e), rules, stack)
        nfa.eps[s].append(a)
        return s, b
    if isinstance(e, (And, Not)):
        if isinstance(e, And):
            dfa = None
            for it in e.items:
                d = _determinize_frag(it, rules, stack)
                dfa = d if dfa is None else _product(dfa, d)
            if dfa is None:  # And(()) is the universe (of valid UTF-8 strings)
                dfa = _utf8_dfa()
        else:
            dfa = _product(_complement(_determinize_frag(e.item, rules, stack)), _utf8_dfa())
        states = [nfa.state() for _ in dfa.trans]
        f = nfa.state()
        nfa.eps[s].append(states[0])
        for q, row in enumerate(dfa.trans):
            by_target: dict[int, int] = {}
            for b, t in enumerate(row):
                if t >= 0:
                    by_target[t] = by_target.get(t, 0) | (1 << b)
            for t, mask in by_target.items():
                nfa.edges[states[q]].append((mask, states[t]))
            if dfa.accept[q]:
                nfa.eps[states[q]].append(f)
        return s, f
    raise TypeError(f"oracle: unknown IR node {e!r}")


def _determinize_frag(e: Expr, rules, stack) -> _Dfa:
    nfa = _Nfa()
    s, f = _frag(nfa, e, rules, stack)
    return _determinize(nfa, s, f)


def _determinize(nfa: _Nfa, s: int, f: int) -> _Dfa:
    def close(states: Iterable[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(seen)
        while todo:
            q = todo.pop()
            for r in nfa.eps[q]:
                if r not in seen:
                    seen.add(r)
                    todo.append(r)
        return frozenset(seen)

    first = close([s])
    ids = {first: 0}
    order = [first]
    trans: list[list[int]] = []
    accept: list[bool] = []
    i = 0
    while i < len(order):
        cur = order[i]
        i += 1
        by_byte: dict[int, set[int]] = {}
        for q in cur:
            for mask, t in nfa.edges[q]:
                while mask:
                    low = mask & -mask
                    by_byte.setdefault(low.bit_length() - 1, set()).add(t)
                    mask ^= low
        row = [-1] * 256
        for b, ts in by_byte.items():
            nxt = close(ts)
            j = ids.get(nxt)
            if j is None:
                j = ids[nxt] = len(order)
                order.append(nxt)
            row[b] = j
        trans.append(row)
        accept.append(f in cur)
    return _Dfa(trans, accept)


def _product(a: _Dfa, b: _Dfa) -> _Dfa:
    ids = {(0, 0): 0}
    order = [(0, 0)]
    trans: list[list[int]] = []
    accept: list[bool] = []
    i = 0
    while i < len(order):
        p, q = order[i]
        i += 1
        row = [-1] * 256
        for c in range(256):
            x, y = a.trans[p][c], b.trans[q][c]
            if x >= 0 and y >= 0:
                j = ids.get((x, y))
                if j is None:
                    j = ids[(x, y)] = len(order)
                    order.append((x, y))
                row[c] = j
        trans.append(row)
        accept.append(a.accept[p] and b.accept[q])
    return _Dfa(trans, accept)


def _complement(d: _Dfa) -> _Dfa:
    """Complement over all byte strings (intersect with UTF-8 afterwards)."""
    sink = len(d.trans)
    trans = [[t if t >= 0 else sink for t in row] for row in d.trans] + [[sink] * 256]
    accept = [not x for x in d.accept] + [True]
    return _Dfa(trans, accept)


@lru_cache(maxsize=1)
def _utf8_dfa() -> _Dfa:
    nfa = _Nfa()
    s, f = _frag(nfa, Repeat(ANY_CHAR, 0, None), {}, ())
    return _determinize(nfa, s, f)


# ================================================================================ regex leaves

def _regex_to_ir(r: Regex) -> Expr:
    if not _INDEPENDENT:
        try:
            from structgen.regex import parse_regex  # type: ignore
        except ImportError:
            parse_regex = None
        if parse_regex is not None:
            return parse_regex(r.pattern, flavor=r.flavor, flags=r.flags, search=r.search)
    return _fallback_regex(r.pattern, r.flavor, r.flags, r.search)


class _Unsupported(NotImplementedError):
    """The fallback regex reader does not handle this construct (tests needing it should skip)."""


_START, _END = object(), object()  # anchor markers, only allowed at a branch's edges


@lru_cache(maxsize=1024)
def _fallback_regex(pattern: str, flavor: str, flags: str, search: bool) -> Expr:
    """Structure (groups, |, quantifiers) read here; every single-character atom's set is
    computed by `re` itself over all code points, so atoms are exact by construction."""
    if "x" in flags:
        raise _Unsupported("verbose regexes in the fallback reader")
    if flavor == "ecma" and "i" in flags:
        raise _Unsupported("case-insensitive ECMA regexes in the fallback reader")
    if flavor not in ("python", "ecma"):
        raise ValueError(f"unknown regex flavor {flavor!r}")
    reader = _MiniRegex(pattern, flavor, flags)
    branches = reader.parse()
    any_star = Repeat(ANY_CHAR, 0, None)
    out = []
    for items in branches:
        head = bool(items) and items[0] is _START
        tail = bool(items) and items[-1] is _END
        body = items[int(head):len(items) - int(tail)]
        if any(x is _START or x is _END for x in body):
            raise _Unsupported("anchors inside a regex")
        e = seq(*body)
        if search:
            if tail and flavor == "python" and "m" not in flags:
                e = seq(e, repeat(Lit(b"\n"), 0, 1))  # Python's `$` also matches before a final \n
            elif tail and "m" in flags:
                raise _Unsupported("multiline anchors")
            if head and "m" in flags:
                raise _Unsupported("multiline anchors")
            if not head:
                e = seq(any_star, e)
            if not tail:
                e = seq(e, any_star)
        out.append(e)
    return alt(*out)


class _MiniRegex:
    def __init__(self, pattern: str, flavor: str, flags: str):
        self.p = pattern
        self.i = 0
        self.flavor = flavor
        self.flags = 0
        for c in flags:
            self.flags |= {"i": re.I, "m": re.M, "s": re.S}.get(c, 0)

    def parse(self) -> list[list]:
        if self.p.startswith("(?") and re.match(r"\(\?[aiLmsux]+\)", self.p):
            m = re.match(r"\(\?([aiLmsux]+)\)", self.p)
            for c in m.group(1):
                if c in "xL":
                    raise _Unsupported(f"global flag {c}")
                self.flags |= {"i": re.I, "m": re.M, "s": re.S}.get(c, 0)
            self.i = m.end()
        branches = [self._seq_items()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._seq_items())
        if self.i != len(self.p):
            raise _Unsupported(f"unbalanced ')' at {self.i} in {self.p!r}")
        return branches

    def _peek(self) -> str:
        return self.p[self.i] if self.i < len(self.p) else ""

    def _alt(self) -> Expr:
        branches = [self._seq_items()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._seq_items())
        for b in branches:
            if any(x is _START or x is _END for x in b):
                raise _Unsupported("anchors inside a group")
        return alt(*(seq(*b) for b in branches))

    def _seq_items(self) -> list:
        items: list = []
        while self.i < len(self.p) and self.p[self.i] not in "|)":
            items.append(self._quantified())
        return items

    def _quantified(self):
        atom = self._atom()
        while True:
            c = self._peek()
            if c in ("*", "+", "?"):
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
                self.i += 1
            elif c == "{":
                m = re.compile(r"\{(\d*)(,?)(\d*)\}").match(self.p, self.i)
                if not m or (not m.group(1) and not m.group(3)) or (not m.group(2) and not m.group(1)):
                    return atom  # a literal '{' follows; handled by the caller's next atom
                lo = int(m.group(1) or 0)
                hi = int(m.group(3)) if m.group(3) else (None if m.group(2) else lo)
                self.i = m.end()
            else:
                return atom
            if atom is _START or atom is _END:
                raise _Unsupported("quantified anchor")
            if self._peek() == "?":
                self.i += 1  # lazy: same language
            elif self._peek() == "+":
                raise _Unsupported("possessive quantifier")
            atom = repeat(atom, lo, hi)

    def _atom(self):
        p, i = self.p, self.i
        c = p[i]
        if c == "(":
            if p.startswith("(?:", i):
                self.i += 3
            elif p.startswith("(?P<", i):
                self.i = p.index(">", i) + 1
            elif p.startswith("(?#", i):
                self.i = p.index(")", i) + 1
                return Lit(b"")
            elif p.startswith("(?", i):
                m = re.compile(r"\(\?([imsx]*)(?:-([imsx]*))?:").match(p, i)
                if not m:
                    raise _Unsupported(f"group construct at {i} in {p!r}")
                if "x" in (m.group(1) or "") + (m.group(2) or ""):
                    raise _Unsupported("verbose flag")
                saved = self.flags
                for f in m.group(1) or "":
                    self.flags |= {"i": re.I, "m": re.M, "s": re.S}[f]
                for f in m.group(2) or "":
                    self.flags &= ~{"i": re.I, "m": re.M, "s": re.S}[f]
                self.i = m.end()
                e = self._alt()
                self._expect(")")
                self.flags = saved
                return e
            else:
                self.i += 1
            e = self._alt()
            self._expect(")")
            return e
        if c == "[":
            j = i + 1
            if j < len(p) and p[j] == "^":
                j += 1
            if j < len(p) and p[j] == "]":
                j += 1
            while j < len(p) and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            if j >= len(p):
                raise _Unsupported(f"unterminated class in {p!r}")
            self.i = j + 1
            return self._set(p[i:j + 1])
        if c == ".":
            self.i += 1
            return self._set(".")
        if c == "^":
            self.i += 1
            return _START
        if c == "$":
            self.i += 1
            return _END
        if c == "\\":
            m = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]*\}|0[0-7]{0,2}|[1-9]\d*|.)", re.S).match(p, i)
            if not m:
                raise _Unsupported(f"bad escape at {i} in {p!r}")
            self.i = m.end()
            esc = m.group(1)
            if esc in ("b", "B", "A", "Z", "z", "G"):
                raise _Unsupported(f"anchor \\{esc}")
            if esc[0] in "123456789":
                raise _Unsupported("backreference")
            return self._set(m.group(0))
        if c in "*+?":
            raise _Unsupported(f"nothing to repeat at {i} in {p!r}")
        self.i += 1
        if not self.flags & re.I:
            return Lit(c.encode("utf-8"))
        return self._set(re.escape(c))

    def _expect(self, c: str) -> None:
        if self._peek() != c:
            raise _Unsupported(f"expected {c!r} at {self.i} in {self.p!r}")
        self.i += 1

    def _set(self, atom: str) -> Expr:
        flags = self.flags & (re.I | re.S)
        if self.flavor == "ecma":
            atom = _ecma_atom(atom)
            flags = (flags & ~re.I) | re.ASCII
        return _char_set(atom, flags)


def _ecma_atom(atom: str) -> str:
    """Python spelling of an ECMA (non-unicode-mode) single-character atom."""
    ws = r"\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    if atom == ".":
        return r"[^\n\r\u2028\u2029]"
    if atom == r"\s":
        return f"[{ws}]"
    if atom == r"\S":
        return f"[^{ws}]"
    if atom.startswith("[") and (r"\s" in atom or r"\S" in atom):
        raise _Unsupported("\\s inside an ECMA class in the fallback reader")
    return atom


@lru_cache(maxsize=None)
def _all_chars() -> str:
    """Every code point except surrogates, as one string."""
    from array import array

    return (array("I", range(0xD800)).tobytes().decode("utf-32-le")
            + array("I", range(0xE000, 0x110000)).tobytes().decode("utf-32-le"))


@lru_cache(maxsize=4096)
def _char_set(atom: str, flags: int) -> Expr:
    try:
        rx = re.compile(f"(?:{atom})+", flags)
    except re.error as ex:
        raise _Unsupported(f"bad atom {atom!r}: {ex}") from None
    ranges: list[tuple[int, int]] = []
    for m in rx.finditer(_all_chars()):  # runs of consecutive code points (string index -> cp)
        a, b = m.start(), m.end() - 1
        if a < 0xD800 <= b:
            ranges += [(a, 0xD7FF), (0xE000, b + 0x800)]
        else:
            ranges.append((a if a < 0xD800 else a + 0x800, b if b < 0xD800 else b + 0x800))
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return Lit(chr(ranges[0][0]).encode("utf-8"))
    return Chars(tuple(ranges))
