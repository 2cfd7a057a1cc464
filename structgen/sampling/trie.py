"""Prefix trie over generated token ids with the expected-future-grammaticality (EFG) estimate.

One trie per (model, prompt, constraint, sampling hyper-parameters); see docs in
`structgen.sampling` and the spec (shared/specs/asap.md, sections 2 and 4).

A node is a prefix `u`. Once *expanded* it stores, for the allowed tokens `A(u)` only (sorted
ids), the LM's log-probabilities `logp` (float64, from a full-vocabulary log_softmax) and
`child_efg`, the EFG estimate of each child (1 for unvisited viable children, EOS included).
`efg` is `EFG~(u)`: 1 until expanded, then `sum_t P(t|u) * EFG~(u.t)` (rule (*)), kept up to
date incrementally by `set_efg` in O(depth).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

FORMAT = "structgen-asap-trie"
VERSION = 1

_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)
# Below this fraction of the valid mass the incremental value is recomputed exactly from (*).
_DRIFT = 1e-6


class Node:
    __slots__ = (
        "child_efg",
        "depth",
        "efg",
        "expanded",
        "ids",
        "idx",
        "kids",
        "logp",
        "m",
        "p",
        "parent",
        "pn",
        "tok",
    )

    def __init__(self, parent: Node | None = None, tok: int | None = None, idx: int = -1):
        self.parent = parent
        self.tok = tok            # token that led here (None at the root)
        self.idx = idx            # position of `tok` in parent.ids
        self.depth = 0 if parent is None else parent.depth + 1
        self.expanded = False
        self.ids = _EMPTY_I       # allowed token ids, ascending
        self.logp = _EMPTY_F      # log P(t|u) for t in ids (float64)
        self.p = _EMPTY_F         # P(t|u), linear
        self.pn = _EMPTY_F        # P(t|u) / max_t P(t|u): underflow-safe sampling weights
        self.m = 1.0              # valid mass sum_{t in A(u)} P(t|u)
        self.child_efg = _EMPTY_F  # EFG~(u.t) for t in ids
        self.kids: dict[int, Node] = {}
        self.efg = 1.0            # EFG~(u)

    def index_of(self, tok: int) -> int:
        """Position of `tok` in ids, or -1 when not allowed."""
        i = int(np.searchsorted(self.ids, tok))
        return i if i < len(self.ids) and int(self.ids[i]) == tok else -1

    def prefix(self) -> tuple[int, ...]:
        out = []
        u = self
        while u.parent is not None:
            out.append(u.tok)
            u = u.parent
        return tuple(reversed(out))

    def __repr__(self) -> str:
        return f"Node(prefix={self.prefix()}, expanded={self.expanded}, efg={self.efg:.6g})"


class PrefixTrie:
    """The ASAp/CARS trie. `meta` records what the trie belongs to (checked on load)."""

    def __init__(self, meta: dict | None = None):
        self.root = Node()
        self.n_nodes = 1
        self.n_expanded = 0
        self.meta: dict = dict(meta or {})

    # ------------------------------------------------------------------ structure
    def expand(self, u: Node, ids: np.ndarray, logp: np.ndarray) -> None:
        """Store the allowed tokens and their log-probs at `u` (does not touch EFG values)."""
        ids = np.asarray(ids, dtype=np.int64)
        logp = np.asarray(logp, dtype=np.float64)
        order = np.argsort(ids, kind="stable")
        if len(ids) and np.any(order != np.arange(len(ids))):
            ids, logp = ids[order], logp[order]
        u.ids, u.logp = ids, logp
        u.p = np.exp(logp)
        mx = float(logp.max()) if len(logp) else -np.inf
        u.pn = np.exp(logp - mx) if np.isfinite(mx) else np.zeros(len(ids))
        u.m = min(1.0, float(u.p.sum()))
        u.child_efg = np.ones(len(ids), dtype=np.float64)
        for t, kid in u.kids.items():  # only after a load or manual construction
            i = u.index_of(t)
            if i >= 0:
                u.child_efg[i] = kid.efg
        u.expanded = True
        self.n_expanded += 1

    def kill(self, u: Node) -> None:
        """Make `u` a dead leaf (truncation or dead end): expanded, nothing allowed."""
        if not u.expanded:
            u.expanded = True
            self.n_expanded += 1
        u.ids, u.logp, u.p, u.pn, u.child_efg = _EMPTY_I, _EMPTY_F, _EMPTY_F, _EMPTY_F, _EMPTY_F
        u.m = 0.0

    def child(self, u: Node, i: int) -> Node:
        """The node for u.ids[i], created on first use."""
        t = int(u.ids[i])
        kid = u.kids.get(t)
        if kid is None:
            kid = Node(u, t, i)
            u.kids[t] = kid
            self.n_nodes += 1
        return kid

    def find(self, prefix) -> Node | None:
        u = self.root
        for t in prefix:
            u = u.kids.get(int(t))
            if u is None:
                return None
        return u

    def nodes(self):
        """All nodes, breadth first."""
        out = [self.root]
        k = 0
        while k < len(out):
            out.extend(out[k].kids.values())
            k += 1
        return out

    # ------------------------------------------------------------------ EFG
    def set_efg(self, u: Node, new: float) -> None:
        """Set EFG~(u) and propagate rule (*) to the root incrementally (O(depth))."""
        new = max(0.0, min(float(new), u.efg))
        while True:
            delta = new - u.efg
            u.efg = new
            par = u.parent
            if par is None or delta == 0.0:
                return
            par.child_efg[u.idx] = new
            new = par.efg + float(par.p[u.idx]) * delta
            if new <= _DRIFT * par.m:
                new = float(np.dot(par.p, par.child_efg))  # exact recompute near zero
            new = max(0.0, min(new, par.efg))
            u = par

    def recompute(self, u: Node) -> float:
        """Rule (*) at `u` from its children (exact, for checks)."""
        return float(np.dot(u.p, u.child_efg)) if u.expanded else 1.0

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        nodes = self.nodes()
        index = {id(n): k for k, n in enumerate(nodes)}
        rows = []
        for n in nodes:
            rows.append({
                "parent": -1 if n.parent is None else index[id(n.parent)],
                "tok": n.tok,
                "expanded": n.expanded,
                "efg": n.efg,
                "m": n.m,
                "ids": [int(t) for t in n.ids],
                "logp": [float(x) if np.isfinite(x) else None for x in n.logp],
            })
        return {"format": FORMAT, "version": VERSION, "meta": self.meta, "nodes": rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrefixTrie:
        if data.get("format") != FORMAT:
            raise ValueError("not a structgen ASAp trie")
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported trie version {data.get('version')}")
        trie = cls(data.get("meta") or {})
        rows = data["nodes"]
        made: list[Node] = []
        for k, r in enumerate(rows):
            if k == 0:
                n = trie.root
            else:
                par = made[r["parent"]]
                n = Node(par, int(r["tok"]), par.index_of(int(r["tok"])))
                par.kids[n.tok] = n
                trie.n_nodes += 1
            if r["expanded"]:
                if r["ids"]:
                    trie.expand(n, np.array(r["ids"], dtype=np.int64), np.array([-np.inf if x is None else x for x in r["logp"]], dtype=np.float64))
                else:
                    trie.kill(n)
                n.m = float(r["m"])
            n.efg = float(r["efg"])
            made.append(n)
        # children are loaded after their parents: fill the parents' child_efg now
        for n in made[1:]:
            if n.idx >= 0:
                n.parent.child_efg[n.idx] = n.efg
        return trie

    def dumps(self) -> str:
        # json writes floats with repr(): exact round trip for float64
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def loads(cls, text: str) -> PrefixTrie:
        return cls.from_dict(json.loads(text))

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.dumps())

    @classmethod
    def load(cls, path) -> PrefixTrie:
        with open(path, encoding="utf-8") as f:
            return cls.loads(f.read())
