"""Byte-level automata for one rule: IR -> NFA (with call edges) -> minimal DFA.

A rule body becomes an NFA over bytes whose extra "call" edges stand for references to other
rules (the pushdown part). Subset construction treats each call target as one more alphabet
symbol, so every rule ends up a deterministic automaton over (byte classes + calls). `And` and
`Not` are built here by product and complement of sub-DFAs (they must be regular: no calls).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from structgen.errors import GrammarError, LimitExceeded
from structgen.grammar.passes import fold_postorder, repeat_copies_of
from structgen.grammar.ir import ANY_CHAR, Alt, And, ByteRange, Chars, Expr, Lit, Not, Ref, Repeat, Seq


@lru_cache(maxsize=65536)
def utf8_byte_sequences(lo: int, hi: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    from structgen.regex.utf8 import utf8_sequences

    return tuple(tuple(seq) for seq in utf8_sequences(lo, hi))


class NFA:
    """Thompson NFA: epsilon edges, byte-range edges and call edges (rule name).

    Edges live in flat lists plus numpy chunks (embedded sub-automata), so that copying a
    cached sub-automaton costs a few array operations rather than a Python loop."""

    def __init__(self, max_states: int, dfa_max_states: int | None = None):
        self.n = 0
        self.max_states = max_states
        # state budget of the DFAs built for embedded sub-expressions
        self.dfa_max_states = dfa_max_states if dfa_max_states is not None else max(1, max_states // 8)
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
        self._n_embeds = 0
        # (has Ref, size) per node id; shared with the NFAs of nested sub-expressions built
        # while this one is being built (the nodes stay alive meanwhile, so ids are stable)
        outer = _ctx().info[-1] if _ctx().info else None
        self._info: dict[int, tuple[bool, int, int]] = outer[0] if outer else {}
        self._frag_memo: dict[int, Fragment] = outer[1] if outer else {}
        # structural hash -> number of parent nodes referring to it (repetition inside the build)
        self._uses: dict[int, int] = outer[2] if outer else {}
        self.pending: dict[int, tuple] = {}
        self._tail: dict[tuple[int, int], int] = {}  # (node id, continuation state) -> entry state
        self._built: set[int] = set()  # shared nodes already expanded once in this NFA

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
        """(has a Ref, expanded size, structural hash, node) for every node of root, memoized by
        identity (IR hashes are not cached by the dataclasses: hashing big sub-trees repeatedly was
        a large share of compile time; the node is kept so that its id stays its own). The size
        counts a bounded repetition's copies: it estimates the Thompson NFA."""
        uses = self._uses

        def analyze(e: Expr, kids: list[tuple]) -> tuple:
            if not kids:
                return (isinstance(e, Ref), _LEAF_SIZE.get(type(e), 1) + (len(e.value) if isinstance(e, Lit) else 0),
                        hash(e), e)
            has_ref = any(hr for hr, _, _, _ in kids)
            size = 1 + sum(sz for _, sz, _, _ in kids)
            hs = [h for _, _, h, _ in kids]
            for h in hs:
                uses[h] = uses.get(h, 0) + 1
            extra = None
            if isinstance(e, Repeat):
                extra = (e.min, e.max)
                size = 1 + (size - 1) * repeat_copies_of(e)
            return (has_ref, size, hash((type(e).__name__, extra, tuple(hs))), e)

        fold_postorder(root, self._info, analyze)

    def _hash(self, e: Expr) -> int:
        got = self._info.get(id(e))
        if got is None:
            self._analyze(e)
            got = self._info[id(e)]
        return got[2]

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

    def _fragment_worth(self, e: Expr) -> bool:
        """Is a minimal DFA of sub-expression e worth building (and caching)? Only when e occurs
        more than once in this build, is cached, or was met by an earlier build of this process:
        a sub-expression used once would otherwise be determinized twice (alone, then again
        inside its parent), at every level of nesting."""
        h = self._hash(e)
        if self._uses.get(h, 0) > 1 or id(e) in self._frag_memo or (h, self.dfa_max_states) in _FRAG_CACHE:
            return True
        n = _SEEN.get(h, 0)
        if len(_SEEN) >= _SEEN_SIZE:
            _SEEN.clear()
        _SEEN[h] = n + 1
        return n > 0

    def embed_fragment(self, frag: "Fragment", s: int, t: int) -> None:
        """Copy a fragment between s and t (materialized in bulk by `arrays`)."""
        base = self.new_block(frag.k)
        self._n_embeds += 1
        if not self._n_embeds & 1023:
            check_deadline()
        for q, name, r in frag.calls:
            self.c_s.append(base + q)
            self.c_name.append(name)
            self.c_t.append(base + r)
        got = self.pending.get(id(frag))
        if got is None:
            self.pending[id(frag)] = (frag, [base], [s], [t])
        else:
            got[1].append(base)
            got[2].append(s)
            got[3].append(t)

    def fragment_of(self, e: Expr) -> "Fragment":
        """Cached fragment of a call-free sub-expression (memoized by identity per compile, then
        by value across compiles)."""
        memo = self._frag_memo
        got = memo.get(id(e))
        if got is None:
            if isinstance(e, Chars):
                got = _chars_fragment(e)
            elif isinstance(e, (And, Not)):
                got = regular_fragment(e, self.dfa_max_states)
            else:
                key = (self._hash(e), self.dfa_max_states)
                with _FRAG_LOCK:
                    bucket = _FRAG_CACHE.get(key)
                    if bucket is not None:
                        _FRAG_CACHE.move_to_end(key)
                        bucket = list(bucket)
                if bucket is not None:
                    for e2, f2 in bucket:
                        if e2 is e or e2 == e:
                            got = f2
                            break
                if got is None:
                    got = dfa_fragment(expr_to_dfa(e, max_states=self.dfa_max_states))
                    with _FRAG_LOCK:
                        _FRAG_CACHE.setdefault(key, []).append((e, got))
                        _FRAG_CACHE.move_to_end(key)
                        while len(_FRAG_CACHE) > _FRAG_CACHE_SIZE:
                            _FRAG_CACHE.popitem(last=False)
            memo[id(e)] = got
        return got

    def build(self, e: Expr, s: int, t: int, *, root: bool = True) -> None:
        """Add paths for e from state s to state t.

        Call-free sub-expressions that are large, repeated or character classes are compiled
        once to minimal DFAs (cached per process) and copied in: same language, far fewer
        NFA states for the subset construction to look at."""
        stack = [(e, s, t, False)]
        top = e if root else None
        tail = self._tail
        while stack:
            e, s, t, raw = stack.pop()
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
                    stack.append((Lit(chr(e.ranges[0][0]).encode("utf-8")), s, t, False))
                else:
                    self.embed_fragment(self.fragment_of(e), s, t)
            elif (not raw and e is not top and isinstance(e, (Seq, Alt, Repeat))
                  and self._size(e) >= _FRAGMENT_MIN_SIZE and self._fragment_worth(e)):
                # A shared sub-expression: built once per continuation state t (later uses with
                # the same t -- rule bodies in tail position, as the schema front end writes
                # them -- just jump to its private entry state), otherwise a minimal DFA copy.
                k = id(e)
                entry = tail.get((k, t))
                if entry is not None:
                    self.eps_s.append(s)
                    self.eps_t.append(entry)
                elif (k in self._frag_memo or k in self._built or self._uses.get(self._hash(e), 0) < 2
                      or (self._hash(e), self.dfa_max_states) in _FRAG_CACHE):
                    self.embed_fragment(self.fragment_of(e), s, t)
                else:
                    self._built.add(k)
                    entry = self.new()
                    tail[(k, t)] = entry
                    self.eps_s.append(s)
                    self.eps_t.append(entry)
                    stack.append((e, entry, t, True))
            elif isinstance(e, Seq):
                cur = s
                for i, x in enumerate(e.items):
                    nxt = t if i == len(e.items) - 1 else self.new()
                    stack.append((x, cur, nxt, False))
                    cur = nxt
            elif isinstance(e, Alt):
                for x in e.items:
                    stack.append((x, s, t, False))
            elif isinstance(e, Repeat):
                cur = s
                item = e.item
                frag = None
                copies = e.min + (1 if e.max is None else e.max - e.min)
                if not isinstance(item, (Lit, ByteRange, Ref)) and (
                        copies > 1 or isinstance(item, Chars)
                        or (self._size(item) >= _FRAGMENT_MIN_SIZE and self._fragment_worth(item))):
                    frag = self.fragment_of(item)
                for _ in range(e.min):
                    nxt = self.new()
                    if frag is not None:
                        self.embed_fragment(frag, cur, nxt)
                    else:
                        stack.append((item, cur, nxt, False))
                    cur = nxt
                if e.max is None:
                    loop = self.new()
                    self.eps_s.append(cur)
                    self.eps_t.append(loop)
                    back = self.new()
                    if frag is not None:
                        self.embed_fragment(frag, loop, back)
                    else:
                        stack.append((item, loop, back, False))
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
                            stack.append((item, cur, nxt, False))
                        cur = nxt
                    self.eps_s.append(cur)
                    self.eps_t.append(t)
            elif isinstance(e, Ref):
                self.c_s.append(s)
                self.c_name.append(e.name)
                self.c_t.append(t)
            elif isinstance(e, (And, Not)):
                self.embed_fragment(self.fragment_of(e), s, t)
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
        for frag, bases, ss, ts in self.pending.values():
            b = np.array(bases, dtype=np.int64)[:, None]
            m = len(bases)
            nf = len(frag.finals)
            parts.append((np.concatenate([np.array(ss, dtype=np.int64), (frag.finals[None, :] + b).ravel()]),
                           np.concatenate([b[:, 0] + frag.start, np.repeat(np.array(ts, dtype=np.int64), nf)]),
                           (frag.e_s[None, :] + b).ravel(), np.tile(frag.e_lo, m), np.tile(frag.e_hi, m),
                           (frag.e_t[None, :] + b).ravel()))
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(6))


_FRAGMENT_MIN_SIZE = 24
_LEAF_SIZE = {Chars: 2}  # a character class is a fragment copy (several states)
# Process-wide cache of sub-expression fragments: (structural hash, DFA budget) -> [(expr, fragment)]
_FRAG_CACHE: "OrderedDict[tuple, list]" = OrderedDict()
_FRAG_CACHE_SIZE = 4096
_FRAG_LOCK = threading.Lock()
# structural hashes of sub-expressions met by earlier builds (the second meeting builds a fragment)
_SEEN: dict[int, int] = {}
_SEEN_SIZE = 1 << 17
_TLS = threading.local()


def _ctx():
    """Per-thread construction context: `info` (stack of (node info, fragment memo) shared by the
    nested builds of one top-level expr_to_dfa) and `deadline` (stack of time limits)."""
    c = _TLS
    if not hasattr(c, "info"):
        c.info = []
        c.deadline = []
    return c


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
    calls: tuple = ()    # (local state, rule name, local target)


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
    cq, cj, cr_ = d.call_edges()
    names = d.call_names
    calls = tuple((qq, names[jj], rr) for qq, jj, rr in zip(cq.tolist(), cj.tolist(), cr_.tolist()))
    return Fragment(d.n_states, d.start, np.nonzero(d.final)[0].astype(np.int64),
                    np.repeat(q.astype(np.int64), reps), flat_lo[idx], flat_hi[idx], np.repeat(r, reps), calls)


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


@dataclass(eq=False)
class DFA:
    """Deterministic automaton over byte classes plus call symbols.

    trans[q, c] for byte class c < n_classes; call_trans[q, j] = target state after a call to
    rule call_names[j] (-1: no such call), names sorted.
    """

    n_states: int
    start: int
    trans: np.ndarray            # int32 [n_states, n_classes], -1 = dead
    final: np.ndarray            # bool [n_states]
    call_names: tuple[str, ...]
    call_trans: np.ndarray       # int32 [n_states, len(call_names)]
    byte_class: np.ndarray       # int32 [256]
    class_ranges: list[list[tuple[int, int]]]

    @property
    def n_classes(self) -> int:
        return int(self.trans.shape[1])

    @property
    def has_calls(self) -> bool:
        return bool(self.call_names) and bool((self.call_trans >= 0).any())

    def call_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(state, call column, target) of every call, by state then column (name order)."""
        q, j = np.nonzero(self.call_trans >= 0)
        return q, j, self.call_trans[q, j]

    @property
    def calls(self) -> list[list[tuple[str, int]]]:
        """calls[q] = [(rule name, target state), ...] (a readable view; not used on hot paths)."""
        out: list[list[tuple[str, int]]] = [[] for _ in range(self.n_states)]
        names = self.call_names
        for q, j, r in zip(*(a.tolist() for a in self.call_edges())):
            out[q].append((names[j], r))
        return out


def _no_call_trans(n: int) -> np.ndarray:
    return np.empty((n, 0), dtype=np.int32)


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
    check_deadline()
    return DFA(n_dfa, 0, trans_full[:, :n_cls], fin, tuple(names), trans_full[:, n_cls:], cls, ranges)


def minimize(d: DFA, productive: frozenset[str] | None = None) -> DFA:
    """Trim states that cannot reach a final state, then merge equivalent states (Hopcroft).
    With `productive`, calls to other rules are dropped first.

    The result is canonical: states are numbered in BFS order from the start state (0), and byte
    classes are the coarsest for the minimal automaton, numbered by their first byte."""
    from structgen.automata import fsm_kernels as FK

    names = d.call_names
    ctrans = d.call_trans
    if names and productive is not None:
        keep_cols = [j for j, name in enumerate(names) if name in productive]
        if len(keep_cols) < len(names):
            names = tuple(names[j] for j in keep_cols)
            ctrans = ctrans[:, keep_cols]
    nc = d.n_classes
    full = np.ascontiguousarray(np.concatenate([d.trans, ctrans], axis=1) if names else d.trans,
                                dtype=np.int32)
    trans_full, fin_b, m = FK.minimize_kernel(full, np.ascontiguousarray(d.final, dtype=np.bool_), d.start)
    if m == 0:
        # empty language: a single dead start state
        return DFA(1, 0, np.full((1, nc), -1, np.int32), np.zeros(1, bool), (), _no_call_trans(1),
                   d.byte_class, d.class_ranges)
    trans = trans_full[:, :nc]
    if names:
        ctrans = trans_full[:, nc:]
        used = (ctrans >= 0).any(axis=0)
        if not used.all():  # a call edge of a trimmed state only
            names = tuple(n for n, u in zip(names, used.tolist()) if u)
            ctrans = ctrans[:, used]
        ctrans = np.ascontiguousarray(ctrans)
    else:
        ctrans = _no_call_trans(m)
    # coarsest byte classes for the minimal automaton: merge classes with identical columns
    # (the partition then depends only on the language, not on how the NFA was assembled)
    byte_class, class_ranges = d.byte_class, d.class_ranges
    if nc > 1:
        cols = np.ascontiguousarray(trans.T)
        seen_cols: dict[bytes, int] = {}
        cmap_l = [seen_cols.setdefault(cols[c].tobytes(), len(seen_cols)) for c in range(nc)]
        if len(seen_cols) < nc:
            # merged classes are numbered by first appearance, so byte order is kept
            cmap = np.array(cmap_l, dtype=np.int64)
            k = len(seen_cols)
            first = np.full(k, -1, dtype=np.int64)
            for c in range(nc - 1, -1, -1):
                first[cmap_l[c]] = c
            trans = trans[:, first]
            byte_class = cmap[d.byte_class].astype(np.int32)
            merged: list[list[tuple[int, int]]] = [[] for _ in range(k)]
            for c_old, rs in enumerate(d.class_ranges):
                merged[cmap_l[c_old]].extend(rs)
            class_ranges = [_merge_ranges(rs) if len(rs) > 1 else rs for rs in merged]
    return DFA(m, 0, np.ascontiguousarray(trans), fin_b, names, ctrans, byte_class, class_ranges)


def _merge_ranges(rs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(rs):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


# Wall-clock deadline (time.perf_counter() value) for the automata work of the current compile;
# set by `compile_deadline`, checked between construction steps (each step is bounded by the
# state budgets), so an oversized grammar fails with LimitExceeded in bounded time.


class compile_deadline:
    """Context manager: automata construction inside raises LimitExceeded after `seconds`."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds

    def __enter__(self):
        import time

        warm_kernels()  # JIT compilation / cache loading must not count against the limit
        d = float("inf") if self.seconds is None else time.perf_counter() + self.seconds
        stack = _ctx().deadline
        if stack:
            d = min(d, stack[-1])
        stack.append(d)
        return self

    def __exit__(self, *exc):
        _ctx().deadline.pop()
        return False


_WARM: list[bool] = []


def warm_kernels() -> None:
    """Compile (or load from numba's cache) the construction kernels once per process."""
    if _WARM:
        return
    from structgen.grammar.ir import Lit as _Lit

    d = expr_to_dfa(Alt((_Lit(b"ab"), Repeat(Chars(((0x61, 0x62), (0x100, 0x200))), 0, None), Ref("x"))), max_states=64)
    product(d, d, 64, lambda a, b: a and not b)
    _WARM.append(True)


def check_deadline() -> None:
    stack = _ctx().deadline
    if stack:
        import time

        if time.perf_counter() > stack[-1]:
            raise LimitExceeded("grammar compilation exceeded its time limit; simplify the constraint "
                                "or raise structgen.automata.tables.DEFAULT_MAX_COMPILE_S")


def structural_hash(e: Expr, memo: dict[int, tuple[int, Expr]] | None = None) -> int:
    """A hash of e's structure computed in one pass over its distinct nodes (hashing the
    dataclasses directly re-walks shared sub-trees at every use). `memo` (node id -> (hash,
    node)) can be shared between expressions that share sub-trees."""
    if memo is None:
        memo = {}

    def node_hash(x: Expr, kids: list[tuple[int, Expr]]) -> tuple[int, Expr]:
        if not kids:
            return (hash(x), x)
        extra = (x.min, x.max) if isinstance(x, Repeat) else None
        return (hash((type(x).__name__, extra, tuple(h for h, _ in kids))), x)

    fold_postorder(e, memo, node_hash)
    return memo[id(e)][0]


def expr_to_dfa(e: Expr, *, max_states: int, productive: frozenset[str] | None = None) -> DFA:
    check_deadline()
    nfa = NFA(max_states * 8, max_states)
    s, t = nfa.new(), nfa.new()
    info_stack = _ctx().info
    info_stack.append((nfa._info, nfa._frag_memo, nfa._uses))
    try:
        nfa.build(e, s, t)
    finally:
        info_stack.pop()
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
    if d.has_calls:
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
    table = tuple(bool(combine(x, y)) for x in (False, True) for y in (False, True))
    mode = {(False, False, False, True): 0, (False, False, True, False): 1}.get(table)
    if mode is not None:
        from structgen.automata import fsm_kernels as FK

        trans, fin_a, n_p = FK.product_kernel(
            np.ascontiguousarray(a.trans), np.ascontiguousarray(a.final, dtype=np.bool_), a.start,
            np.ascontiguousarray(b.trans), np.ascontiguousarray(b.final, dtype=np.bool_), b.start,
            np.array(ac, dtype=np.int64), np.array(bc, dtype=np.int64), mode, max_states)
        if n_p < 0:
            raise LimitExceeded(f"intersection/complement automaton exceeds {max_states} states")
        return minimize(DFA(n_p, 0, trans, fin_a, (), _no_call_trans(n_p), cls, ranges))
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
            (), _no_call_trans(len(todo)), cls, ranges)
    return minimize(d)
