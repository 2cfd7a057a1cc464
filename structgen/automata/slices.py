"""Vocabulary slices: token sets whose masks are OR-ed in whole instead of walked.

Dense masks (inside a JSON string nearly every token is allowed) would otherwise walk the
whole trie. A slice is a prefix-closed byte language S, here "JSON string body" (any
character except `"`, backslash and U+0000..U+001F, valid UTF-8; a token may stop inside a
character). Per vocabulary we precompute the tokens in S and the trie nodes whose whole subtree
is in S. A grammar state *contains* the slice when every string of S can be consumed from it
by byte moves alone; then its mask is the slice's mask plus a walk of the rest of the trie.

Besides the JSON string body, a state may get a slice of its own character class
(`class_slice`): the characters it loops on, or else the characters it takes, e.g. `[^,"]`
for a `pattern` string with a `maxLength`. Such slices are built on first use and kept per
vocabulary (a few, least recently used first out), so every counting state of that string
and every later schema with the same class share one.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numba import njit

from structgen.automata.fsm import expr_to_dfa
from structgen.grammar.ir import Chars, Repeat, normalize_ranges


BOUNDED_MAX = 32  # bounded slices are kept for up to this many characters
CLASS_SLICES_KEPT = 16  # per vocabulary: character-class slices kept (about 3 MB each for 128k tokens)
MIN_CLASS_CHARS = 8  # a state's class needs this many ASCII characters to be worth a slice
STABLE_DEPTH = 4  # a state's guessed class: the characters it takes along this many of them


NEVER = 1 << 30  # a skip key no threshold reaches


@dataclass(frozen=True)
class Slice:
    """A slice for one vocabulary. The trie walk skips node n's subtree when
    `key[n] <= threshold` for the key array and threshold of a `skip_rule`."""
    name: str
    trans: np.ndarray       # int32 [n_slice_states, 256], -1 = leaves the slice
    start: int
    kinds: np.ndarray       # int64 [256]: the automaton's byte classes
    token_mask: np.ndarray  # uint32 [W]
    in_chars: np.ndarray    # int32 [n_nodes]: most characters a path in the subtree starts, when the
    #                         whole subtree is in the slice; NEVER otherwise
    exit_key: np.ndarray    # int32 [n_nodes]: minus the fewest characters a path in the subtree starts
    #                         before it leaves the slice (-NEVER: none leaves)
    tok_chars: np.ndarray   # int32 [V]: characters a slice token starts (-1: not in the slice)
    # int32 [k]: the nodes where a path first leaves the slice, all at a character boundary
    # (pre-order). A state that every slice string leads back to walks just these subtrees:
    # what lies above them is slice text, all in `token_mask`. None when some path leaves
    # the slice inside a character.
    exit_roots: np.ndarray | None
    # the tokens that leave the slice, by what follows their slice text (`SuffixTrie`); None
    # when exit_roots is, or when their subtrees are too big to be worth it
    suffixes: "SuffixTrie | None" = None
    _bounded: dict = field(default_factory=dict, compare=False)

    def skip_rule(self, k: int = -1, exact: bool = False) -> tuple[np.ndarray, int]:
        """(key, threshold): subtrees all in the slice (k = -1: of any length; else of at most
        k characters: all in `bounded(k)`); with `exact` (the state takes no slice string of
        k + 1 characters) also those whose paths all start more than k characters before
        leaving the slice: all rejected."""
        if k < 0:
            return self.in_chars, NEVER - 1
        if exact:
            return self.exit_key, -(k + 1)
        return self.in_chars, k

    def bounded(self, k: int) -> np.ndarray:
        """The mask of the slice strings that start at most k characters (a token may end
        inside its last one): what a length-bounded string state accepts in one go."""
        k = min(k, BOUNDED_MAX)
        mask = self._bounded.get(k)
        if mask is None:
            take = (self.tok_chars >= 0) & (self.tok_chars <= k)
            mask = self._bounded[k] = _pack(take, self.token_mask.shape[0])
        return mask


def _pack(flags: np.ndarray, n_words: int) -> np.ndarray:
    """Boolean per token id -> packed uint32 mask words."""
    flags = np.concatenate([flags, np.zeros(32 * n_words - flags.shape[0], dtype=bool)])
    return np.packbits(flags, bitorder="little").view("<u4").astype(np.uint32)


JSON_STRING_BODY = Chars(normalize_ranges([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, 0x10FFFF)]))


def build_slice(name: str, char_set: Chars, vocab) -> Slice:
    trans, start, kinds = class_automaton(char_set.ranges)
    trie = vocab.trie
    parent, depth_chars, node_chars = _trie_chars(vocab)
    in_chars = np.empty(trie.n_nodes, dtype=np.int32)
    exit_key = np.empty(trie.n_nodes, dtype=np.int32)
    tok_chars = np.full(vocab.size, -1, dtype=np.int32)
    boundary_exit = np.zeros(trie.n_nodes, dtype=np.bool_)
    mid_exits = _slice_arrays(trie.byte, parent, depth_chars, node_chars, trie.tok_start, trie.tok_ids, trans, start,
                              in_chars, exit_key, tok_chars, boundary_exit)
    roots = None if mid_exits else np.flatnonzero(boundary_exit).astype(np.int32)
    return Slice(name, trans, start, kinds, _pack(tok_chars >= 0, vocab.n_words), in_chars, exit_key, tok_chars,
                 roots, None if roots is None else suffix_trie(trie, roots))


@dataclass(frozen=True, eq=False)
class SuffixTrie:
    """The tokens that leave a slice, keyed by their text from the first byte outside it: a
    trie over those suffixes (node 0 the root), each node holding the tokens that end there.
    A state that every slice string leads back to accepts such a token exactly when it
    accepts the token's suffix, so its walk runs over this small trie (the JSON string body
    of a 128k vocabulary: a few thousand nodes, most tokens ending in one of a few hundred
    suffixes such as `",`) instead of one subtree per exit node. Same arrays as a `TokenTrie`."""
    byte: np.ndarray         # uint8[n]
    subtree_end: np.ndarray  # int32[n]
    tok_start: np.ndarray    # int32[n + 1]
    tok_ids: np.ndarray      # int32[...]
    root_children: np.ndarray  # int32[k]


SUFFIX_TRIE_MAX_NODES = 1 << 16  # exit subtrees bigger than this (a class that most tokens leave) get none


def suffix_trie(trie, exit_roots: np.ndarray) -> SuffixTrie | None:
    size = int(np.sum(trie.subtree_end[exit_roots] - exit_roots)) if exit_roots.shape[0] else 0
    if not size or size > SUFFIX_TRIE_MAX_NODES:
        return None
    byte, end, tok_start, tok_ids, n = _suffix_trie(trie.byte, trie.subtree_end, trie.tok_start, trie.tok_ids,
                                                   exit_roots, size + 1)
    if n < 0:
        return None
    children, v = [], 1
    while v < n:
        children.append(v)
        v = int(end[v])
    return SuffixTrie(byte, end, tok_start, tok_ids, np.array(children, dtype=np.int32))


@njit(cache=True)
def _suffix_trie(t_byte, t_end, t_tok_start, t_tok_ids, exit_roots, cap):
    """Merge the subtrees under `exit_roots` into one trie (equal paths from the exit byte on
    become one node), then lay it out in pre-order. Returns (byte, subtree_end, tok_start,
    tok_ids, n_nodes)."""
    # hash-consed nodes in creation order: key parent * 256 + byte
    hsize = 1
    while hsize < 2 * cap:
        hsize *= 2
    keys = np.full(hsize, -1, np.int64)
    vals = np.empty(hsize, np.int32)
    par = np.full(cap, -1, np.int32)
    byt = np.zeros(cap, np.uint8)
    n_tok = np.zeros(cap, np.int32)
    n = 1
    total = 0
    for e in exit_roots:
        total += t_end[e] - e
    owner = np.empty(total, np.int32)  # suffix node of each real node, in visiting order
    stack_end = np.empty(1024, np.int64)  # open ancestors (a token's bytes at most)
    stack_sfx = np.empty(1024, np.int32)
    k = 0
    for e in exit_roots:
        top = 0
        for v in range(e, t_end[e]):
            while top > 0 and stack_end[top - 1] <= v:
                top -= 1
            p = stack_sfx[top - 1] if top > 0 else 0
            key = np.int64(p) * 256 + t_byte[v]
            h = (key * 0x9E3779B1) & (hsize - 1)
            while keys[h] != -1 and keys[h] != key:
                h = (h + 1) & (hsize - 1)
            if keys[h] == -1:
                keys[h] = key
                vals[h] = n
                par[n] = p
                byt[n] = t_byte[v]
                n += 1
            x = vals[h]
            owner[k] = x
            k += 1
            n_tok[x] += t_tok_start[v + 1] - t_tok_start[v]
            if top == stack_end.shape[0]:
                return byt, par, n_tok, owner, -1
            stack_end[top] = t_end[v]
            stack_sfx[top] = x
            top += 1
    # children lists (creation order), then a pre-order numbering
    n_child = np.zeros(n + 1, np.int32)
    for x in range(1, n):
        n_child[par[x] + 1] += 1
    first = np.cumsum(n_child)
    fill = first.copy()
    kids = np.empty(max(n - 1, 1), np.int32)
    for x in range(1, n):
        kids[fill[par[x]]] = x
        fill[par[x]] += 1
    new_id = np.empty(n, np.int32)
    order = np.empty(n, np.int32)
    stack = np.empty(n, np.int32)
    sp = 0
    stack[sp] = 0
    sp += 1
    cnt = 0
    while sp > 0:
        sp -= 1
        x = stack[sp]
        new_id[x] = cnt
        order[cnt] = x
        cnt += 1
        for j in range(first[x + 1] - 1, first[x] - 1, -1):  # first child on top
            stack[sp] = kids[j]
            sp += 1
    end = np.empty(n, np.int32)  # subtree ends: a node's own, raised by its children's
    for i in range(n):
        end[i] = i + 1
    for i in range(n - 1, 0, -1):  # children come after their parent
        pi = new_id[par[order[i]]]
        if end[i] > end[pi]:
            end[pi] = end[i]
    out_byte = np.zeros(n, np.uint8)
    tok_start = np.zeros(n + 1, np.int32)
    for i in range(n):
        out_byte[i] = byt[order[i]]
        tok_start[i + 1] = tok_start[i] + n_tok[order[i]]
    tok_ids = np.empty(tok_start[n], np.int32)
    pos = tok_start[:n].copy()
    k = 0
    for e in exit_roots:
        for v in range(e, t_end[e]):
            i = new_id[owner[k]]
            k += 1
            for j in range(t_tok_start[v], t_tok_start[v + 1]):
                tok_ids[pos[i]] = t_tok_ids[j]
                pos[i] += 1
    return out_byte, end, tok_start, tok_ids, n


@njit(cache=True)
def _slice_arrays(t_byte, parent, depth_chars, node_chars, tok_start, tok_ids, trans, start,
                  in_chars, exit_key, tok_chars, boundary_exit):
    """The trie arrays of a slice, in two passes over the nodes (pre-order: a parent comes
    before its children). Forward: the slice state of every node's path (-1: the path left the
    slice), its tokens' characters, and the characters started before the path left the
    slice (NEVER: it did not); backward: that minimum over each subtree. A subtree no path
    of which leaves the slice is all in it: `in_chars` is then its longest path's characters.
    Marks the nodes where a path leaves the slice at a character boundary; returns how many
    leave it inside a character."""
    n = t_byte.shape[0]
    state = np.empty(n, np.int32)
    state[0] = start
    exit_key[0] = NEVER
    mid_exits = 0
    for v in range(1, n):
        p = parent[v]
        ps = state[p]
        q = trans[ps, t_byte[v]] if ps >= 0 else -1
        state[v] = q
        if q < 0 and ps >= 0:
            if ps == start:
                boundary_exit[v] = True
            else:
                mid_exits += 1
        if q >= 0:
            for k in range(tok_start[v], tok_start[v + 1]):
                tok_chars[tok_ids[k]] = depth_chars[v]
        # on the path to v itself: the path left the slice at v or before
        exit_key[v] = exit_key[p] if exit_key[p] < NEVER or q >= 0 else depth_chars[p]
    for v in range(n - 1, 0, -1):
        p = parent[v]
        if exit_key[v] < exit_key[p]:
            exit_key[p] = exit_key[v]
    for v in range(n):
        e = exit_key[v]
        in_chars[v] = node_chars[v] if e == NEVER else NEVER
        exit_key[v] = -e
    return mid_exits


def _trie_chars(vocab) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(parent, depth_chars, node_chars), once per vocabulary: per trie node, characters
    started on the path to it (a UTF-8 lead byte or an ASCII byte starts one) and the most
    started on any path through its subtree. None of them depend on the slice."""
    cache = vocab.__dict__.setdefault("_structgen_slices", {})
    got = cache.get("trie_chars")
    if got is None:
        trie = vocab.trie
        parent = _parents(trie.subtree_end)
        depth_chars = np.zeros(trie.n_nodes, dtype=np.int32)
        node_chars = np.zeros(trie.n_nodes, dtype=np.int32)
        _count_chars(trie.byte, parent, depth_chars, node_chars)
        got = cache["trie_chars"] = (parent, depth_chars, node_chars)
    return got


@njit(cache=True)
def _count_chars(t_byte, parent, depth_chars, node_chars):
    n = t_byte.shape[0]
    for v in range(1, n):
        b = t_byte[v]
        depth_chars[v] = depth_chars[parent[v]] + (0 if 0x80 <= b < 0xC0 else 1)
    node_chars[:] = depth_chars
    for v in range(n - 1, 0, -1):  # subtree maxima; pre-order: children come after their parent
        p = parent[v]
        if node_chars[v] > node_chars[p]:
            node_chars[p] = node_chars[v]


@njit(cache=True)
def bounded_contains(trans, byte_class, final, call_ptr, s, slice_trans, slice_start, kmax, reps):
    """(k, exact): the largest k <= kmax such that every string of the slice that starts at
    most k characters can be consumed from grammar state s by byte moves (k = 0: nothing
    gained), and whether s takes none that starts k + 1 characters in any way -- no byte
    move, no end of its frame (a final state) and no call on the way (a maxLength string:
    then every longer slice string is rejected). Gives up, (0, False), beyond a budget.
    `reps`: one byte per class of both automata (`joint_representatives`)."""
    cap = 1 << 13
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
    most = 0  # most characters started by a slice string the state can take
    plain = True  # no final state and no call met
    while top >= 0:
        key = stack[top]
        top -= 1
        c = key % span
        qu = key // span
        q = qu // n_u
        u = qu % n_u
        if final[q] or call_ptr[q] != call_ptr[q + 1]:
            plain = False
        for i in range(reps.shape[0]):
            b = reps[i]
            u2 = slice_trans[u, b]
            if u2 < 0:
                continue
            c2 = c + (1 if u == slice_start else 0)
            if c2 > fail:
                continue
            q2 = trans[q, byte_class[b]]
            if q2 < 0:
                fail = min(fail, c2)
                continue
            most = max(most, c2)
            if c2 >= fail:
                continue
            k2 = (q2 * n_u + u2) * span + c2
            h = k2 % cap
            while keys[h] != -1 and keys[h] != k2:
                h = (h + 1) % cap
            if keys[h] == -1:
                if used >= cap // 2:
                    return 0, False
                keys[h] = k2
                used += 1
                top += 1
                stack[top] = k2
    return fail - 1, plain and most < fail


def json_string_slice(vocab) -> Slice:
    cache = vocab.__dict__.setdefault("_structgen_slices", {})
    sl = cache.get("json_string_body")
    if sl is None:
        sl = cache["json_string_body"] = build_slice("json_string_body", JSON_STRING_BODY, vocab)
    return sl


_NON_ASCII = ((0x80, 0xD7FF), (0xE000, 0x10FFFF))


WORTH_A_SLICE = 1  # profile_state flags
NEAR_LOOP = 2
HAS_CLASS = 4
CLASS_LOOPS = 8
TAKES_NON_ASCII = 16


@njit(cache=True)
def profile_state(trans, byte_class, s, min_chars, depth, cls):
    """What a state's byte row says about slices, as flags. WORTH_A_SLICE: s takes at least
    `min_chars` printable ASCII characters (else the walk prunes at the first byte anyway).
    NEAR_LOOP: s, or the state most of them lead to, loops on `min_chars` of them (it may
    take a whole slice). HAS_CLASS: `cls` (bool[128], filled) holds a guessed class -- the
    largest group of characters that lead s to one same state (the ones it loops on: then
    CLASS_LOOPS; a counting state's next count), narrowed to those every state reached by
    up to depth - 1 of them still takes (an email's local part: letters, not "." or "@").
    TAKES_NON_ASCII: s takes every UTF-8 lead byte. `"` and backslash never join a class (in
    a JSON string they end it or start an escape). Only guesses: `contains_slice` and
    `bounded_contains` decide exactly whether s takes a slice."""
    nxt = np.full(128, -1, np.int64)
    n_print = 0
    for b in range(128):
        q = trans[s, byte_class[b]]
        if q >= 0 and b != 0x22 and b != 0x5C:
            nxt[b] = q
            if 0x20 <= b < 0x7F:
                n_print += 1
    if n_print < min_chars:
        return 0
    flags = WORTH_A_SLICE
    # the most common next state, and how many characters lead there
    target = -1
    best = 0
    for b in range(128):
        if nxt[b] < 0:
            continue
        n = 0
        for b2 in range(128):
            if nxt[b2] == nxt[b]:
                n += 1
        if n > best:
            best, target = n, nxt[b]
    n_loop = 0
    for b in range(0x20, 0x7F):
        if trans[target, byte_class[b]] == target:
            n_loop += 1
    if n_loop >= min_chars or target == s:
        flags |= NEAR_LOOP
    for b in range(128):
        cls[b] = nxt[b] == target
    _stable_class(trans, byte_class, s, cls, depth)
    if cls.sum() >= min_chars:
        flags |= HAS_CLASS
        if target == s:
            flags |= CLASS_LOOPS
    wide = True
    for b in range(0xC2, 0xF5):
        if trans[s, byte_class[b]] < 0:
            wide = False
            break
    if wide:
        flags |= TAKES_NON_ASCII
    return flags


def class_candidates(cls: np.ndarray, flags: int) -> list[tuple[tuple[int, int], ...]]:
    """The guessed class of `profile_state` as code-point ranges, widest first."""
    if not flags & HAS_CLASS:
        return []
    ranges: list[tuple[int, int]] = []
    lo = -1
    for b, on in enumerate(cls.tolist() + [False]):
        if on and lo < 0:
            lo = b
        elif not on and lo >= 0:
            ranges.append((lo, b - 1))
            lo = -1
    if flags & TAKES_NON_ASCII:
        return [normalize_ranges(ranges + list(_NON_ASCII)), tuple(ranges)]
    return [tuple(ranges)]


@njit(cache=True)
def _stable_class(trans, byte_class, s, cls, depth):
    """Shrink the ASCII class `cls` (bool[128], in place) to a fixpoint: drop every character
    some state reachable from s by at most depth - 1 characters of the class rejects."""
    cap = 1024  # states kept; beyond that the guess stays as it is
    reach = np.empty(cap, np.int64)
    seen = np.full(2 * cap, -1, np.int64)  # open addressing over reach
    while True:
        seen[:] = -1
        reach[0] = s
        seen[s % (2 * cap)] = s
        n = 1
        lo = 0
        for _ in range(depth - 1):
            hi = n
            for i in range(lo, hi):
                for b in range(128):
                    if not cls[b]:
                        continue
                    q = trans[reach[i], byte_class[b]]
                    if q < 0:
                        continue
                    h = q % (2 * cap)
                    while seen[h] != -1 and seen[h] != q:
                        h = (h + 1) % (2 * cap)
                    if seen[h] == -1:
                        if n == cap:
                            return
                        seen[h] = q
                        reach[n] = q
                        n += 1
            lo = hi
        changed = False
        for b in range(128):
            if cls[b]:
                for i in range(n):
                    if trans[reach[i], byte_class[b]] < 0:
                        cls[b] = False
                        changed = True
                        break
        if not changed:
            return


def joint_representatives(byte_class: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """One byte per class of the joint partition of the bytes by a grammar's byte classes
    and a slice automaton's (`kinds`): the product searches step one byte per class."""
    return np.unique(byte_class.astype(np.int64) * 256 + kinds, return_index=True)[1].astype(np.int64)


@lru_cache(maxsize=256)
def class_automaton(ranges: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, int, np.ndarray]:
    """(trans [n, 256], start, byte classes) of the byte DFA for `class*`, the slice automaton
    alone (cheap): enough to test a state against it before the trie arrays are built."""
    d = expr_to_dfa(Repeat(Chars(ranges), 0, None), max_states=64)
    return (np.ascontiguousarray(d.trans[:, d.byte_class].astype(np.int32)), int(d.start),
            np.ascontiguousarray(d.byte_class.astype(np.int64)))


def class_slice(vocab, ranges: tuple[tuple[int, int], ...]) -> Slice:
    """The slice of one character class for this vocabulary, built on first use."""
    cache = vocab.__dict__.setdefault("_structgen_class_slices", OrderedDict())
    sl = cache.get(ranges)
    if sl is not None:
        cache.move_to_end(ranges)
        return sl
    sl = cache[ranges] = build_slice(f"class{ranges}", Chars(ranges), vocab)
    while len(cache) > CLASS_SLICES_KEPT:
        cache.popitem(last=False)
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


SLICE_CONTAINED = 1  # contains_slice results (bits)
SLICE_LOOPS_BACK = 2


@njit(cache=True)
def contains_slice(trans, byte_class, final, call_ptr, s, slice_trans, slice_start, reps):
    """SLICE_CONTAINED when every string of the slice can be consumed from grammar state s by
    byte moves, plus SLICE_LOOPS_BACK when each whole character of them leads back to s
    through states that neither end their frame nor call (slice text then keeps a walk in
    one configuration); 0 otherwise.

    Explores the (grammar state, slice state) pairs reachable from (s, start), one byte per
    joint class (`reps`); gives up (returns 0, which only costs speed) beyond a fixed budget
    of pairs.
    """
    loops_back = not final[s] and call_ptr[s] == call_ptr[s + 1]
    cap = 1024
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
        for i in range(reps.shape[0]):
            b = reps[i]
            u2 = slice_trans[u, b]
            if u2 < 0:
                continue
            q2 = trans[q, byte_class[b]]
            if q2 < 0:
                return 0
            if final[q2] or call_ptr[q2] != call_ptr[q2 + 1]:
                loops_back = False
            k2 = q2 * n_u + u2
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
                if u2 == slice_start and q2 != s:
                    loops_back = False
    return SLICE_CONTAINED | (SLICE_LOOPS_BACK if loops_back else 0)
