"""CompiledGrammar: a grammar's pushdown tables bound to one vocabulary, with its mask caches.

Masks are computed per *stack-top state* (XGrammar's adaptive cache idea, computed lazily by a
trie walk in numba): the tokens a state accepts inside its own frame are context-independent
and cached; tokens that need the frame to end first ("exits") are re-checked against the real
stack at run time. Grammars without calls (regexes, non-recursive schemas) have no exits:
a mask is one cached row.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from structgen.automata import kernels as K
from structgen.automata.slices import contains_slice, json_string_slice
from structgen.automata.tables import PDATables, build_tables
from structgen.errors import LimitExceeded
from structgen.grammar.ir import Grammar, Regex
from structgen.grammar.passes import prepare
from structgen.vocab.vocabulary import Vocabulary

DEFAULT_MAX_STATES = 200_000
DEFAULT_FUEL = 4096
DEFAULT_MASK_CACHE_BYTES = 256 << 20
MAX_EXITS = 1024  # beyond this, a state's context-dependent tokens are found by one full walk


@dataclass
class StateMask:
    accept: np.ndarray         # uint32[W] (incomplete when exits is None: not used then)
    exits: np.ndarray | None   # int32[k] trie nodes reachable only after the frame ends; None = too many
    contains_slice: bool = False


class CompiledGrammar:
    """A constraint compiled for one vocabulary. Thread-safe; create many matchers from it."""

    def __init__(self, tables: PDATables, vocab: Vocabulary, *, fuel: int = DEFAULT_FUEL,
                 mask_cache_bytes: int = DEFAULT_MASK_CACHE_BYTES, source: str = "", use_slices: bool = True):
        self.tables = tables
        self.vocab = vocab
        self.fuel = int(fuel)
        self.source = source
        self.warnings: list[str] = []
        t = tables
        self._trans = np.ascontiguousarray(t.trans)
        self._final = np.ascontiguousarray(t.final)
        self._start_ok, self._nullable = _start_sets(t)
        self._follow = _follow_sets(t, self._start_ok, self._nullable)
        self._all_follow = np.ones(t.n_classes, dtype=np.bool_)
        trie = vocab.trie
        self._trie = trie
        self._W = vocab.n_words
        self._max_depth = int(trie.depth.max()) if trie.n_nodes else 0
        self._lock = threading.Lock()
        self._state_cache: OrderedDict[int, StateMask] = OrderedDict()
        self._max_cached = max(64, mask_cache_bytes // max(1, self._W * 4))
        self._cfg_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._empty_skip = np.zeros(0, dtype=np.int8)
        self._dfa_only = not t.has_calls
        # Python lists for the byte-by-byte fast path of call-free grammars
        self._trans_list = t.trans.tolist() if self._dfa_only else None
        self._cls_list = t.byte_class.tolist()
        self._eos = vocab.eos_array
        self._root_children = _root_children(trie)
        self._scratch = threading.local()
        self.walk_stats = np.zeros(4, dtype=np.int64)  # multi-configuration steps, of which memoized
        self._slice = json_string_slice(vocab) if use_slices else None

    # ------------------------------------------------------------------ info
    @property
    def n_states(self) -> int:
        return self.tables.n_states

    def matcher(self):
        from structgen.matcher import Matcher

        return Matcher(self)

    # ------------------------------------------------------------------ kernels glue
    def _kargs(self):
        t = self.tables
        return (self._trans, self._final, t.call_ptr, t.call_target, t.call_ret, self._start_ok, self._nullable,
                t.rule_of, self._follow)

    def precompute(self, budget_s: float) -> int:
        """Fill the per-state mask cache ahead of time, within a time budget. Returns states done."""
        import time

        deadline = time.perf_counter() + budget_s
        done = 0
        for s in range(self.tables.n_states):
            if time.perf_counter() > deadline or len(self._state_cache) >= self._max_cached:
                break
            self.state_mask(s)
            done += 1
        return done

    def _wargs(self):
        t = self.tables
        return (self._trans, t.byte_class, self._final, t.call_ptr, t.call_target, t.call_ret,
                self._start_ok, self._nullable, t.rule_of, self._follow)

    def state_mask(self, s: int) -> StateMask:
        """Context-independent accepted tokens of stack-top state s, plus its exit nodes."""
        sm = self._state_cache.get(s)
        if sm is not None:
            self._state_cache.move_to_end(s)
            return sm
        t = self.tables
        trie = self._trie
        root_only = not t.rule_called[t.rule_of[s]]
        init_s = np.array([s], dtype=np.int32)
        init_p = np.array([K.BOTTOM if root_only else K.FRAME], dtype=np.int32)
        sl = self._slice
        if sl is not None and contains_slice(self._trans, t.byte_class, s, sl.trans, sl.start):
            mask = sl.token_mask.copy()
            skip = sl.skip_node
        else:
            mask = np.zeros(self._W, dtype=np.uint32)
            skip = self._empty_skip
        sc = self._get_scratch()
        n_exits, flags = self._walk(init_s, init_p, ([], []), self._root_children, mask, sc.exits, skip,
                                    self._follow[t.rule_of[s]])
        sm_exits = None if flags & K.FLAG_EXITS_FULL else sc.exits[:n_exits].copy()
        if flags & K.FLAG_FUEL:
            raise LimitExceeded(f"mask computation for state {s} exceeded its fuel ({self.fuel}); "
                                "the grammar is too ambiguous")
        sm = StateMask(mask, sm_exits, skip is not self._empty_skip)
        with self._lock:
            self._state_cache[s] = sm
            while len(self._state_cache) > self._max_cached:
                self._state_cache.popitem(last=False)
        return sm

    def configs_mask(self, configs: tuple) -> np.ndarray:
        """Exact mask (uint32[W], EOS included) for a configuration set ((state, stack), ...)."""
        hit = self._cfg_cache.get(configs)
        if hit is not None:
            self._cfg_cache.move_to_end(configs)
            return hit
        mask = self._tokens_mask(configs)
        if self._eos.size:
            self._set_eos(mask, configs)
        with self._lock:
            self._cfg_cache[configs] = mask
            if len(self._cfg_cache) > 4096:
                self._cfg_cache.popitem(last=False)
        return mask

    def _tokens_mask(self, configs: tuple) -> np.ndarray:
        """Allowed text tokens (a fresh array unless it is a cached row and no EOS will be set)."""
        sms = [self.state_mask(s) for s, _ in configs]
        if len(configs) == 1 and sms[0].exits is not None and (not configs[0][1] or len(sms[0].exits) == 0):
            return sms[0].accept.copy() if self._eos.size else sms[0].accept
        if any(sm.exits is None for sm in sms):
            return self._full_walk(configs, sms)
        mask = np.zeros(self._W, dtype=np.uint32)
        parents: set[tuple] = set()
        for sm, (s, stack) in zip(sms, configs):
            K.or_rows(mask, sm.accept)
            if stack and len(sm.exits):
                key = (s, stack[-1], stack[:-1])
                if key not in parents:
                    parents.add(key)
                    self._walk_exits(mask, sm.exits, stack)
        return mask

    def _set_eos(self, mask: np.ndarray, configs) -> None:
        if self.can_end(configs):
            for e in self._eos:
                mask[e >> 5] |= np.uint32(1 << (int(e) & 31))

    def _load(self, configs, extra: int = 1 << 12):
        """Put configurations into a fresh arena.

        Returns (cfg_s, cfg_p, arena, n): arena = (ret, par, hash) arrays with room for `extra`
        more nodes, n = nodes used by the loaded stacks.
        """
        cs, cp, (ret, par) = _stacks_to_arena(configs)
        n = len(ret)
        ar = np.empty(n + extra, dtype=np.int32)
        ap = np.empty(n + extra, dtype=np.int32)
        ar[:n] = ret
        ap[:n] = par
        ah = np.full(_pow2(2 * (n + extra) + 2), -1, dtype=np.int32)
        return cs, cp, (ar, ap, ah), n

    def _get_scratch(self):
        sc = self._scratch
        if not hasattr(sc, "lvl"):
            levels = self._max_depth + 2
            sc.lvl = np.zeros((levels, 3), dtype=np.int64)
            cap = levels + 2
            sc.cfg_s = np.empty(cap, dtype=np.int32)
            sc.cfg_p = np.empty(cap, dtype=np.int32)
            sc.work_s = np.empty(4096, dtype=np.int32)
            sc.work_p = np.empty(4096, dtype=np.int32)
            sc.no_hash = np.full(16, -1, dtype=np.int32)
            n_sets = 4096
            sc.memo = np.empty(2 * n_sets, dtype=np.int32)
            sc.sets = np.empty((n_sets, 2), dtype=np.int64)
            sc.pool_s = np.empty(1 << 18, dtype=np.int32)
            sc.pool_p = np.empty(1 << 18, dtype=np.int32)
            sc.dtab = np.empty((n_sets, self.tables.n_classes), dtype=np.int32)
            sc.dflag = np.empty((n_sets, self.tables.n_classes), dtype=np.int8)
            sc.tmp_s = np.empty(4096, dtype=np.int32)
            sc.tmp_p = np.empty(4096, dtype=np.int32)
            sc.exits = np.empty(MAX_EXITS, dtype=np.int32)
        return sc

    def _walk(self, init_s, init_p, nodes, roots, mask, exits, skip, follow_row):
        """Run the trie walk; grow the stack arena and retry if it fills up."""
        trie = self._trie
        sc = self._get_scratch()
        n = len(nodes[0])
        size = 1 << 12
        while True:
            cap = size + n
            ar = np.empty(cap, dtype=np.int32)
            ap = np.empty(cap, dtype=np.int32)
            ar[:n] = nodes[0]
            ap[:n] = nodes[1]
            ah = np.full(_pow2(2 * cap + 2), -1, dtype=np.int32) if self.tables.has_calls else sc.no_hash
            n_exits, flags = K.walk_trie(*self._wargs(), follow_row,
                                         trie.byte, trie.subtree_end, trie.tok_start, trie.tok_ids,
                                         init_s, init_p, len(init_s), roots,
                                         ar, ap, ah, n, mask, exits, self.fuel, skip,
                                         sc.lvl, sc.cfg_s, sc.cfg_p, sc.work_s, sc.work_p,
                                         sc.memo, sc.sets, sc.pool_s, sc.pool_p, sc.dtab, sc.dflag, sc.tmp_s, sc.tmp_p,
                                         self.walk_stats)
            if not flags & K.FLAG_FUEL or size >= 1 << 20 or not self.tables.has_calls:
                return n_exits, flags
            size <<= 3

    def _full_walk(self, configs, sms) -> np.ndarray:
        """One trie walk from the real stacks (no precomputed rows): for exit-heavy states."""
        trie = self._trie
        sc = self._get_scratch()
        sl = self._slice
        if sl is not None and any(sm.contains_slice for sm in sms):
            mask, skip = sl.token_mask.copy(), sl.skip_node
        else:
            mask, skip = np.zeros(self._W, dtype=np.uint32), self._empty_skip
        init_s, init_p, nodes = _stacks_to_arena(configs)
        _, flags = self._walk(init_s, init_p, nodes, self._root_children, mask, sc.exits[:0], skip, self._all_follow)
        if flags & K.FLAG_FUEL:
            raise LimitExceeded("mask computation exceeded its fuel; the grammar is too ambiguous")
        return mask

    def _walk_exits(self, mask, exits, stack) -> None:
        """Tokens under the exit nodes, continued by the parent frame of the real stack."""
        trie = self._trie
        sc = self._get_scratch()
        init_s, init_p, nodes = _stacks_to_arena(((stack[-1], stack[:-1]),))
        _, flags = self._walk(init_s, init_p, nodes, exits, mask, sc.exits[:0], self._empty_skip, self._all_follow)
        if flags & K.FLAG_FUEL:
            raise LimitExceeded("mask computation exceeded its fuel; the grammar is too ambiguous")

    def can_end(self, configs) -> bool:
        if self._dfa_only:
            return bool(self._final[configs[0][0]])
        cs, cp, arena, n = self._load(configs, extra=256)
        flags = K.end_flags(*self._kargs(), cs, cp, len(cs), *arena, n, self.fuel)
        return bool(flags & K.FLAG_END)

    def advance(self, configs, data: bytes):
        """Configurations after consuming `data` (empty tuple = rejected)."""
        if self._dfa_only:
            s = configs[0][0]
            tr, cl = self._trans_list, self._cls_list
            for b in data:
                s = tr[s][cl[b]]
                if s < 0:
                    return ()
            return ((s, ()),)
        # Chunks keep the arena small: each chunk re-loads (and so compacts) the stacks.
        for i in range(0, len(data), 64):
            configs = self._advance_chunk(configs, data[i:i + 64])
            if not configs:
                return ()
        return configs

    def _advance_chunk(self, configs, data: bytes):
        extra = 1024 + 64 * len(data)
        while True:
            cs, cp, arena, n = self._load(configs, extra=extra)
            out_s, out_p, n_out, arena_n, flags = K.consume_bytes(
                self._trans, self.tables.byte_class, *self._kargs()[1:], cs, cp, len(cs),
                np.frombuffer(data, dtype=np.uint8), *arena, n, self.fuel)
            if not flags & K.FLAG_FUEL:
                break
            if extra >= 1 << 20:
                raise LimitExceeded("advancing the parser exceeded its fuel; the grammar is too ambiguous")
            extra *= 16
        ar, ap = arena[0], arena[1]
        out = set()
        for s, p in zip(out_s.tolist(), out_p.tolist()):
            stack = []
            while p >= 0:
                stack.append(int(ar[p]))
                p = int(ap[p])
            out.add((s, tuple(reversed(stack))))
        return tuple(sorted(out))

    def class_representatives(self) -> tuple[list[int], list[int]]:
        """One byte per byte class, and how many bytes each class holds."""
        got = getattr(self, "_class_reps", None)
        if got is None:
            cls = self.tables.byte_class
            counts = np.bincount(cls, minlength=self.tables.n_classes)
            first = [int(np.flatnonzero(cls == c)[0]) for c in range(self.tables.n_classes)]
            got = self._class_reps = (first, counts.tolist())
        return got

    def initial_configs(self) -> tuple:
        return ((self.tables.start, ()),)


def _stacks_to_arena(configs):
    """(state, stack) configurations -> (states, pointers, (ret list, par list)) with shared prefixes."""
    ret: list[int] = []
    par: list[int] = []
    index: dict[tuple, int] = {}
    cs, cp = [], []
    for s, stack in configs:
        p = K.BOTTOM
        for i in range(len(stack)):
            key = stack[: i + 1]
            q = index.get(key)
            if q is None:
                q = len(ret)
                ret.append(stack[i])
                par.append(p)
                index[key] = q
            p = q
        cs.append(s)
        cp.append(p)
    return np.array(cs, dtype=np.int32), np.array(cp, dtype=np.int32), (ret, par)


def _pow2(n: int) -> int:
    return 1 << max(4, (n - 1).bit_length())


def _root_children(trie) -> np.ndarray:
    out = []
    n = 1
    while n < trie.n_nodes:
        out.append(n)
        n = int(trie.subtree_end[n])
    return np.array(out, dtype=np.int32)


def _follow_sets(t: PDATables, start_ok: np.ndarray, nullable: np.ndarray) -> np.ndarray:
    """follow[r, c]: byte class c can come right after rule r ends (in some calling context)."""
    n_rules = len(t.rule_names)
    follow = np.zeros((n_rules, t.n_classes), dtype=np.bool_)
    if not t.has_calls:
        return follow
    callee = t.rule_of[t.call_target]
    ret = t.call_ret
    while True:
        new = follow.copy()
        contrib = start_ok[ret] | (nullable[ret][:, None] & follow[t.rule_of[ret]])
        np.logical_or.at(new, callee, contrib)
        if np.array_equal(new, follow):
            return follow
        follow = new


def _start_sets(t: PDATables) -> tuple[np.ndarray, np.ndarray]:
    """start_ok[s, c]: state s can consume class c inside its frame (via calls); nullable[s]."""
    n = t.n_states
    start_ok = t.trans >= 0
    nullable = t.final.copy()
    if not t.has_calls:
        return np.ascontiguousarray(start_ok), nullable
    src = np.repeat(np.arange(n), np.diff(t.call_ptr))
    tgt, ret = t.call_target, t.call_ret
    while True:
        new_null = nullable.copy()
        np.logical_or.at(new_null, src, nullable[tgt] & nullable[ret])
        new_ok = start_ok.copy()
        contrib = start_ok[tgt] | (nullable[tgt][:, None] & start_ok[ret])
        np.logical_or.at(new_ok, src, contrib)
        if np.array_equal(new_null, nullable) and np.array_equal(new_ok, start_ok):
            break
        nullable, start_ok = new_null, new_ok
    return np.ascontiguousarray(start_ok), nullable


# ---------------------------------------------------------------------------- compile entry points

_COMPILE_CACHE: OrderedDict[tuple, CompiledGrammar] = OrderedDict()
_COMPILE_CACHE_SIZE = 64


def _grammar_key(g: Grammar) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(g.start.encode())
    for name in sorted(g.rules):
        h.update(name.encode() + b"\x00" + repr(g.rules[name]).encode() + b"\x01")
    return h.hexdigest()


def compile_grammar(grammar: Grammar, vocab: Vocabulary, *, max_states: int = DEFAULT_MAX_STATES,
                    fuel: int = DEFAULT_FUEL, cache: bool = True,
                    precompute_budget_s: float = 0.05) -> CompiledGrammar:
    """Compile a grammar IR for a vocabulary (cached per (grammar, vocabulary)).

    `precompute_budget_s`: time spent computing per-state masks ahead of time (the rest are
    computed on first use). 0 gives the fastest compile; a small budget removes most first-use
    latency for regexes and small grammars.
    """
    key = (_grammar_key(grammar), vocab.fingerprint, max_states, fuel)
    if cache:
        hit = _COMPILE_CACHE.get(key)
        if hit is not None:
            _COMPILE_CACHE.move_to_end(key)
            return hit
    rules, start = prepare(grammar)
    tables = build_tables(rules, start, max_states=max_states)
    cg = CompiledGrammar(tables, vocab, fuel=fuel)
    if precompute_budget_s > 0:
        cg.precompute(precompute_budget_s)
    if cache:
        _COMPILE_CACHE[key] = cg
        while len(_COMPILE_CACHE) > _COMPILE_CACHE_SIZE:
            _COMPILE_CACHE.popitem(last=False)
    return cg


def compile_regex(pattern: str, vocab: Vocabulary, *, flags: str = "", max_states: int = DEFAULT_MAX_STATES,
                  **kw) -> CompiledGrammar:
    """Python-style regex, full-match semantics."""
    cg = compile_grammar(Grammar({"start": Regex(pattern, "python", flags)}, "start"), vocab,
                         max_states=max_states, **kw)
    return cg


def compile_lark(text: str, vocab: Vocabulary, *, start: str = "start", import_paths=(), **kw) -> CompiledGrammar:
    from structgen.grammar.lark_frontend import lark_to_ir

    return compile_grammar(lark_to_ir(text, start=start, import_paths=list(import_paths)), vocab, **kw)
