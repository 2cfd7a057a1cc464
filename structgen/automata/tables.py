"""Flatten per-rule DFAs into one set of numpy tables: the pushdown automaton the kernels run.

Global states are numbered rule by rule. A configuration is (state, stack), the stack holding
return states. From state s:
  * byte b moves to trans[s, byte_class[b]] (same frame),
  * call j in call_ptr[s]:call_ptr[s+1] pushes call_ret[j] and continues in call_target[j]
    (the callee's start state) without consuming a byte,
  * if final[s], the frame may end: pop the return state and continue there.
Every state kept here is *live* (some completion exists), so a configuration set is viable
exactly when it is non-empty: the basis of exact masks.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from structgen.automata.fsm import DFA, compile_deadline, expr_to_dfa, structural_hash
from structgen.errors import GrammarError, LimitExceeded
from structgen.grammar.ir import Expr


@dataclass
class PDATables:
    n_states: int
    start: int                 # start state of the start rule
    trans: np.ndarray          # int32 [n_states, n_classes]
    byte_class: np.ndarray     # int32 [256]
    final: np.ndarray          # bool  [n_states]
    call_ptr: np.ndarray       # int32 [n_states + 1]
    call_target: np.ndarray    # int32 [n_calls]
    call_ret: np.ndarray       # int32 [n_calls]
    rule_of: np.ndarray        # int32 [n_states]
    rule_names: list[str]
    rule_called: np.ndarray    # bool [n_rules]: is the rule referenced by any call
    self_loop_class: np.ndarray  # bool [n_states, n_classes]: trans[s, c] == s
    # bool [n_states, n_classes]: a final state of a greedy (longest-match) rule may not end
    # its frame before class c, because its own automaton can take c
    pop_blocked: np.ndarray | None = None

    @property
    def has_calls(self) -> bool:
        return len(self.call_target) > 0

    @property
    def n_classes(self) -> int:
        return int(self.trans.shape[1])


def _productive_rules(dfas: dict[str, DFA]) -> frozenset[str]:
    """Rules whose language is non-empty, given that calls need productive callees."""
    from structgen.automata import fsm_kernels as FK

    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, d in dfas.items():
            if name in productive:
                continue
            # reachability from start over byte edges and calls to productive rules
            col_ok = np.array([c in productive for c in d.call_names], dtype=np.bool_)
            if FK.reaches_final(d.trans, d.call_trans, col_ok, d.final, d.start):
                productive.add(name)
                changed = True
    return frozenset(productive)


# Minimal DFAs of recursive rules, per process: (structural hash, state budget) -> [(body, DFA)].
# A schema's unconstrained value ("any JSON value") is such a rule, the same in most schemas.
_RULE_CACHE: OrderedDict[tuple, list] = OrderedDict()
_RULE_CACHE_SIZE = 256
_RULE_LOCK = threading.Lock()


def _rule_dfa(e: Expr, max_states: int, hash_memo: dict | None = None) -> DFA:
    """expr_to_dfa, cached by value across compiles (DFAs are never mutated)."""
    key = (structural_hash(e, hash_memo), max_states)
    with _RULE_LOCK:
        bucket = list(_RULE_CACHE.get(key, ()))
    for e2, d in bucket:
        if e2 is e or e2 == e:
            with _RULE_LOCK:
                if key in _RULE_CACHE:
                    _RULE_CACHE.move_to_end(key)
            return d
    d = expr_to_dfa(e, max_states=max_states)
    with _RULE_LOCK:
        _RULE_CACHE.setdefault(key, []).append((e, d))
        _RULE_CACHE.move_to_end(key)
        while len(_RULE_CACHE) > _RULE_CACHE_SIZE:
            _RULE_CACHE.popitem(last=False)
    return d


DEFAULT_MAX_COMPILE_S = 30.0  # wall-clock limit on automata construction (None: unlimited)


def build_tables(rules: dict[str, Expr], start: str, *, max_states: int,
                 max_time_s: float | None = -1.0, greedy: frozenset = frozenset()) -> PDATables:
    """Per-rule minimal DFAs flattened into one table set. Raises LimitExceeded past `max_states`
    states or after `max_time_s` seconds (-1: DEFAULT_MAX_COMPILE_S; None: no time limit)."""
    if max_time_s is not None and max_time_s < 0:
        max_time_s = DEFAULT_MAX_COMPILE_S
    with compile_deadline(max_time_s):
        return _build_tables(rules, start, max_states=max_states, greedy=greedy)


def _build_tables(rules: dict[str, Expr], start: str, *, max_states: int, greedy: frozenset) -> PDATables:
    names = [start] + sorted(n for n in rules if n != start)
    # Productivity fixpoint: a rule is productive if its DFA accepts something using only
    # productive callees. Start optimistic-free: iterate from the empty set upwards.
    productive: frozenset[str] = frozenset()
    dfas: dict[str, DFA] = {}
    raw: dict[str, DFA] = {}
    total = 0
    hash_memo: dict = {}  # rule bodies share sub-trees: hash each node once
    for n in names:
        d = _rule_dfa(rules[n], max_states, hash_memo) if n != start else expr_to_dfa(rules[n], max_states=max_states)
        raw[n] = d
        total += d.n_states
        if total > max_states:
            raise LimitExceeded(f"grammar automata exceed {max_states} states in total")
    from structgen.automata.fsm import minimize

    productive = _productive_rules(raw)
    dfas = {}
    for n in names:
        if n in productive:
            d = raw[n]
            # raw DFAs are already minimal; re-minimize only when some callee turned out empty
            if any(callee not in productive for callee in d.call_names):
                d = minimize(d, productive)
            dfas[n] = d
    if start not in productive:
        raise GrammarError("the grammar's language is empty: no string matches the start rule")
    names = [n for n in names if n in productive]
    # global byte classes: refine all rule partitions together
    sig = np.zeros((256, len(names)), dtype=np.int64)
    for i, n in enumerate(names):
        sig[:, i] = dfas[n].byte_class
    _, gcls = np.unique(sig, axis=0, return_inverse=True)
    gcls = gcls.reshape(256).astype(np.int32)
    n_cls = int(gcls.max()) + 1
    rep_byte = np.zeros(n_cls, dtype=np.int64)
    for b in range(255, -1, -1):
        rep_byte[gcls[b]] = b
    offset: dict[str, int] = {}
    total = 0
    for n in names:
        offset[n] = total
        total += dfas[n].n_states
    trans = np.full((total, n_cls), -1, dtype=np.int32)
    final = np.zeros(total, dtype=bool)
    rule_of = np.zeros(total, dtype=np.int32)
    n_calls = np.zeros(total, dtype=np.int32)
    targets: list[np.ndarray] = []
    rets: list[np.ndarray] = []
    rule_called = np.zeros(len(names), dtype=bool)
    rule_index = {n: i for i, n in enumerate(names)}
    for i, n in enumerate(names):
        d, off = dfas[n], offset[n]
        local = d.trans[:, d.byte_class[rep_byte]]
        trans[off: off + d.n_states] = np.where(local >= 0, local + off, -1)
        final[off: off + d.n_states] = d.final
        rule_of[off: off + d.n_states] = i
        if d.call_names:
            # calls by state, then callee name (the column order)
            q, j, r = d.call_edges()
            col_start = np.array([offset[c] + dfas[c].start for c in d.call_names], dtype=np.int32)
            targets.append(col_start[j])
            rets.append((r + off).astype(np.int32))
            np.add.at(n_calls, q + off, 1)
            for c in d.call_names:
                rule_called[rule_index[c]] = True
    call_ptr = np.zeros(total + 1, dtype=np.int32)
    np.cumsum(n_calls, out=call_ptr[1:])
    targets = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int32)
    rets = np.concatenate(rets) if rets else np.zeros(0, dtype=np.int32)
    self_loop = trans == np.arange(total, dtype=np.int32)[:, None]
    pop_blocked = None
    greedy_ids = [i for i, n in enumerate(names) if n in greedy]
    if greedy_ids:
        in_greedy = np.isin(rule_of, greedy_ids)
        pop_blocked = (trans >= 0) & (final & in_greedy)[:, None]
        if not pop_blocked.any():
            pop_blocked = None
    return PDATables(
        n_states=total,
        start=offset[start] + dfas[start].start,
        trans=trans,
        byte_class=gcls,
        final=final,
        call_ptr=call_ptr,
        call_target=targets.astype(np.int32),
        call_ret=rets.astype(np.int32),
        rule_of=rule_of,
        rule_names=names,
        rule_called=rule_called,
        self_loop_class=self_loop,
        pop_blocked=pop_blocked,
    )
