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

from dataclasses import dataclass

import numpy as np

from structgen.automata.fsm import DFA, compile_deadline, expr_to_dfa
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

    @property
    def has_calls(self) -> bool:
        return len(self.call_target) > 0

    @property
    def n_classes(self) -> int:
        return int(self.trans.shape[1])


def _productive_rules(dfas: dict[str, DFA]) -> frozenset[str]:
    """Rules whose language is non-empty, given that calls need productive callees."""
    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, d in dfas.items():
            if name in productive:
                continue
            # reachability from start over byte edges and calls to productive rules
            seen = {d.start}
            stack = [d.start]
            ok = False
            while stack and not ok:
                q = stack.pop()
                if d.final[q]:
                    ok = True
                    break
                nxt = [int(r) for r in d.trans[q] if r >= 0]
                nxt += [r for callee, r in d.calls[q] if callee in productive]
                for r in nxt:
                    if r not in seen:
                        seen.add(r)
                        stack.append(r)
            if ok:
                productive.add(name)
                changed = True
    return frozenset(productive)


DEFAULT_MAX_COMPILE_S = 30.0  # wall-clock limit on automata construction (None: unlimited)


def build_tables(rules: dict[str, Expr], start: str, *, max_states: int,
                 max_time_s: float | None = -1.0) -> PDATables:
    """Per-rule minimal DFAs flattened into one table set. Raises LimitExceeded past `max_states`
    states or after `max_time_s` seconds (-1: DEFAULT_MAX_COMPILE_S; None: no time limit)."""
    if max_time_s is not None and max_time_s < 0:
        max_time_s = DEFAULT_MAX_COMPILE_S
    with compile_deadline(max_time_s):
        return _build_tables(rules, start, max_states=max_states)


def _build_tables(rules: dict[str, Expr], start: str, *, max_states: int) -> PDATables:
    names = [start] + sorted(n for n in rules if n != start)
    # Productivity fixpoint: a rule is productive if its DFA accepts something using only
    # productive callees. Start optimistic-free: iterate from the empty set upwards.
    productive: frozenset[str] = frozenset()
    dfas: dict[str, DFA] = {}
    raw: dict[str, DFA] = {}
    total = 0
    for n in names:
        d = expr_to_dfa(rules[n], max_states=max_states)
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
            if any(callee not in productive for cs in d.calls for callee, _ in cs):
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
    call_ptr = np.zeros(total + 1, dtype=np.int32)
    targets: list[int] = []
    rets: list[int] = []
    rule_called = np.zeros(len(names), dtype=bool)
    rule_index = {n: i for i, n in enumerate(names)}
    for i, n in enumerate(names):
        d, off = dfas[n], offset[n]
        local = d.trans[:, d.byte_class[rep_byte]]
        trans[off: off + d.n_states] = np.where(local >= 0, local + off, -1)
        final[off: off + d.n_states] = d.final
        rule_of[off: off + d.n_states] = i
        for q in range(d.n_states):
            for callee, r in d.calls[q]:
                targets.append(offset[callee] + dfas[callee].start)
                rets.append(off + r)
                rule_called[rule_index[callee]] = True
            call_ptr[off + q + 1] = len(targets)
    self_loop = trans == np.arange(total, dtype=np.int32)[:, None]
    return PDATables(
        n_states=total,
        start=offset[start] + dfas[start].start,
        trans=trans,
        byte_class=gcls,
        final=final,
        call_ptr=call_ptr,
        call_target=np.array(targets, dtype=np.int32),
        call_ret=np.array(rets, dtype=np.int32),
        rule_of=rule_of,
        rule_names=names,
        rule_called=rule_called,
        self_loop_class=self_loop,
    )
