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
    """Thompson NFA: epsilon edges, byte-range edges and call edges (rule name).

    Edges live in flat lists plus numpy chunks (embedded sub-automata), so that copying a
    cached sub-automaton costs a few array operations rather than a Python loop."""

    def __init__(self, max_states: int):
        self.n = 0
        self.max_states = max_states
        self.eps_s: list[int] = []
        self.eps_t: list[int] = []
        self.e_s: list[int] = []
        self.e_lo: list[int] = []
        self.e_hi: list[int] = []
        self.e_t: list[int] = []
        self.c_s: list[int] = []
        self.c_name: list[str] = []
        self.c_t: list[int] = []
        # chunks: (eps_src, eps_dst, edge_src, edge_lo, edge_hi, edge_dst) int64 arrays
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self._info: dict[int, tuple[bool, int]] = {}

    def _limit(self) -> None:
        raise LimitExceeded(f"automaton exceeds {self.max_states} NFA states; raise max_states or simplify the constraint")

    def new(self) -> int:
        if self.n >= self.max_states:
            self._limit()
        self.n += 1
        return self.n - 1

    def new_block(self, k: int) -> int:
        if self.n + k > self.max_states:
            self._limit()
        base = self.n
        self.n += k
        return base

    def _analyze(self, root: Expr) -> None:
        """(has a Ref, IR size) for every node of root, memoized by identity."""
        info = self._info
        stack = [(root, False)]
        while stack:
            e, done = stack.pop()
            k = id(e)
            if k in info:
                continue
            kids = _children(e)
            if not done:
                stack.append((e, True))
                stack.extend((x, False) for x in kids if id(x) not in info)
                continue
            has_ref = isinstance(e, Ref)
            size = 1 + (len(e.value) if isinstance(e, Lit) else 0)
            for x in kids:
                hr, sz = info[id(x)]
                has_ref = has_ref or hr
                size += sz
            info[k] = (has_ref, size)

    def _regular(self, e: Expr) -> bool:
        got = self._info.get(id(e))
        if got is None:
            self._analyze(e)
            got = self._info[id(e)]
        return not got[0]

    def _size(self, e: Expr) -> int:
        got = self._info.get(id(e))
        if got is None:
            self._analyze(e)
            got = self._info[id(e)]
        return got[1]

    def embed_fragment(self, frag: "Fragment", s: int, t: int) -> None:
        base = self.new_block(frag.k)
        nf = len(frag.finals)
        eps_src = np.empty(1 + nf, dtype=np.int64)
        eps_dst = np.empty(1 + nf, dtype=np.int64)
        eps_src[0] = s
        eps_dst[0] = base + frag.start
        eps_src[1:] = frag.finals + base
        eps_dst[1:] = t
        self.chunks.append((eps_src, eps_dst, frag.e_s + base, frag.e_lo, frag.e_hi, frag.e_t + base))

    def build(self, e: Expr, s: int, t: int, *, root: bool = True) -> None:
        """Add paths for e from state s to state t.

        Call-free sub-expressions that are large, repeated or character classes are compiled
        once to minimal DFAs (cached per process) and copied in: same language, far fewer
        NFA states for the subset construction to look at."""
        stack = [(e, s, t)]
        top = e if root else None
        max_states = self.max_states
        while stack:
            e, s, t = stack.pop()
            if isinstance(e, Lit):
                cur = s
                for i, b in enumerate(e.value):
                    nxt = t if i == len(e.value) - 1 else self.new()
                    self.e_s.append(cur)
                    self.e_lo.append(b)
                    self.e_hi.append(b)
                    self.e_t.append(nxt)
                    cur = nxt
                if not e.value:
                    self.eps_s.append(s)
                    self.eps_t.append(t)
            elif isinstance(e, ByteRange):
                for lo, hi in e.ranges:
                    self.e_s.append(s)
                    self.e_lo.append(lo)
                    self.e_hi.append(hi)
                    self.e_t.append(t)
            elif isinstance(e, Chars):
                if len(e.ranges) == 1 and e.ranges[0][0] == e.ranges[0][1] and not 0xD800 <= e.ranges[0][0] <= 0xDFFF:
                    stack.append((Lit(chr(e.ranges[0][0]).encode("utf-8")), s, t))
                else:
                    self.embed_fragment(_chars_fragment(e), s, t)
            elif e is not top and isinstance(e, (Seq, Alt, Repeat)) and self._size(e) >= _FRAGMENT_MIN_SIZE \
                    and self._regular(e):
                self.embed_fragment(regular_fragment(e, max_states), s, t)
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
                item = e.item
                frag = None
                if (e.min > 1 or e.max is None or e.max > 1) and not isinstance(item, (Lit, ByteRange)) \
                        and self._regular(item):
                    frag = regular_fragment(item, max_states)
                for _ in range(e.min):
                    nxt = self.new()
                    if frag is not None:
                        self.embed_fragment(frag, cur, nxt)
                    else:
                        stack.append((item, cur, nxt))
                    cur = nxt
                if e.max is None:
                    loop = self.new()
                    self.eps_s.append(cur)
                    self.eps_t.append(loop)
                    back = self.new()
                    if frag is not None:
                        self.embed_fragment(frag, loop, back)
                    else:
                        stack.append((item, loop, back))
                    self.eps_s += (back, loop)
                    self.eps_t += (loop, t)
                else:
                    for _ in range(e.max - e.min):
                        nxt = self.new()
                        self.eps_s.append(cur)
                        self.eps_t.append(t)
                        if frag is not None:
                            self.embed_fragment(frag, cur, nxt)
                        else:
                            stack.append((item, cur, nxt))
                        cur = nxt
                    self.eps_s.append(cur)
                    self.eps_t.append(t)
            elif isinstance(e, Ref):
                self.c_s.append(s)
                self.c_name.append(e.name)
                self.c_t.append(t)
            elif isinstance(e, (And, Not)):
                self.embed_fragment(regular_fragment(e, max_states), s, t)
            else:
                raise GrammarError(f"unexpected IR node {type(e).__name__} (unresolved Regex?)")

    def _chars_raw(self, e: Chars, s: int, t: int) -> None:
        """Plain Thompson construction of a character class (used once per distinct class)."""
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
                    self.e_s.append(cur)
                    self.e_lo.append(blo)
                    self.e_hi.append(bhi)
                    self.e_t.append(nxt)
                    if rest and not fresh:
                        break
                    cur = nxt

    def arrays(self):
        """(eps_src, eps_dst, edge_src, edge_lo, edge_hi, edge_dst) as int64 arrays."""
        parts = [(np.array(self.eps_s, dtype=np.int64), np.array(self.eps_t, dtype=np.int64),
                  np.array(self.e_s, dtype=np.int64), np.array(self.e_lo, dtype=np.int64),
                  np.array(self.e_hi, dtype=np.int64), np.array(self.e_t, dtype=np.int64))]
        parts += self.chunks
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(6))


_FRAGMENT_MIN_SIZE = 24


def _children(e: Expr) -> tuple:
    if isinstance(e, (Seq, Alt, And)):
        return e.items
    if isinstance(e, (Repeat, Not)):
        return (e.item,)
    return ()


@dataclass
class Fragment:
    """A call-free minimal DFA laid out as NFA edges over local states 0..k-1."""

    k: int
    start: int
    finals: np.ndarray   # int64 local states
    e_s: np.ndarray
    e_lo: np.ndarray
    e_hi: np.ndarray
    e_t: np.ndarray


def dfa_fragment(d: "DFA") -> Fragment:
    q, c = np.nonzero(d.trans >= 0)
    r = d.trans[q, c].astype(np.int64)
    cr = d.class_ranges
    counts = np.array([len(x) for x in cr], dtype=np.int64)
    flat_lo = np.array([lo for x in cr for lo, _ in x], dtype=np.int64)
    flat_hi = np.array([hi for x in cr for _, hi in x], dtype=np.int64)
    offs = np.zeros(len(cr) + 1, dtype=np.int64)
    offs[1:] = np.cumsum(counts)
    reps = counts[c]
    idx = np.repeat(offs[c], reps) + (np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps))
    return Fragment(d.n_states, d.start, np.nonzero(d.final)[0].astype(np.int64),
                    np.repeat(q.astype(np.int64), reps), flat_lo[idx], flat_hi[idx], np.repeat(r, reps))


@lru_cache(maxsize=4096)
def _chars_fragment(e: Chars) -> Fragment:
    nfa = NFA(1 << 20)
    s, t = nfa.new(), nfa.new()
    nfa._chars_raw(e, s, t)
    return dfa_fragment(minimize(determinize(nfa, s, t, max_states=1 << 20)))


@lru_cache(maxsize=4096)
def regular_fragment(e: Expr, max_states: int) -> Fragment:
    """Fragment of a call-free expression's minimal DFA (cached per process)."""
    return dfa_fragment(regular_dfa(e, max_states))


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


def byte_classes_of(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """Coarsest partition of 0..255 that no edge [lo, hi] splits."""
    cuts = np.zeros(257, dtype=bool)
    cuts[0] = True
    cuts[lo] = True
    cuts[hi + 1] = True
    # Bytes used by no edge at all form one class with the gaps; that's fine (all dead).
    cls = np.cumsum(cuts[:256]).astype(np.int32) - 1
    n = int(cls[-1]) + 1
    ranges: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    bounds = np.nonzero(cuts[1:256])[0] + 1
    starts = [0] + bounds.tolist()
    ends = bounds.tolist() + [256]
    for a, b in zip(starts, ends):
        ranges[int(cls[a])].append((a, b - 1))
    return cls, ranges


def byte_classes(nfa: NFA) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    a = nfa.arrays()
    return byte_classes_of(a[3], a[4])


def determinize(nfa: NFA, start: int, final: int, *, max_states: int) -> DFA:
    """Subset construction (numba kernel). DFA states are sets of *important* NFA states (those
    with byte or call edges, or the final state): epsilon-only states never need to be
    remembered. Call targets are extra alphabet symbols (sorted by rule name)."""
    from structgen.automata import fsm_kernels as FK

    eps_s, eps_t, e_s, e_lo, e_hi, e_t = nfa.arrays()
    cls, ranges = byte_classes_of(e_lo, e_hi)
    n_cls = len(ranges)
    n = nfa.n
    order = np.argsort(eps_s, kind="stable")
    eps_dst = eps_t[order]
    eps_ptr = np.zeros(n + 1, dtype=np.int64)
    eps_ptr[1:] = np.cumsum(np.bincount(eps_s, minlength=n))
    names = sorted(set(nfa.c_name))
    col = {name: n_cls + i for i, name in enumerate(names)}
    # expand byte edges to one move per byte class
    c0 = cls[e_lo].astype(np.int64)
    reps = cls[e_hi].astype(np.int64) - c0 + 1
    tot = int(reps.sum())
    m_src = np.repeat(e_s, reps)
    m_sym = np.repeat(c0, reps) + (np.arange(tot, dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps))
    m_dst = np.repeat(e_t, reps)
    if names:
        m_src = np.concatenate([m_src, np.array(nfa.c_s, dtype=np.int64)])
        m_sym = np.concatenate([m_sym, np.array([col[x] for x in nfa.c_name], dtype=np.int64)])
        m_dst = np.concatenate([m_dst, np.array(nfa.c_t, dtype=np.int64)])
    order = np.argsort(m_src, kind="stable")
    m_src, m_sym, m_dst = m_src[order], m_sym[order], m_dst[order]
    mv_ptr = np.zeros(n + 1, dtype=np.int64)
    mv_ptr[1:] = np.cumsum(np.bincount(m_src, minlength=n))
    important = np.zeros(n, dtype=np.bool_)
    important[m_src] = True
    important[final] = True
    trans_full, fin, n_dfa = FK.subset_construction(
        n, eps_ptr, np.ascontiguousarray(eps_dst), mv_ptr, np.ascontiguousarray(m_sym),
        np.ascontiguousarray(m_dst), important, start, final, n_cls + len(names), max_states)
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
