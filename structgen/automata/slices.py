"""Vocabulary slices: token sets whose masks are OR-ed in whole instead of walked.

Dense masks (inside a JSON string nearly every token is allowed) would otherwise walk the
whole trie. A slice is a prefix-closed byte language S, here "JSON string body" (any
character except `"`, backslash and U+0000..U+001F, valid UTF-8; a token may stop inside a
character). Per vocabulary we precompute the tokens in S and the trie nodes whose whole subtree
is in S. A grammar state *contains* the slice when every string of S can be consumed from it
by byte moves alone; then its mask is the slice's mask plus a walk of the rest of the trie.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from structgen.automata.fsm import expr_to_dfa
from structgen.grammar.ir import Chars, Repeat, normalize_ranges


BOUNDED_MAX = 32  # bounded slices are kept for up to this many characters


@dataclass(frozen=True)
class Slice:
    name: str
    trans: np.ndarray      # int32 [n_slice_states, 256], -1 = leaves the slice
    start: int
    token_mask: np.ndarray  # uint32 [W]
    skip_node: np.ndarray   # int8 [n_nodes]: 1 = whole subtree in the slice
    node_chars: np.ndarray  # int32 [n_nodes]: most characters started on a path in the subtree
    tok_chars: np.ndarray   # int32 [V]: characters a slice token starts (-1: not in the slice)
    _bounded: dict = field(default_factory=dict, compare=False)

    def bounded(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask, skip) for the strings of the slice that start at most k characters (a token
        may end inside its last one): what a length-bounded string state accepts in one go."""
        k = min(k, BOUNDED_MAX)
        got = self._bounded.get(k)
        if got is None:
            ids = np.flatnonzero((self.tok_chars >= 0) & (self.tok_chars <= k))
            mask = np.zeros_like(self.token_mask)
            np.bitwise_or.at(mask, ids >> 5, (np.uint32(1) << (ids & 31).astype(np.uint32)))
            skip = (self.skip_node.astype(bool) & (self.node_chars <= k)).astype(np.int8)
            got = self._bounded[k] = (mask, skip)
        return got


JSON_STRING_BODY = Chars(normalize_ranges([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, 0x10FFFF)]))


def build_slice(name: str, char_set: Chars, vocab) -> Slice:
    d = expr_to_dfa(Repeat(char_set, 0, None), max_states=64)
    trans = np.ascontiguousarray(d.trans[:, d.byte_class].astype(np.int32))
    trie = vocab.trie
    skip = np.zeros(trie.n_nodes, dtype=np.int8)
    in_slice = np.zeros(trie.n_nodes, dtype=np.bool_)
    _mark_nodes(trie.byte, trie.subtree_end, trans, d.start, in_slice, skip)
    mask = np.zeros(vocab.n_words, dtype=np.uint32)
    nodes = np.flatnonzero(in_slice)
    for n in nodes:
        for k in range(trie.tok_start[n], trie.tok_start[n + 1]):
            tid = int(trie.tok_ids[k])
            mask[tid >> 5] |= np.uint32(1 << (tid & 31))
    node_chars = np.zeros(trie.n_nodes, dtype=np.int32)
    tok_chars = np.full(vocab.size, -1, dtype=np.int32)
    _count_chars(trie.byte, trie.subtree_end, trie.tok_start, trie.tok_ids, in_slice, node_chars, tok_chars)
    return Slice(name, trans, d.start, mask, skip, node_chars, tok_chars)


@njit(cache=True)
def _count_chars(t_byte, t_end, t_tok_start, t_tok_ids, in_slice, node_chars, tok_chars):
    """Characters started on the path to each node (a UTF-8 lead byte or ASCII starts one);
    tokens in the slice get their node's count; then node_chars becomes the subtree maximum."""
    n = t_byte.shape[0]
    depth_chars = np.zeros(n, np.int32)
    parent = _parents(t_end)
    for v in range(1, n):
        b = t_byte[v]
        depth_chars[v] = depth_chars[parent[v]] + (0 if 0x80 <= b < 0xC0 else 1)
        if in_slice[v]:
            for k in range(t_tok_start[v], t_tok_start[v + 1]):
                tok_chars[t_tok_ids[k]] = depth_chars[v]
    # subtree maxima: in DFS order a subtree is the interval [v, t_end[v]); children are later
    for v in range(n - 1, -1, -1):
        m = depth_chars[v]
        c = v + 1
        while c < t_end[v]:
            if node_chars[c] > m:
                m = node_chars[c]
            c = t_end[c]
        node_chars[v] = m


@njit(cache=True)
def bounded_contains(trans, byte_class, s, slice_trans, slice_start, kmax):
    """The largest k <= kmax such that every string of the slice that starts at most k
    characters can be consumed from grammar state s by byte moves (-1: not even the empty one
    matters here, i.e. k = 0 gains nothing; returns 0 then). Gives up (0) beyond a budget."""
    cap = 1 << 15
    n_u = slice_trans.shape[0]
    span = kmax + 2
    keys = np.full(cap, -1, np.int64)
    stack = np.empty(cap, np.int64)
    top = 0
    k0 = (s * n_u + slice_start) * span
    stack[0] = k0
    keys[k0 % cap] = k0
    used = 1
    fail = kmax + 1  # fewest characters of a slice string the state cannot take
    while top >= 0:
        key = stack[top]
        top -= 1
        c = key % span
        qu = key // span
        q = qu // n_u
        u = qu % n_u
        for b in range(256):
            u2 = slice_trans[u, b]
            if u2 < 0:
                continue
            c2 = c + (1 if u == slice_start else 0)
            if c2 >= fail:
                continue
            q2 = trans[q, byte_class[b]]
            if q2 < 0:
                fail = c2
                continue
            k2 = (q2 * n_u + u2) * span + c2
            h = k2 % cap
            while keys[h] != -1 and keys[h] != k2:
                h = (h + 1) % cap
            if keys[h] == -1:
                if used >= cap // 2:
                    return 0
                keys[h] = k2
                used += 1
                top += 1
                stack[top] = k2
    return fail - 1


def json_string_slice(vocab) -> Slice:
    cache = vocab.__dict__.setdefault("_structgen_slices", {})
    sl = cache.get("json_string_body")
    if sl is None:
        sl = cache["json_string_body"] = build_slice("json_string_body", JSON_STRING_BODY, vocab)
    return sl


@njit(cache=True)
def _parents(t_end):
    """parent[v] of every trie node (DFS pre-order: the open ancestors form a stack)."""
    n = t_end.shape[0]
    parent = np.full(n, -1, np.int64)
    stack = np.empty(n + 1, np.int64)
    top = 0
    stack[0] = 0
    for v in range(1, n):
        while t_end[stack[top]] <= v:
            top -= 1
        parent[v] = stack[top]
        top += 1
        stack[top] = v
    return parent


@njit(cache=True)
def _mark_nodes(t_byte, t_end, trans, start, in_slice, skip):
    n = t_byte.shape[0]
    state = np.full(n, -1, np.int32)
    state[0] = start
    parent = _parents(t_end)
    for v in range(1, n):
        ps = state[parent[v]]
        if ps >= 0:
            state[v] = trans[ps, t_byte[v]]
        in_slice[v] = state[v] >= 0
    # a subtree is all-in iff no node inside it is out of the slice: count outs with a prefix sum
    outs = np.zeros(n + 1, np.int64)
    for v in range(n):
        outs[v + 1] = outs[v] + (0 if (v == 0 or in_slice[v]) else 1)
    for v in range(1, n):
        if in_slice[v] and outs[t_end[v]] - outs[v] == 0:
            skip[v] = 1


@njit(cache=True)
def contains_slice(trans, byte_class, s, slice_trans, slice_start):
    """Every string of the slice can be consumed from grammar state s by byte moves.

    Explores the (grammar state, slice state) pairs reachable from (s, start); gives up
    (returns False, which only costs speed) beyond a fixed budget of pairs.
    """
    cap = 8192
    keys = np.full(cap, -1, np.int64)
    n_u = slice_trans.shape[0]
    stack = np.empty(cap, np.int64)
    top = 0
    k0 = s * n_u + slice_start
    stack[0] = k0
    keys[k0 % cap] = k0
    used = 1
    while top >= 0:
        k = stack[top]
        top -= 1
        q = k // n_u
        u = k % n_u
        for b in range(256):
            u2 = slice_trans[u, b]
            if u2 < 0:
                continue
            q2 = trans[q, byte_class[b]]
            if q2 < 0:
                return False
            k2 = q2 * n_u + u2
            h = k2 % cap
            while keys[h] != -1 and keys[h] != k2:
                h = (h + 1) % cap
            if keys[h] == -1:
                if used >= cap // 2:
                    return False
                keys[h] = k2
                used += 1
                top += 1
                stack[top] = k2
    return True
