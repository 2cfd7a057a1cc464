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
        items = sorted((b, i) for i, b in enumerate(token_bytes) if b)
        # Build by walking tokens in sorted order: shared prefixes become shared nodes.
        byte = [0]
        depth = [0]
        parent = [-1]
        toks_at: list[list[int]] = [[]]
        path: list[int] = [0]  # path[d] = node at depth d for the previous token
        prev = b""
        for b, tid in items:
            lcp = 0
            m = min(len(prev), len(b))
            while lcp < m and prev[lcp] == b[lcp]:
                lcp += 1
            del path[lcp + 1:]
            for d in range(lcp, len(b)):
                node = len(byte)
                byte.append(b[d])
                depth.append(d + 1)
                parent.append(path[d])
                toks_at.append([])
                path.append(node)
            toks_at[path[len(b)]].append(tid)
            prev = b
        n = len(byte)
        byte_a = np.array(byte, dtype=np.uint8)
        depth_a = np.array(depth, dtype=np.int32)
        parent_a = np.array(parent, dtype=np.int64)
        subtree_end = np.arange(1, n + 1, dtype=np.int32)
        sub_bytes = np.zeros((n, 4), dtype=np.uint64)
        # Nodes are created in DFS pre-order, so children come after parents: fold backwards.
        for node in range(n - 1, 0, -1):
            p = parent_a[node]
            if subtree_end[node] > subtree_end[p]:
                subtree_end[p] = subtree_end[node]
            sub_bytes[p] |= sub_bytes[node]
            bb = int(byte_a[node])
            sub_bytes[p, bb >> 6] |= np.uint64(1 << (bb & 63))
        counts = np.array([len(t) for t in toks_at], dtype=np.int32)
        tok_start = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=tok_start[1:])
        tok_ids = np.array([t for ts in toks_at for t in ts], dtype=np.int32)
        return cls(byte_a, depth_a, subtree_end, tok_start, tok_ids, sub_bytes)
