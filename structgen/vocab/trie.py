"""Flat token trie in DFS order, the layout numba kernels walk.

Node 0 is the root (empty prefix). Node n > 0 is reached from its parent by byte `byte[n]`;
its subtree is the contiguous node range `[n, subtree_end[n])`, so a rejected byte skips the
whole subtree with one jump. Children of n are n+1, then `subtree_end` of each child in turn.
Tokens whose bytes end at node n are `tok_ids[tok_start[n]:tok_start[n + 1]]` (several ids can
share the same bytes). Ids with no bytes (special tokens, padding) are not in the trie.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _byte_order(toks: list[bytes], lens: np.ndarray) -> np.ndarray:
    """Stable argsort of `toks` by bytes (equal bytes keep their order), mostly in numpy.

    Tokens are zero-padded to whole 8-byte chunks read as big-endian uint64, so comparing
    chunks compares bytes. Sort by the first chunk, then re-sort only the rows still tied, one
    chunk at a time; rows equal up to padding differ in trailing NULs, so length settles them.
    """
    n = len(toks)
    width = -(-int(lens.max()) // 8) * 8
    if n * width > 1 << 27:  # pathological token lengths: avoid a huge padded matrix
        return np.array(sorted(range(n), key=toks.__getitem__), dtype=np.int64)
    chunks = np.array(toks, dtype=f"S{width}").view(">u8").reshape(n, width // 8)
    n_chunks = width // 8
    first = chunks[:, 0].astype(np.uint64)
    order = np.argsort(first, kind="stable")
    key = first[order]
    group = np.concatenate(([0], np.cumsum(key[1:] != key[:-1])))
    pos = np.flatnonzero(np.bincount(group)[group] > 1)  # sorted positions still tied
    group = group[pos]
    c = 1
    while pos.size:
        sub = order[pos]
        last = c >= n_chunks or int(lens[sub].max()) <= 8 * c
        key = lens[sub] if last else chunks[sub, c].astype(np.uint64)
        perm = np.lexsort((key, group))
        order[pos] = sub[perm]
        if last:
            break
        key = key[perm]
        group = np.concatenate(([0], np.cumsum((group[1:] != group[:-1]) | (key[1:] != key[:-1]))))
        still = np.bincount(group)[group] > 1
        pos, group = pos[still], group[still]
        c += 1
    return order


@dataclass(frozen=True)
class TokenTrie:
    byte: np.ndarray         # uint8[n_nodes]
    depth: np.ndarray        # int32[n_nodes]
    subtree_end: np.ndarray  # int32[n_nodes]
    tok_start: np.ndarray    # int32[n_nodes + 1]
    tok_ids: np.ndarray      # int32[n_tokens_in_trie]
    # subtree_bytes[n] = 256-bit set (4 x uint64) of every byte on any path below n (exclusive of n's own byte)
    subtree_bytes: np.ndarray  # uint64[n_nodes, 4]

    @property
    def n_nodes(self) -> int:
        return int(self.byte.shape[0])

    @classmethod
    def build(cls, token_bytes: list[bytes | None]) -> "TokenTrie":
        """Build the trie with numpy, one pass per depth level (no per-node Python loop).

        Tokens sorted by bytes make the DFS pre-order explicit: token k adds one new node per
        byte past its longest common prefix (LCP) with token k-1, so node ids, depths and bytes
        are closed-form; parents, subtree ends and subtree byte sets then follow level by level.
        A 128k-token vocabulary builds in well under a second this way.
        """
        toks = [b for b in token_bytes if b]
        n_tok = len(toks)
        if n_tok == 0:
            return cls(np.zeros(1, np.uint8), np.zeros(1, np.int32), np.ones(1, np.int32),
                       np.zeros(2, np.int32), np.zeros(0, np.int32), np.zeros((1, 4), np.uint64))
        keep = np.fromiter((i for i, b in enumerate(token_bytes) if b), dtype=np.int64, count=n_tok)
        lens = np.fromiter(map(len, toks), dtype=np.int64, count=n_tok)
        flat = np.frombuffer(b"".join(toks), dtype=np.uint8)
        offs = np.zeros(n_tok, dtype=np.int64)
        np.cumsum(lens[:-1], out=offs[1:])
        order = _byte_order(toks, lens)
        ids = keep[order].astype(np.int32)
        lens = lens[order]
        offs = offs[order]

        # LCP of each token with its predecessor: advance one byte position per round, only
        # for the pairs still equal so far (total work ~ sum of LCPs).
        lcp = np.zeros(n_tok, dtype=np.int64)
        active = np.arange(1, n_tok, dtype=np.int64)
        d = 0
        while active.size:
            active = active[(lens[active] > d) & (lens[active - 1] > d)]
            active = active[flat[offs[active] + d] == flat[offs[active - 1] + d]]
            lcp[active] += 1
            d += 1

        # New nodes: token k contributes lens[k] - lcp[k] nodes, consecutively, in pre-order.
        counts = lens - lcp
        n = 1 + int(counts.sum())
        block_end = 1 + np.cumsum(counts)          # one past token k's last new node
        tk = np.repeat(np.arange(n_tok, dtype=np.int64), counts)
        within = np.arange(n - 1, dtype=np.int64) - np.repeat(block_end - counts - 1, counts)
        depth = np.zeros(n, dtype=np.int64)
        depth[1:] = lcp[tk] + within + 1
        byte = np.zeros(n, dtype=np.uint8)
        byte[1:] = flat[offs[tk] + depth[1:] - 1]

        # Terminal node of each token: the last new node, or (duplicate bytes, no new node)
        # the predecessor's terminal. Terminals are non-decreasing in sorted order.
        term = np.where(counts > 0, block_end - 1, 0)
        np.maximum.accumulate(term, out=term)
        tok_start = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(term, minlength=n), out=tok_start[1:])

        # Group nodes by depth (each group ascending in node id).
        by_depth = np.argsort(depth, kind="stable")
        level_bounds = np.concatenate(([0], np.cumsum(np.bincount(depth))))
        levels = [by_depth[level_bounds[k]:level_bounds[k + 1]] for k in range(len(level_bounds) - 1)]

        # Parent = the last node one level up that precedes the node in pre-order; keep its
        # position inside the level above too, to fold level arrays without global gathers.
        parent = np.full(n, -1, dtype=np.int64)
        parent_pos: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        for k in range(1, len(levels)):
            up = levels[k - 1]
            pos = np.searchsorted(up, levels[k], side="left") - 1
            parent_pos.append(pos)
            parent[levels[k]] = up[pos]

        # Bottom-up fold, deepest level first. Within a level, siblings are contiguous and
        # ascending, so each parent's children form one run; its last child ends the subtree.
        subtree_end = np.arange(1, n + 1, dtype=np.int64)
        sub_bytes = np.zeros((n, 4), dtype=np.uint64)
        words = np.arange(4, dtype=np.uint64)
        below = np.zeros((levels[-1].size, 4), dtype=np.uint64)  # subtree bytes of this level
        for k in range(len(levels) - 1, 0, -1):
            nodes = levels[k]
            sub_bytes[nodes] = below
            pos = parent_pos[k]
            run_start = np.flatnonzero(np.concatenate(([True], pos[1:] != pos[:-1])))
            run_last = np.concatenate((run_start[1:], [nodes.size])) - 1
            heads = parent[nodes[run_start]]
            subtree_end[heads] = subtree_end[nodes[run_last]]
            b = byte[nodes].astype(np.uint64)
            own = np.where((b >> np.uint64(6))[:, None] == words,
                           np.left_shift(np.uint64(1), b & np.uint64(63))[:, None], np.uint64(0))
            above = np.zeros((levels[k - 1].size, 4), dtype=np.uint64)
            above[pos[run_start]] = np.bitwise_or.reduceat(own | below, run_start, axis=0)
            below = above
        sub_bytes[0] = below[0]

        return cls(byte, depth.astype(np.int32), subtree_end.astype(np.int32), tok_start, ids, sub_bytes)
