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
def walk_trie(trans, byte_class, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow, follow,
              t_byte, t_end, t_tok_start, t_tok_ids,
              init_s, init_p, n_init, roots,
              arena_ret, arena_par, arena_hash, arena_n0,
              mask, exit_nodes, fuel, skip_node,
              lvl, cfg_s, cfg_p, work_s, work_p):
    """Depth-first walk of the trie subtrees rooted at `roots`, starting from the given configs.

    Sets the bit of every token whose bytes can be consumed. Records in `exit_nodes` every node
    whose byte can only be consumed after the starting frame ends (a FRAME pop) and that the
    frame's FOLLOW set allows. `skip_node[n] == 1` marks subtrees already known accepted (a
    vocabulary slice OR-ed in beforehand): they are not walked.
    Scratch: lvl int64[levels, 5], cfg_s/cfg_p int32[cfg_cap], work_s/work_p int32[work_cap].
    Returns (n_exits, flags).
    """
    cfg_cap = cfg_s.shape[0]
    for i in range(n_init):
        cfg_s[i] = init_s[i]
        cfg_p[i] = init_p[i]
    # lvl[:, 0] cfg start, 1 cfg len, 2 arena size, 3 next child (or root index), 4 limit
    lvl[0, 0] = 0
    lvl[0, 1] = n_init
    lvl[0, 2] = arena_n0
    lvl[0, 3] = 0
    lvl[0, 4] = roots.shape[0]
    n_exits = 0
    flags_all = 0
    use_skip = skip_node.shape[0] > 0
    lv = 0
    while lv >= 0:
        if lv == 0:
            k = lvl[0, 3]
            if k >= lvl[0, 4]:
                break
            child = roots[k]
            lvl[0, 3] = k + 1
        else:
            child = lvl[lv, 3]
            if child >= lvl[lv, 4]:
                lv -= 1
                continue
            lvl[lv, 3] = t_end[child]
        if use_skip and skip_node[child] == 1:
            continue
        in_off = lvl[lv, 0]
        n_in = lvl[lv, 1]
        out_off = in_off + n_in
        c = byte_class[t_byte[child]]
        arena_n = lvl[lv, 2]
        s0 = cfg_s[in_off]
        if n_in == 1 and call_ptr[s0] == call_ptr[s0 + 1] and (not final[s0] or cfg_p[in_off] == BOTTOM
                                                               or not rfollow[rule_of[s0], c]):
            # the common case: one configuration, plain DFA move
            t0 = trans[s0, c]
            if t0 < 0:
                continue
            cfg_s[out_off] = t0
            cfg_p[out_off] = cfg_p[in_off]
            n_out = 1
            flags = 0
        else:
            if out_off + 512 > cfg_cap:
                flags_all |= FLAG_FUEL
                continue
            n_out, flags, arena_n = advance(trans, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow,
                                            cfg_s, cfg_p, in_off, n_in, c,
                                            cfg_s, cfg_p, out_off,
                                            arena_ret, arena_par, arena_hash, arena_n,
                                            work_s, work_p, fuel)
            flags_all |= flags & FLAG_FUEL
            if (flags & FLAG_EXIT) and follow[c]:
                if n_exits < exit_nodes.shape[0]:
                    exit_nodes[n_exits] = child
                    n_exits += 1
                else:
                    flags_all |= FLAG_FUEL
            if n_out == 0:
                continue
        for k in range(t_tok_start[child], t_tok_start[child + 1]):
            tid = t_tok_ids[k]
            mask[tid >> 5] |= np.uint32(1) << np.uint32(tid & 31)
        if child + 1 < t_end[child]:
            lv += 1
            lvl[lv, 0] = out_off
            lvl[lv, 1] = n_out
            lvl[lv, 2] = arena_n
            lvl[lv, 3] = child + 1
            lvl[lv, 4] = t_end[child]
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
def end_flags(trans, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow,
              init_s, init_p, n_init, arena_ret, arena_par, arena_hash, arena_n, fuel):
    """FLAG_END if the input may end in one of the configurations."""
    work_s = np.empty(4096, np.int32)
    work_p = np.empty(4096, np.int32)
    dummy_s = np.empty(1, np.int32)
    dummy_p = np.empty(1, np.int32)
    n, flags, arena_n = advance(trans, final, call_ptr, call_target, call_ret, start_ok, nullable_st, rule_of, rfollow,
                                init_s, init_p, 0, n_init, -1, dummy_s, dummy_p, 0,
                                arena_ret, arena_par, arena_hash, arena_n, work_s, work_p, fuel)
    return flags


@njit(cache=True, nogil=True)
def or_rows(dst, src):
    for i in range(dst.shape[0]):
        dst[i] |= src[i]
