"""Numba kernels: advance configuration sets by a byte, and walk the token trie.

These are the only JIT-compiled functions of the package. They are compiled once (cache=True)
and are generic over grammars: every grammar is data (the tables of `tables.PDATables`).

Configurations are (state, stack pointer). Stacks are persistent linked lists in an arena
(`arena_ret[p]` = return state, `arena_par[p]` = the rest). Two pointer values are special:
FRAME (-1) = "the frame we started in, parent unknown" (used when precomputing a state's mask)
and BOTTOM (-2) = the stack is empty: the start rule ended, only the end of input may follow.
"""
from __future__ import annotations

import numpy as np
from numba import njit

FRAME = -1
BOTTOM = -2

FLAG_EXIT = 1       # a configuration popped its unknown frame (context-dependent tokens)
FLAG_END = 2        # a configuration can end the whole input here
FLAG_FUEL = 4       # the closure outgrew its budget (ambiguity explosion)
FLAG_EXITS_FULL = 8  # more exit nodes than the buffer holds (use a full walk with real stacks)


@njit(cache=True, nogil=True)
def advance(trans, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow,
            in_s, in_p, in_off, n_in, c,
            out_s, out_p, out_off,
            arena_ret, arena_par, arena_hash, arena_n,
            work_s, work_p, fuel):
    """Epsilon-close the input configurations, then consume one byte of class `c`.

    c == -1 means "no byte": only flags are computed (FLAG_END: input may end here).
    Returns (n_out, flags, arena_n). Outputs are deduplicated.
    """
    if n_in == 1 and c >= 0:
        s0 = in_s[in_off]
        if call_ptr[s0] == call_ptr[s0 + 1] and (not final[s0] or in_p[in_off] == BOTTOM
                                                 or not rfollow[rule_of[s0], c]):
            t0 = trans[s0, c]
            if t0 < 0:
                return 0, 0, arena_n
            out_s[out_off] = t0
            out_p[out_off] = in_p[in_off]
            return 1, 0, arena_n
    n_work = 0
    for i in range(n_in):
        work_s[n_work] = in_s[in_off + i]
        work_p[n_work] = in_p[in_off + i]
        n_work += 1
    flags = 0
    n_out = 0
    head = 0
    cap = work_s.shape[0]
    arena_cap = arena_ret.shape[0]
    while head < n_work:
        s = work_s[head]
        p = work_p[head]
        head += 1
        if c >= 0:
            t = trans[s, c]
            if t >= 0:
                dup = False
                for k in range(n_out):
                    if out_s[out_off + k] == t and out_p[out_off + k] == p:
                        dup = True
                        break
                if not dup:
                    if out_off + n_out >= out_s.shape[0]:
                        return n_out, flags | FLAG_FUEL, arena_n
                    out_s[out_off + n_out] = t
                    out_p[out_off + n_out] = p
                    n_out += 1
        for j in range(call_ptr[s], call_ptr[s + 1]):
            tgt = call_target[j]
            if c >= 0:
                if not (start_ok[tgt, c] or nullable_st[tgt]):
                    continue
            elif not nullable_st[tgt]:
                continue
            if n_work >= cap or n_work >= fuel:
                return n_out, flags | FLAG_FUEL, arena_n
            # hash-consed push: equal stacks get equal pointers, so deduplication sees them
            r = call_ret[j]
            hmask = arena_hash.shape[0] - 1
            h = ((r * 1000003) ^ (p * 7919 + 17)) & hmask
            node = -1
            while True:
                idx = arena_hash[h]
                if idx < 0 or idx >= arena_n:
                    break
                if arena_ret[idx] == r and arena_par[idx] == p:
                    node = idx
                    break
                h = (h + 1) & hmask
            if node < 0:
                if arena_n >= arena_cap or 2 * arena_n >= hmask:
                    return n_out, flags | FLAG_FUEL, arena_n
                arena_ret[arena_n] = r
                arena_par[arena_n] = p
                arena_hash[h] = arena_n
                node = arena_n
                arena_n += 1
            dup = False
            for k in range(n_work):
                if work_s[k] == tgt and work_p[k] == node:
                    dup = True
                    break
            if dup:
                continue
            work_s[n_work] = tgt
            work_p[n_work] = node
            n_work += 1
        if final[s] and (c < 0 or p == BOTTOM or rfollow[rule_of[s], c]):
            if p >= 0:
                rs = arena_ret[p]
                rp = arena_par[p]
                seen = False
                for k in range(n_work):
                    if work_s[k] == rs and work_p[k] == rp:
                        seen = True
                        break
                if not seen:
                    if n_work >= cap or n_work >= fuel:
                        return n_out, flags | FLAG_FUEL, arena_n
                    work_s[n_work] = rs
                    work_p[n_work] = rp
                    n_work += 1
            elif p == FRAME:
                flags |= FLAG_EXIT
            else:
                flags |= FLAG_END
    return n_out, flags, arena_n


@njit(cache=True, nogil=True)
def _intern(src_s, src_p, off, n, memo, sets, pool_s, pool_p, counters, dtab):
    """Id of the configuration set src[off:off+n] in this walk's table (-3: table full)."""
    h = np.uint64(n) * np.uint64(0x9E3779B97F4A7C15)
    for i in range(n):
        h = (h ^ np.uint64(src_s[off + i] * 8191 + src_p[off + i] + 3)) * np.uint64(0x100000001B3)
    m = memo.shape[0]
    slot = np.int64(h & np.uint64(m - 1))
    while memo[slot] != -1:
        sid = memo[slot]
        if sets[sid, 1] == n:
            po = sets[sid, 0]
            same = True
            for i in range(n):
                if pool_s[po + i] != src_s[off + i] or pool_p[po + i] != src_p[off + i]:
                    same = False
                    break
            if same:
                return sid
        slot = (slot + 1) & (m - 1)
    n_sets = counters[0]
    pool_n = counters[1]
    if n_sets >= sets.shape[0] or pool_n + n > pool_s.shape[0] or 2 * n_sets >= m:
        return -3
    for i in range(n):
        pool_s[pool_n + i] = src_s[off + i]
        pool_p[pool_n + i] = src_p[off + i]
    sets[n_sets, 0] = pool_n
    sets[n_sets, 1] = n
    for k in range(dtab.shape[1]):
        dtab[n_sets, k] = -2
    memo[slot] = n_sets
    counters[0] = n_sets + 1
    counters[1] = pool_n + n
    return n_sets


def plain_moves(trans, final, call_ptr, pop_ok):
    """plain[s, c]: trans[s, c] when that byte is a plain DFA move from a lone configuration
    (state s has no calls and cannot end its frame before c), -1 dead, -2 "needs the closure".
    One table lookup per trie node is what keeps single-configuration walks fast."""
    has_calls = call_ptr[1:] != call_ptr[:-1]
    complex_ = has_calls[:, None] | (final[:, None] & pop_ok)
    return np.ascontiguousarray(np.where(complex_, np.int32(-2), trans).astype(np.int32))


@njit(cache=True, nogil=True)
def walk_trie(trans, byte_class, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow, follow,
              plain, t_byte, t_end, t_tok_start, t_tok_ids,
              init_s, init_p, n_init, roots,
              arena_ret, arena_par, arena_hash, arena_n0,
              mask, exit_nodes, fuel, skip_key, skip_thr,
              lvl, cfg_s, cfg_p, work_s, work_p, memo, sets, pool_s, pool_p, dtab, dflag, tmp_s, tmp_p, stats):
    """Depth-first walk of the trie subtrees rooted at `roots`, starting from the given configs.

    Sets the bit of every token whose bytes can be consumed. Records in `exit_nodes` every node
    whose byte can only be consumed after the starting frame ends (a FRAME pop) and that the
    frame's FOLLOW set allows. Subtrees with `skip_key[n] <= skip_thr` are not walked: a
    vocabulary slice decided them beforehand (its tokens OR-ed in, the rest rejected).

    A level holds either one configuration (cfg_s[lv], cfg_p[lv]; plain DFA moves are taken
    directly) or the id of an interned configuration set. Steps of sets are memoized in
    `dtab[set, class]` (-2 unknown, -1 dead): a DFA over configuration sets built lazily
    during the walk. Stacks are hash-consed and the arena is never truncated during a walk, so
    equal sets are equal arrays and many tokens share one closure computation.
    Returns (n_exits, flags).
    """
    counters = np.zeros(2, np.int64)
    memo_ready = False
    arena_top = arena_n0
    # Per level: lvl[lv, 0] set id (-1: the lone configuration cfg_s/cfg_p[lv]), lvl[lv, 2] end
    # of the subtree being walked. Children are visited in DFS order: `child` only moves forward
    # (to child + 1 when descending, to t_end[child] when skipping a subtree).
    n_exits = 0
    flags_all = 0
    if n_init == 1:
        cfg_s[0] = init_s[0]
        cfg_p[0] = init_p[0]
        lvl[0, 0] = -1
    else:
        memo.fill(-1)
        memo_ready = True
        sid = _intern(init_s, init_p, 0, n_init, memo, sets, pool_s, pool_p, counters, dtab)
        if sid < 0:
            return 0, FLAG_FUEL
        lvl[0, 0] = sid
    use_skip = skip_key.shape[0] > 0
    n_roots = roots.shape[0]
    if n_roots == 0:
        return 0, 0
    next_root = 1
    child = roots[0]
    lvl[0, 2] = t_end[child]
    lv = 0
    while True:
        if child >= lvl[lv, 2]:
            if lv > 0:
                lv -= 1
                continue
            if next_root >= n_roots:
                break
            child = roots[next_root]
            next_root += 1
            lvl[0, 2] = t_end[child]
        if use_skip and skip_key[child] <= skip_thr:
            child = t_end[child]
            continue
        c = byte_class[t_byte[child]]
        sid = lvl[lv, 0]
        out_single = False
        out_sid = -1
        if sid < 0:
            t0 = plain[cfg_s[lv], c]
            if t0 >= 0:  # the common case: one configuration, plain DFA move
                cfg_s[lv + 1] = t0
                cfg_p[lv + 1] = cfg_p[lv]
                out_single = True
            elif t0 == -1:
                child = t_end[child]
                continue
            else:
                if not memo_ready:
                    memo.fill(-1)
                    memo_ready = True
                sid = _intern(cfg_s, cfg_p, lv, 1, memo, sets, pool_s, pool_p, counters, dtab)
                if sid < 0:
                    flags_all |= FLAG_FUEL
                    child = t_end[child]
                    continue
        if not out_single:
            stats[0] += 1
            o = dtab[sid, c]
            if o == -2:
                n_out, fl, arena_top = advance(trans, final, call_ptr, call_target, call_ret, start_ok, nullable_st,
                                               rule_of, rfollow,
                                               pool_s, pool_p, sets[sid, 0], sets[sid, 1], c,
                                               tmp_s, tmp_p, 0,
                                               arena_ret, arena_par, arena_hash, arena_top,
                                               work_s, work_p, fuel)
                if fl & FLAG_FUEL:
                    flags_all |= FLAG_FUEL
                    child = t_end[child]
                    continue
                if n_out == 0:
                    o = -1
                else:
                    o = _intern(tmp_s, tmp_p, 0, n_out, memo, sets, pool_s, pool_p, counters, dtab)
                    if o < 0:
                        flags_all |= FLAG_FUEL
                        child = t_end[child]
                        continue
                dtab[sid, c] = o
                dflag[sid, c] = fl
            else:
                stats[1] += 1
            if (dflag[sid, c] & FLAG_EXIT) and follow[c]:
                if n_exits < exit_nodes.shape[0]:
                    exit_nodes[n_exits] = child
                    n_exits += 1
                else:
                    # too context-dependent to precompute: the caller walks with real stacks
                    return n_exits, flags_all | FLAG_EXITS_FULL
            if o == -1:
                child = t_end[child]
                continue
            if sets[o, 1] == 1:
                cfg_s[lv + 1] = pool_s[sets[o, 0]]
                cfg_p[lv + 1] = pool_p[sets[o, 0]]
                out_single = True
            else:
                out_sid = o
        for k in range(t_tok_start[child], t_tok_start[child + 1]):
            tid = t_tok_ids[k]
            mask[tid >> 5] |= np.uint32(1) << np.uint32(tid & 31)
        end = t_end[child]
        if child + 1 < end:
            lv += 1
            lvl[lv, 0] = -1 if out_single else out_sid
            lvl[lv, 2] = end
            child += 1
        else:
            child = end
    return n_exits, flags_all


@njit(cache=True, nogil=True)
def consume_bytes(trans, byte_class, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow,
                  init_s, init_p, n_init, data, arena_ret, arena_par, arena_hash, arena_n, fuel):
    """Advance configs over `data`. Returns (out_s, out_p, n_out, arena_n, flags)."""
    cap = 8 * n_init + 1024
    cur_s = np.empty(cap, np.int32)
    cur_p = np.empty(cap, np.int32)
    nxt_s = np.empty(cap, np.int32)
    nxt_p = np.empty(cap, np.int32)
    work_s = np.empty(4096, np.int32)
    work_p = np.empty(4096, np.int32)
    for i in range(n_init):
        cur_s[i] = init_s[i]
        cur_p[i] = init_p[i]
    n = n_init
    flags_all = 0
    for i in range(data.shape[0]):
        c = byte_class[data[i]]
        n, flags, arena_n = advance(trans, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow,
                                    cur_s, cur_p, 0, n, c, nxt_s, nxt_p, 0,
                                    arena_ret, arena_par, arena_hash, arena_n, work_s, work_p, fuel)
        flags_all |= flags & FLAG_FUEL
        if n == 0:
            break
        cur_s, nxt_s = nxt_s, cur_s
        cur_p, nxt_p = nxt_p, cur_p
    return cur_s[:n].copy(), cur_p[:n].copy(), n, arena_n, flags_all


@njit(cache=True, nogil=True)
def or_rows(dst, src):
    for i in range(dst.shape[0]):
        dst[i] |= src[i]
