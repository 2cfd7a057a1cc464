"""Byte-level automata for one rule: IR -> NFA (with call edges) -> minimal DFA.

A rule body becomes an NFA over bytes whose extra "call" edges stand for references to other
rules (the pushdown part). Subset construction treats each call target as one more alphabet
symbol, so every rule ends up a deterministic automaton over (byte classes + calls). `And` and
`Not` are built here by product and complement of sub-DFAs (they must be regular: no calls).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from structgen.errors import GrammarError, LimitExceeded
from structgen.grammar.ir import ANY_CHAR, Alt, And, ByteRange, Chars, Expr, Lit, Not, Ref, Repeat, Seq


@lru_cache(maxsize=65536)
def utf8_byte_sequences(lo: int, hi: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    from structgen.regex.utf8 import utf8_sequences

    return tuple(tuple(seq) for seq in utf8_sequences(lo, hi))


class NFA:
    """Thompson NFA: epsilon edges, byte-range edges and call edges (rule name)."""

    def __init__(self, max_states: int):
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int, int]]] = []
        self.calls: list[list[tuple[str, int]]] = []
        self.max_states = max_states

    def new(self) -> int:
        if len(self.eps) >= self.max_states:
            raise LimitExceeded(f"automaton exceeds {self.max_states} NFA states; raise max_states or simplify the constraint")
        self.eps.append([])
        self.edges.append([])
        self.calls.append([])
        return len(self.eps) - 1

    def build(self, e: Expr, s: int, t: int) -> None:
        """Add paths for e from state s to state t."""
        stack = [(e, s, t)]
        while stack:
            e, s, t = stack.pop()
            if isinstance(e, Lit):
                cur = s
                for i, b in enumerate(e.value):
                    nxt = t if i == len(e.value) - 1 else self.new()
                    self.edges[cur].append((b, b, nxt))
                    cur = nxt
                if not e.value:
                    self.eps[s].append(t)
            elif isinstance(e, ByteRange):
                for lo, hi in e.ranges:
                    self.edges[s].append((lo, hi, t))
            elif isinstance(e, Chars):
                self._chars(e, s, t)
            elif isinstance(e, Seq):
                cur = s
                for i, x in enumerate(e.items):
                    nxt = t if i == len(e.items) - 1 else self.new()
                    stack.append((x, cur, nxt))
                    cur = nxt
            elif isinstance(e, Alt):
                for x in e.items:
                    stack.append((x, s, t))
            elif isinstance(e, Repeat):
                cur = s
                for _ in range(e.min):
                    nxt = self.new()
                    stack.append((e.item, cur, nxt))
                    cur = nxt
                if e.max is None:
                    loop = self.new()
                    self.eps[cur].append(loop)
                    back = self.new()
                    stack.append((e.item, loop, back))
                    self.eps[back].append(loop)
                    self.eps[loop].append(t)
                else:
                    for _ in range(e.max - e.min):
                        nxt = self.new()
                        self.eps[cur].append(t)
                        stack.append((e.item, cur, nxt))
                        cur = nxt
                    self.eps[cur].append(t)
            elif isinstance(e, Ref):
                self.calls[s].append((e.name, t))
            elif isinstance(e, (And, Not)):
                self._embed(regular_dfa(e, self.max_states), s, t)
            else:
                raise GrammarError(f"unexpected IR node {type(e).__name__} (unresolved Regex?)")

    def _chars(self, e: Chars, s: int, t: int) -> None:
        if len(e.ranges) == 1 and e.ranges[0][0] == e.ranges[0][1] and not 0xD800 <= e.ranges[0][0] <= 0xDFFF:
            self.build(Lit(chr(e.ranges[0][0]).encode("utf-8")), s, t)
            return
        # Share the trailing continuation-byte states between sequences of the same shape.
        tails: dict[tuple, int] = {}
        for lo, hi in e.ranges:
            for byte_seq in utf8_byte_sequences(lo, hi):
                cur = s
                for i, (blo, bhi) in enumerate(byte_seq):
                    rest = tuple(byte_seq[i + 1:])
                    if not rest:
                        nxt = t
                    else:
                        key = rest
                        nxt = tails.get(key)
                        fresh = nxt is None
                        if fresh:
                            nxt = self.new()
                            tails[key] = nxt
                    self.edges[cur].append((blo, bhi, nxt))
                    if rest and not fresh:
                        break
                    cur = nxt

    def _embed(self, dfa: "DFA", s: int, t: int) -> None:
        base = [self.new() for _ in range(dfa.n_states)]
        self.eps[s].append(base[dfa.start])
        for q in range(dfa.n_states):
            if dfa.final[q]:
                self.eps[base[q]].append(t)
            for c in range(dfa.n_classes):
                r = dfa.trans[q, c]
                if r >= 0:
                    for lo, hi in dfa.class_ranges[c]:
                        self.edges[base[q]].append((lo, hi, base[r]))


@dataclass
class DFA:
    """Deterministic automaton over byte classes plus call symbols.

    trans[q, c] for byte class c < n_classes; calls[q] = list of (rule name, target state).
    """

    n_states: int
    start: int
    trans: np.ndarray            # int32 [n_states, n_classes], -1 = dead
    final: np.ndarray            # bool [n_states]
    calls: list[list[tuple[str, int]]]
    byte_class: np.ndarray       # int32 [256]
    class_ranges: list[list[tuple[int, int]]]

    @property
    def n_classes(self) -> int:
        return int(self.trans.shape[1])


def byte_classes(nfa: NFA) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """Coarsest partition of 0..255 that no edge splits."""
    cuts = np.zeros(257, dtype=bool)
    cuts[0] = True
    for es in nfa.edges:
        for lo, hi, _ in es:
            cuts[lo] = True
            cuts[hi + 1] = True
    # Bytes used by no edge at all form one class with the gaps; that's fine (all dead).
    cls = np.cumsum(cuts[:256]).astype(np.int32) - 1
    n = int(cls[-1]) + 1
    ranges: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    start = 0
    for b in range(1, 257):
        if b == 256 or cls[b] != cls[b - 1]:
            ranges[cls[start]].append((start, b - 1))
            start = b
    return cls, ranges


def determinize(nfa: NFA, start: int, final: int, *, max_states: int) -> DFA:
    """Subset construction (numba kernel). DFA states are sets of *important* NFA states (those
    with byte or call edges, or the final state): epsilon-only states never need to be
    remembered. Call targets are extra alphabet symbols (sorted by rule name)."""
    from structgen.automata import fsm_kernels as FK

    cls, ranges = byte_classes(nfa)
    n_cls = len(ranges)
    n = len(nfa.eps)
    eps_dst = [r for es in nfa.eps for r in es]
    eps_ptr = np.zeros(n + 1, dtype=np.int64)
    eps_ptr[1:] = np.cumsum([len(es) for es in nfa.eps])
    names = sorted({name for cs in nfa.calls for name, _ in cs})
    col = {name: n_cls + i for i, name in enumerate(names)}
    src: list[int] = []
    sym: list[int] = []
    dst: list[int] = []
    cls_l = cls.tolist()
    for q in range(n):
        for lo, hi, r in nfa.edges[q]:
            c0, c1 = cls_l[lo], cls_l[hi]
            for c in range(c0, c1 + 1):
                src.append(q)
                sym.append(c)
                dst.append(r)
        for name, r in nfa.calls[q]:
            src.append(q)
            sym.append(col[name])
            dst.append(r)
    src_a = np.array(src, dtype=np.int64)
    mv_ptr = np.zeros(n + 1, dtype=np.int64)
    mv_ptr[1:] = np.cumsum(np.bincount(src_a, minlength=n))  # src is non-decreasing
    important = np.zeros(n, dtype=np.bool_)
    important[src_a] = True
    important[final] = True
    trans_full, fin, n_dfa = FK.subset_construction(
        n, eps_ptr, np.array(eps_dst, dtype=np.int64), mv_ptr, np.array(sym, dtype=np.int64),
        np.array(dst, dtype=np.int64), important, start, final, n_cls + len(names), max_states)
    if n_dfa < 0:
        raise LimitExceeded(f"DFA exceeds {max_states} states; raise max_states or simplify the constraint")
    trans = np.ascontiguousarray(trans_full[:, :n_cls])
    if names:
        cpart = trans_full[:, n_cls:].tolist()
        calls = [[(names[j], r) for j, r in enumerate(row) if r >= 0] for row in cpart]
    else:
        calls = [[] for _ in range(n_dfa)]
    return DFA(n_dfa, 0, trans, fin, calls, cls, ranges)


def minimize(d: DFA, productive: frozenset[str] | None = None) -> DFA:
    """Trim states that cannot reach a final state, then merge equivalent states (Hopcroft).

    The result is canonical: states are numbered in BFS order from the start state (0)."""
    from structgen.automata import fsm_kernels as FK

    n = d.n_states
    # call symbols as extra columns
    names = sorted({name for cs in d.calls for name, _ in cs if productive is None or name in productive})
    col = {name: i for i, name in enumerate(names)}
    nc = d.n_classes
    full = np.full((n, nc + len(names)), -1, dtype=np.int64)
    full[:, :nc] = d.trans
    if names:
        for q, cs in enumerate(d.calls):
            for name, r in cs:
                j = col.get(name)
                if j is not None:
                    full[q, nc + j] = r
    keep, start_live = FK.trim(full, np.ascontiguousarray(d.final, dtype=np.bool_), d.start)
    if not start_live:
        # empty language: a single dead start state
        return DFA(1, 0, np.full((1, nc), -1, np.int32), np.zeros(1, bool), [[]], d.byte_class, d.class_ranges)
    old = np.nonzero(keep)[0]
    remap = np.full(n + 1, -1, dtype=np.int64)
    remap[old] = np.arange(len(old))
    sub = full[old]
    sub = np.ascontiguousarray(np.where(sub >= 0, remap[sub], -1))
    fin = np.ascontiguousarray(d.final[old], dtype=np.bool_)
    block, m = FK.hopcroft(sub, fin)
    rep = np.zeros(m, dtype=np.int64)
    rep[block[::-1]] = np.arange(len(block))[::-1]
    srep = sub[rep]
    trans_full = np.ascontiguousarray(np.where(srep >= 0, block[np.maximum(srep, 0)], -1))
    start = int(block[remap[d.start]])
    # renumber so the start state is 0 and states appear in BFS order (stable, readable tables)
    order = FK.bfs_order(trans_full, start)
    pos = np.full(m, -1, dtype=np.int64)
    pos[order] = np.arange(len(order))
    trans_full = trans_full[order]
    trans_full = np.where(trans_full >= 0, pos[np.maximum(trans_full, 0)], -1)
    fin_b = np.zeros(m, dtype=bool)
    fin_b[block] = fin
    fin_b = fin_b[order]
    trans = trans_full[:, :nc].astype(np.int32)
    if names:
        cpart = trans_full[:, nc:].tolist()
        calls = [[(names[j], r) for j, r in enumerate(row) if r >= 0] for row in cpart]
    else:
        calls = [[] for _ in range(m)]
    return DFA(m, 0, trans, fin_b, calls, d.byte_class, d.class_ranges)


def expr_to_dfa(e: Expr, *, max_states: int, productive: frozenset[str] | None = None) -> DFA:
    nfa = NFA(max_states * 8)
    s, t = nfa.new(), nfa.new()
    nfa.build(e, s, t)
    return minimize(determinize(nfa, s, t, max_states=max_states), productive)


_UTF8_ALL_CACHE: dict[int, DFA] = {}


@lru_cache(maxsize=1024)
def regular_dfa(e: Expr, max_states: int) -> DFA:
    """DFA (no calls) for And/Not nodes and plain regular expressions (cached: schemas repeat them)."""
    if isinstance(e, And):
        parts = [regular_dfa(x, max_states) for x in e.items]
        out = parts[0]
        for p in parts[1:]:
            out = product(out, p, max_states, lambda a, b: a and b)
        return out
    if isinstance(e, Not):
        inner = regular_dfa(e.item, max_states)
        universe = _utf8_universe(max_states)
        return product(universe, inner, max_states, lambda a, b: a and not b)
    d = expr_to_dfa(e, max_states=max_states)
    if any(d.calls[q] for q in range(d.n_states)):
        raise GrammarError("And/Not may only contain regular expressions (no recursive rule references)")
    return d


def _utf8_universe(max_states: int) -> DFA:
    d = _UTF8_ALL_CACHE.get(0)
    if d is None:
        d = expr_to_dfa(Repeat(ANY_CHAR, 0, None), max_states=max_states)
        _UTF8_ALL_CACHE[0] = d
    return d


def product(a: DFA, b: DFA, max_states: int, combine) -> DFA:
    """Product automaton over raw bytes; a missing transition goes to an implicit sink (-1)."""
    # common byte classes: pair of classes
    pair = a.byte_class.astype(np.int64) * (b.n_classes + 1) + b.byte_class
    uniq, cls = np.unique(pair, return_inverse=True)
    cls = cls.astype(np.int32).reshape(256)
    n_cls = len(uniq)
    ranges: list[list[tuple[int, int]]] = [[] for _ in range(n_cls)]
    start_b = 0
    for x in range(1, 257):
        if x == 256 or cls[x] != cls[x - 1]:
            ranges[cls[start_b]].append((start_b, x - 1))
            start_b = x
    ac = [a.byte_class[r[0][0]] for r in ranges]
    bc = [b.byte_class[r[0][0]] for r in ranges]
    index = {(a.start, b.start): 0}
    todo = [(a.start, b.start)]
    rows = []
    fin = []
    i = 0
    while i < len(todo):
        qa, qb = todo[i]
        i += 1
        fa = bool(a.final[qa]) if qa >= 0 else False
        fb = bool(b.final[qb]) if qb >= 0 else False
        fin.append(combine(fa, fb))
        row = []
        for c in range(n_cls):
            ra = int(a.trans[qa, ac[c]]) if qa >= 0 else -1
            rb = int(b.trans[qb, bc[c]]) if qb >= 0 else -1
            if ra < 0 and rb < 0:
                row.append(-1)
                continue
            key = (ra, rb)
            j = index.get(key)
            if j is None:
                j = len(todo)
                if j >= max_states:
                    raise LimitExceeded(f"intersection/complement automaton exceeds {max_states} states")
                index[key] = j
                todo.append(key)
            row.append(j)
        rows.append(row)
    d = DFA(len(todo), 0, np.array(rows, dtype=np.int32).reshape(len(todo), n_cls), np.array(fin, dtype=bool),
            [[] for _ in todo], cls, ranges)
    return minimize(d)
