"""CompiledGrammar: a grammar's pushdown tables bound to one vocabulary, with its mask caches.

Masks are computed per *stack-top state* (XGrammar's adaptive cache idea, computed lazily by a
trie walk in numba): the tokens a state accepts inside its own frame are context-independent
and cached; tokens that need the frame to end first ("exits") are re-checked against the real
stack at run time. Grammars without calls (regexes, non-recursive schemas) have no exits:
a mask is one cached row.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from structgen.automata import kernels as K
from structgen.automata.slices import (BOUNDED_MAX, CLASS_LOOPS, MIN_CLASS_CHARS, NEAR_LOOP, SLICE_LOOPS_BACK,
                                      STABLE_DEPTH, WORTH_A_SLICE, Slice, SuffixTrie, bounded_contains, class_automaton,
                                      class_candidates, class_slice, contains_slice, joint_representatives,
                                      json_string_slice, profile_state)
from structgen.automata.tables import PDATables, build_tables
from structgen.errors import LimitExceeded
from structgen.grammar.ir import Grammar, Regex
from structgen.grammar.passes import prepare
from structgen.vocab.vocabulary import Vocabulary

DEFAULT_MAX_STATES = 200_000
DEFAULT_FUEL = 4096
DEFAULT_MASK_CACHE_BYTES = 256 << 20
# stack-arena nodes kept per thread for walks (4096 for the walk + room for the loaded stacks)
ARENA_NODES = 5120
MAX_EXITS = 1024  # beyond this, a state's context-dependent tokens are found by one full walk
LARK_PRECOMPUTE_BUDGET_S = 2.0
FULL_SLICE = 1 << 30
_SCRATCH = threading.local()  # per-thread walk buffers (`CompiledGrammar._get_scratch`)


@dataclass
class StateMask:
    accept: np.ndarray         # uint32[W] (incomplete when exits is None: not used then)
    exits: np.ndarray | None   # int32[k] trie nodes reachable only after the frame ends; None = too many
    slice_k: int = -1          # the state takes every slice string of <= slice_k chars (FULL_SLICE: all)
    exits_id: int = -1         # interned id of `exits` (keys the parent frame's continuation rows)
    slice: Slice | None = None  # the slice slice_k refers to
    trie: SuffixTrie | None = None  # the trie `exits` are nodes of (None: the vocabulary's)


@dataclass
class WalkStart:
    """How a state's walk starts (`CompiledGrammar._walk_start`)."""
    mask: np.ndarray                  # uint32[W]: tokens a slice decided beforehand
    skip: tuple[np.ndarray, int]      # the slice's skip rule (key, threshold)
    roots: np.ndarray                 # trie nodes to walk from
    slice_k: int = -1                 # as StateMask.slice_k
    slice: Slice | None = None
    trie: SuffixTrie | None = None    # walk this trie instead of the vocabulary's


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
        self._nullable_list = self._nullable.tolist()
        self._follow = _follow_sets(t, self._start_ok, self._nullable)
        # The kernels test "may state s end its frame before class c" as rfollow[rule_of[s], c].
        # Greedy rules make that a per-state question: pass the per-state table with an
        # identity rule_of.
        if t.pop_blocked is None:
            self._pop_rule_of, self._pop_ok = t.rule_of, self._follow
        else:
            self._pop_rule_of = np.arange(t.n_states, dtype=np.int32)
            self._pop_ok = np.ascontiguousarray(self._follow[t.rule_of] & ~t.pop_blocked)
        self._all_follow = np.ones(t.n_classes, dtype=np.bool_)
        self._plain = K.plain_moves(self._trans, self._final, t.call_ptr, self._pop_ok[self._pop_rule_of])
        trie = vocab.trie
        self._trie = trie
        self._W = vocab.n_words
        self._max_depth, self._root_children = _trie_info(vocab)
        self._lock = threading.Lock()
        self._state_cache: OrderedDict[object, StateMask] = OrderedDict()  # state or (state, exits id)
        self._exit_ids: dict[bytes, int] = {}
        self._max_cached = max(64, mask_cache_bytes // max(1, self._W * 4))
        self._cfg_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._no_skip = (np.zeros(0, dtype=np.int32), 0)
        self._dfa_only = not t.has_calls
        # rows as Python lists, made on first use, for the byte-by-byte fast path of call-free
        # grammars (converting the whole table up front cost as much as compiling a small schema)
        self._trans_rows: dict[int, list[int]] = {}
        self._cls_list = t.byte_class.tolist()
        self._eos = vocab.eos_array
        self.walk_stats = np.zeros(4, dtype=np.int64)  # multi-configuration steps, of which memoized
        self._slice = json_string_slice(vocab) if use_slices else None
        self._joint_reps: dict[bytes, np.ndarray] = {}  # a slice automaton's byte classes -> one byte per joint class

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
                self._pop_rule_of, self._pop_ok)

    def precompute(self, budget_s: float) -> int:
        """Fill the mask caches ahead of time, within a time budget: every state's row first,
        then the continuation rows of every (return state, exits) pair a stack can produce,
        one call-graph level at a time. The walks release the GIL, so rows are computed on
        several threads. Returns the rows computed (the rest are left to first use)."""
        import time
        from concurrent.futures import ThreadPoolExecutor

        deadline = time.perf_counter() + budget_s
        t = self.tables

        def room() -> bool:
            return time.perf_counter() < deadline and len(self._state_cache) < self._max_cached

        def row(s: int):
            return self.state_mask(s) if room() else None

        def cont(job):
            r, sm = job
            return self.continuation_mask(r, sm) if room() else None

        workers = max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            rows: list[StateMask | None] = [None] * t.n_states
            chunk = 16 * workers  # submit a little at a time: a big grammar has far more states
            for lo in range(0, t.n_states, chunk):  # than a small budget covers
                if not room():
                    break
                rows[lo:lo + chunk] = pool.map(row, range(lo, min(lo + chunk, t.n_states)))
            done = sum(sm is not None for sm in rows)
            if not room() or not t.has_calls:
                return done
            returns: dict[int, list[int]] = {}  # rule -> the states its callers return to
            for tgt, ret in sorted(set(zip(t.rule_of[t.call_target].tolist(), t.call_ret.tolist()))):
                returns.setdefault(tgt, []).append(ret)
            level = [(sm, int(t.rule_of[s])) for s, sm in enumerate(rows)
                     if sm is not None and sm.exits is not None and len(sm.exits)]
            seen: set[tuple[int, int]] = set()
            while level and room():
                jobs = []
                for sm, rule in level:
                    for r in returns.get(rule, ()):
                        if (r, sm.exits_id) not in seen:
                            seen.add((r, sm.exits_id))
                            jobs.append((r, sm))
                subs: list[StateMask | None] = []
                for lo in range(0, len(jobs), chunk):
                    if not room():
                        break
                    subs += pool.map(cont, jobs[lo:lo + chunk])
                subs += [None] * (len(jobs) - len(subs))
                done += sum(sub is not None for sub in subs)
                level = [(sub, int(t.rule_of[r])) for (r, _), sub in zip(jobs, subs)
                         if sub is not None and sub.exits is not None and len(sub.exits)]
        return done

    def _wargs(self):
        t = self.tables
        return (self._trans, t.byte_class, self._final, t.call_ptr, t.call_target, t.call_ret,
                self._start_ok, self._nullable, self._pop_rule_of, self._pop_ok)

    def state_mask(self, s: int) -> StateMask:
        """Context-independent accepted tokens of stack-top state s, plus its exit nodes."""
        sm = self._state_cache.get(s)
        if sm is not None:
            self._state_cache.move_to_end(s)
            return sm
        t = self.tables
        root_only = not t.rule_called[t.rule_of[s]]
        init_s = np.array([s], dtype=np.int32)
        init_p = np.array([K.BOTTOM if root_only else K.FRAME], dtype=np.int32)
        ws = self._walk_start(s)
        sc = self._get_scratch()
        n_exits, flags = self._walk(init_s, init_p, ([], []), ws.roots, ws.mask, sc.exits, ws.skip,
                                    self._follow[t.rule_of[s]], ws.trie)
        sm_exits = None if flags & K.FLAG_EXITS_FULL else sc.exits[:n_exits].copy()
        if flags & K.FLAG_FUEL:
            raise LimitExceeded(f"mask computation for state {s} exceeded its fuel ({self.fuel}); "
                                "the grammar is too ambiguous")
        sm = StateMask(ws.mask, sm_exits, ws.slice_k, self._exits_id(sm_exits, ws.trie), ws.slice, ws.trie)
        self._cache_put(s, sm)
        return sm

    def _plain_start(self) -> "WalkStart":
        """A walk of the whole trie, nothing decided beforehand."""
        return WalkStart(np.zeros(self._W, dtype=np.uint32), self._no_skip, self._root_children)

    def _walk_start(self, s: int) -> "WalkStart":
        """How state s's walk starts: the widest slice s takes -- all of it, or (a
        length-bounded string) every string of up to k characters. The JSON-string-body slice
        is tried first, then slices of s's own character class. A state that loops back on
        the whole slice walks the slice's suffix trie (without one, from its exit nodes)."""
        t = self.tables
        if self._slice is None:
            return self._plain_start()
        cls = np.empty(128, dtype=np.bool_)
        flags = profile_state(self._trans, t.byte_class, s, MIN_CLASS_CHARS, STABLE_DEPTH, cls)
        if not flags & WORTH_A_SLICE:
            return self._plain_start()
        best_k, best, best_exact = -1, None, False
        # the JSON string body first, then the state's own class; a class's slice (its trie
        # arrays) is built only once a state is known to take it
        classes = None
        sl, ranges = self._slice, None
        trans, start, kinds = sl.trans, sl.start, sl.kinds
        # a state that takes a whole slice loops on it (or is a few characters from a state
        # that does, e.g. under a minLength: those get the bounded slice)
        loops = bool(flags & NEAR_LOOP)
        while True:
            # all of it (plain JSON strings, free text in a format); else every string of up
            # to k characters (counting states: maxLength)
            key = kinds.tobytes()
            reps = self._joint_reps.get(key)
            if reps is None:
                reps = self._joint_reps[key] = joint_representatives(t.byte_class, kinds)
            relation = contains_slice(self._trans, t.byte_class, self._final, t.call_ptr, s, trans, start,
                                      reps) if loops else 0
            if relation:
                sl = class_slice(self.vocab, ranges) if ranges else sl
                if relation & SLICE_LOOPS_BACK and sl.suffixes is not None:
                    return WalkStart(sl.token_mask.copy(), self._no_skip, sl.suffixes.root_children, FULL_SLICE,
                                     sl, sl.suffixes)
                if relation & SLICE_LOOPS_BACK and sl.exit_roots is not None:
                    return WalkStart(sl.token_mask.copy(), self._no_skip, sl.exit_roots, FULL_SLICE, sl)
                return WalkStart(sl.token_mask.copy(), sl.skip_rule(), self._root_children, FULL_SLICE, sl)
            k, exact = bounded_contains(self._trans, t.byte_class, self._final, t.call_ptr, s, trans, start,
                                        BOUNDED_MAX, reps)
            if (k >= 2 or exact) and (k, exact) > (best_k, best_exact):
                best_k, best_exact = k, exact
                best = class_slice(self.vocab, ranges) if ranges else sl
            if classes is None:
                classes = class_candidates(cls, flags)
            if best_k >= BOUNDED_MAX or not classes:
                break
            loops = bool(flags & CLASS_LOOPS)
            ranges = classes.pop(0)
            trans, start, kinds = class_automaton(ranges)
        if best is None:
            return self._plain_start()
        return WalkStart(best.bounded(best_k).copy(), best.skip_rule(best_k, best_exact), self._root_children,
                         best_k, best)

    def continuation_mask(self, r: int, sm: StateMask) -> StateMask:
        """Tokens under `sm.exits` that return state r's frame accepts, plus where r's frame
        ends in turn. Depends on (r, exits) only, so it is cached like a state's row: a stack
        costs one cached row per frame instead of a walk with the real stack."""
        key = (r, sm.exits_id)
        hit = self._state_cache.get(key)
        if hit is not None:
            self._state_cache.move_to_end(key)
            return hit
        mask = np.zeros(self._W, dtype=np.uint32)
        sc = self._get_scratch()
        n_exits, flags = self._walk(np.array([r], dtype=np.int32), np.array([K.FRAME], dtype=np.int32), ([], []),
                                    sm.exits, mask, sc.exits, self._no_skip,
                                    self._follow[self.tables.rule_of[r]], sm.trie)
        if flags & K.FLAG_FUEL:
            raise LimitExceeded("mask computation exceeded its fuel; the grammar is too ambiguous")
        exits = None if flags & K.FLAG_EXITS_FULL else sc.exits[:n_exits].copy()
        out = StateMask(mask, exits, -1, self._exits_id(exits, sm.trie), trie=sm.trie)
        self._cache_put(key, out)
        return out

    def _exits_id(self, exits: np.ndarray | None, trie: SuffixTrie | None) -> int:
        if exits is None or not len(exits):
            return -1
        key = (trie, exits.tobytes())  # the trie by identity (kept alive by the key)
        with self._lock:
            eid = self._exit_ids.get(key)
            if eid is None:
                eid = self._exit_ids[key] = len(self._exit_ids)
        return eid

    def _cache_put(self, key, sm: StateMask) -> None:
        with self._lock:
            self._state_cache[key] = sm
            while len(self._state_cache) > self._max_cached:
                self._state_cache.popitem(last=False)

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
        done: set[tuple] = set()
        for sm, (s, stack) in zip(sms, configs):
            K.or_rows(mask, sm.accept)
            d = len(stack)
            # follow the exits up the stack, one cached continuation row per frame
            while d and len(sm.exits):
                key = (stack[d - 1], sm.exits_id, stack[:d - 1])
                if key in done:
                    break
                done.add(key)
                sub = self.continuation_mask(stack[d - 1], sm)
                K.or_rows(mask, sub.accept)
                if sub.exits is None:  # too many to cache: walk the rest with the real stack
                    self._walk_exits(mask, sm, stack[:d])
                    break
                sm = sub
                d -= 1
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
        """Walk buffers of this thread, shared by every grammar it serves (regrown when one
        needs more levels or byte classes): a new grammar's first mask does not allocate them."""
        sc = _SCRATCH
        lvl = getattr(sc, "lvl", None)
        levels, n_classes = self._max_depth + 2, self.tables.n_classes
        if lvl is None or lvl.shape[0] < levels or sc.dtab.shape[1] < n_classes:
            if lvl is not None:
                levels, n_classes = max(levels, lvl.shape[0]), max(n_classes, sc.dtab.shape[1])
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
            sc.dtab = np.empty((n_sets, n_classes), dtype=np.int32)
            sc.dflag = np.empty((n_sets, n_classes), dtype=np.int8)
            sc.tmp_s = np.empty(4096, dtype=np.int32)
            sc.tmp_p = np.empty(4096, dtype=np.int32)
            sc.arena_ret = np.empty(ARENA_NODES, dtype=np.int32)
            sc.arena_par = np.empty(ARENA_NODES, dtype=np.int32)
            sc.arena_hash = np.full(_pow2(2 * ARENA_NODES + 2), -1, dtype=np.int32)
        if getattr(sc, "exits", None) is None or sc.exits.shape[0] != MAX_EXITS:
            sc.exits = np.empty(MAX_EXITS, dtype=np.int32)
        return sc

    def _walk(self, init_s, init_p, nodes, roots, mask, exits, skip, follow_row, trie=None):
        """Run the trie walk (over `trie`, default the vocabulary's); grow the stack arena and
        retry if it fills up."""
        trie = self._trie if trie is None else trie
        sc = self._get_scratch()
        n = len(nodes[0])
        size = 1 << 12
        while True:
            cap = size + n
            if cap <= sc.arena_ret.shape[0]:
                # the thread's arena: its hash table is cleared after a walk that pushed, not
                # reallocated (a fresh 64 KB table cost more than most walks)
                ar, ap, ah = sc.arena_ret, sc.arena_par, sc.arena_hash
            else:
                ar = np.empty(cap, dtype=np.int32)
                ap = np.empty(cap, dtype=np.int32)
                ah = np.full(_pow2(2 * cap + 2), -1, dtype=np.int32)
            if n:
                ar[:n] = nodes[0]
                ap[:n] = nodes[1]
            if not self.tables.has_calls:
                ah = sc.no_hash
            # stack nodes are only pushed by configuration-set steps (walk_stats[0] counts them)
            set_steps = self.walk_stats[0]
            n_exits, flags = K.walk_trie(*self._wargs(), follow_row, self._plain,
                                         trie.byte, trie.subtree_end, trie.tok_start, trie.tok_ids,
                                         init_s, init_p, len(init_s), roots,
                                         ar, ap, ah, n, mask, exits, self.fuel, *skip,
                                         sc.lvl, sc.cfg_s, sc.cfg_p, sc.work_s, sc.work_p,
                                         sc.memo, sc.sets, sc.pool_s, sc.pool_p, sc.dtab, sc.dflag, sc.tmp_s, sc.tmp_p,
                                         self.walk_stats)
            if ah is sc.arena_hash and self.walk_stats[0] != set_steps:
                ah.fill(-1)
            if not flags & K.FLAG_FUEL or size >= 1 << 20 or not self.tables.has_calls:
                return n_exits, flags
            size <<= 3

    def _full_walk(self, configs, sms) -> np.ndarray:
        """One trie walk from the real stacks (no precomputed rows): for exit-heavy states."""
        sc = self._get_scratch()
        # the configurations' union holds the widest slice any of them takes
        best = max(sms, key=lambda sm: sm.slice_k)
        if best.slice_k == FULL_SLICE:
            mask, skip = best.slice.token_mask.copy(), best.slice.skip_rule()
        elif best.slice_k >= 0:
            mask, skip = best.slice.bounded(best.slice_k).copy(), best.slice.skip_rule(best.slice_k)
        else:
            mask, skip = np.zeros(self._W, dtype=np.uint32), self._no_skip
        init_s, init_p, nodes = _stacks_to_arena(configs)
        _, flags = self._walk(init_s, init_p, nodes, self._root_children, mask, sc.exits[:0], skip, self._all_follow)
        if flags & K.FLAG_FUEL:
            raise LimitExceeded("mask computation exceeded its fuel; the grammar is too ambiguous")
        return mask

    def _walk_exits(self, mask, sm: StateMask, stack) -> None:
        """Tokens under sm's exit nodes, continued by the parent frame of the real stack."""
        sc = self._get_scratch()
        init_s, init_p, nodes = _stacks_to_arena(((stack[-1], stack[:-1]),))
        _, flags = self._walk(init_s, init_p, nodes, sm.exits, mask, sc.exits[:0], self._no_skip, self._all_follow,
                              sm.trie)
        if flags & K.FLAG_FUEL:
            raise LimitExceeded("mask computation exceeded its fuel; the grammar is too ambiguous")

    def can_end(self, configs) -> bool:
        if self._dfa_only:
            return bool(self._final[configs[0][0]])
        # A frame can end without input iff its state is nullable (the fixpoint of _start_sets,
        # exact on live tables); the input can end iff every frame on the stack can.
        nullable = self._nullable_list
        return any(nullable[s] and all(nullable[r] for r in stack) for s, stack in configs)

    def advance(self, configs, data: bytes):
        """Configurations after consuming `data` (empty tuple = rejected)."""
        if self._dfa_only:
            s = configs[0][0]
            rows, cl = self._trans_rows, self._cls_list
            for b in data:
                row = rows.get(s)
                if row is None:
                    row = rows[s] = self._trans[s].tolist()
                s = row[cl[b]]
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


def _trie_info(vocab) -> tuple[int, np.ndarray]:
    """(maximum token depth, root children) of the vocabulary's trie, computed once per vocabulary."""
    cache = vocab.__dict__.setdefault("_structgen_trie_info", {})
    got = cache.get("info")
    if got is None:
        trie = vocab.trie
        got = cache["info"] = (int(trie.depth.max()) if trie.n_nodes else 0, _root_children(trie))
    return got


def _root_children(trie) -> np.ndarray:
    out = []
    n = 1
    while n < trie.n_nodes:
        out.append(n)
        n = int(trie.subtree_end[n])
    return np.array(out, dtype=np.int32)


def _longest_match_dead_ends(t: PDATables, start_ok, nullable, follow) -> list[str]:
    """Warnings for greedy rules that, at some call site, can only be followed by bytes that
    extend them (`INT INT` with nothing ignored between): once such a match is reached, only the
    end of the input lets it end, so masks there allow prefixes that cannot complete."""
    if t.pop_blocked is None:
        return []
    out = []
    callee_rule = t.rule_of[t.call_target]
    for g in sorted(set(t.rule_of[t.pop_blocked.any(axis=1)].tolist())):
        states = np.flatnonzero(t.rule_of == g)
        finals = [int(f) for f in states if t.final[f]]
        reach = {}
        for f in finals:  # finals reachable from f inside the rule (f included)
            seen, todo = {f}, [f]
            while todo:
                q = todo.pop()
                for nxt in t.trans[q][t.trans[q] >= 0].tolist():
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            reach[f] = [q for q in seen if t.final[q]]
        for r in sorted(set(t.call_ret[callee_rule == g].tolist())):
            if nullable[r]:
                continue  # the caller may end here (perhaps the whole input): not provably stuck
            nxt = start_ok[r]
            stuck = [f for f in finals if all(not (nxt & ~t.pop_blocked[q]).any() for q in reach[f])]
            if stuck:
                out.append(f"rule {t.rule_names[g]!r}: where {t.rule_names[t.rule_of[r]]!r} uses it, every byte "
                           "that may follow also extends the match (longest match), so it can only end at "
                           "the end of the input")
                break
    return out


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
    h.update(repr((sorted(g.greedy), sorted(g.frames))).encode())
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
    _warm_mask_kernels()
    try:
        key = (_grammar_key(grammar), vocab.fingerprint, max_states, fuel) if cache else None
        if cache:
            hit = _COMPILE_CACHE.get(key)
            if hit is not None:
                _COMPILE_CACHE.move_to_end(key)
                return hit
        rules, start = prepare(grammar)
        tables = build_tables(rules, start, max_states=max_states, greedy=frozenset(grammar.greedy) & set(rules))
    except RecursionError:
        # the IR passes recurse over expression nesting; a pathological nesting depth is a
        # limit like any other, not a crash
        raise LimitExceeded("grammar nesting is too deep to compile (Python recursion limit); "
                            "simplify the constraint") from None
    cg = CompiledGrammar(tables, vocab, fuel=fuel)
    cg.warnings += _longest_match_dead_ends(tables, cg._start_ok, cg._nullable, cg._follow)
    if precompute_budget_s > 0:
        cg.precompute(precompute_budget_s)
    # every matcher asks for this mask first: computed once here, with the compile
    cg.configs_mask(cg.initial_configs())
    if cache:
        _COMPILE_CACHE[key] = cg
        while len(_COMPILE_CACHE) > _COMPILE_CACHE_SIZE:
            _COMPILE_CACHE.popitem(last=False)
    return cg


_WARM: list[bool] = []


def _warm_mask_kernels() -> None:
    """Load every mask kernel from numba's cache once per process (tens of ms the first time),
    so a program's first masks are not the ones that pay for it."""
    if _WARM:
        return
    _WARM.append(True)
    from structgen.grammar.ir import Ref, lit, repeat, seq

    g = Grammar({"start": seq(lit("("), repeat(Ref("start"), 0, 1), lit(")"))}, "start")
    vocab = Vocabulary.from_token_bytes([b"(", b")", b"()", b"x", None], eos_token_ids=[4])
    cg = compile_grammar(g, vocab, cache=False, precompute_budget_s=0)
    m = cg.matcher()
    for tok in (0, 0, 1):
        m.next_token_mask()
        m.accept_token(tok)
    m.next_token_mask()  # "(()": the inner frame may end: exits and continuation rows
    m.is_accepting()
    m.rollback(1)
    # string states: slice tests, a class slice built and bounded
    letters = [bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyz,"]
    vocab = Vocabulary.from_token_bytes([b'"', *letters, b"ab", None], eos_token_ids=[len(letters) + 2])
    for pattern in (r'"[a-z]{0,40}"', r'"[a-z]*"', r'"[^,"]{0,3}"'):
        m = compile_grammar(Grammar({"start": Regex(pattern)}), vocab, cache=False, precompute_budget_s=0).matcher()
        for text in ('"', "a", "b"):
            m.accept_string(text)
            m.next_token_mask()


def compile_regex(pattern: str, vocab: Vocabulary, *, flags: str = "", max_states: int = DEFAULT_MAX_STATES,
                  **kw) -> CompiledGrammar:
    """Python-style regex, full-match semantics."""
    cg = compile_grammar(Grammar({"start": Regex(pattern, "python", flags)}, "start"), vocab,
                         max_states=max_states, **kw)
    return cg


def compile_lark(text: str, vocab: Vocabulary, *, start: str = "start", import_paths=(), lexer: str = "dynamic",
                 **kw) -> CompiledGrammar:
    """A Lark grammar; `lexer` as in Lark's Earley parser ("dynamic": terminals match longest-first,
    Lark's default; "dynamic_complete": any match length).

    Grammars get a larger default precompute budget than schemas (LARK_PRECOMPUTE_BUDGET_S): a
    programming-language grammar has dense identifier rows and deep stacks whose rows cost
    milliseconds each on first use, and is usually compiled once and reused."""
    from structgen.grammar.lark_frontend import lark_to_ir

    kw.setdefault("precompute_budget_s", LARK_PRECOMPUTE_BUDGET_S)
    return compile_grammar(lark_to_ir(text, start=start, import_paths=list(import_paths), lexer=lexer), vocab, **kw)
