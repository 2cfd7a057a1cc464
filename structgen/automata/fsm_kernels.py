"""numba kernels for automata construction (generic over array-encoded automata; compiled once,
cache=True, never per grammar): trimming, Hopcroft minimization, BFS renumbering and subset
construction."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def trim(full, final, start):
    """keep[q]: q is reachable from `start` through live states and is live (reaches a final
    state). full: int64[n, K], -1 = no edge. Returns (keep, start_live)."""
    n, k = full.shape
    # reverse edges, CSR
    cnt = np.zeros(n + 1, np.int64)
    for q in range(n):
        for c in range(k):
            r = full[q, c]
            if r >= 0:
                cnt[r + 1] += 1
    for i in range(n):
        cnt[i + 1] += cnt[i]
    pos = cnt[:-1].copy()
    src = np.empty(cnt[n], np.int64)
    for q in range(n):
        for c in range(k):
            r = full[q, c]
            if r >= 0:
                src[pos[r]] = q
                pos[r] += 1
    live = final.copy()
    stack = np.empty(n, np.int64)
    sp = 0
    for q in range(n):
        if live[q]:
            stack[sp] = q
            sp += 1
    while sp > 0:
        sp -= 1
        r = stack[sp]
        for j in range(cnt[r], cnt[r + 1]):
            q = src[j]
            if not live[q]:
                live[q] = True
                stack[sp] = q
                sp += 1
    keep = np.zeros(n, np.bool_)
    if not live[start]:
        return keep, False
    keep[start] = True
    stack[0] = start
    sp = 1
    while sp > 0:
        sp -= 1
        q = stack[sp]
        for c in range(k):
            r = full[q, c]
            if r >= 0 and live[r] and not keep[r]:
                keep[r] = True
                stack[sp] = r
                sp += 1
    return keep, True


@njit(cache=True, nogil=True)
def hopcroft(sub, fin):
    """Coarsest partition of the states of a partial DFA (sub: int64[m, K], -1 = dead) that
    respects finality and transitions. The implicit dead state is its own block, so with every
    state live (trimmed) this is exactly Myhill-Nerode equivalence. Returns block int64[m]
    numbered 0..n_blocks-1 (arbitrary order) and n_blocks.

    Hopcroft's algorithm needs all initial blocks but one as splitters; the one left out is the
    dead state's, so only real transitions are ever looked at (a missing transition costs
    nothing), and a splitter's predecessors are grouped by symbol through per-symbol lists:
    the work is O(E log m) in the real edges E, not O(K m log m)."""
    m, k = sub.shape
    # in-edges by target (CSR): in_c[j] symbol, in_q[j] source
    in_ptr = np.zeros(m + 1, np.int64)
    for q in range(m):
        for c in range(k):
            r = sub[q, c]
            if r >= 0:
                in_ptr[r + 1] += 1
    for i in range(m):
        in_ptr[i + 1] += in_ptr[i]
    n_e = in_ptr[m]
    pos = in_ptr[:-1].copy()
    in_c = np.empty(n_e, np.int64)
    in_q = np.empty(n_e, np.int64)
    for q in range(m):
        for c in range(k):
            r = sub[q, c]
            if r >= 0:
                in_c[pos[r]] = c
                in_q[pos[r]] = q
                pos[r] += 1
    # partition structure over the m real states (the dead state is a block of its own, implicit)
    elems = np.empty(m, np.int64)
    loc = np.empty(m, np.int64)
    blk = np.empty(m, np.int64)
    first = np.empty(m + 1, np.int64)
    end = np.empty(m + 1, np.int64)
    mid = np.empty(m + 1, np.int64)
    in_w = np.zeros(m + 1, np.bool_)
    work = np.empty(m + 1, np.int64)
    wp = 0
    p = 0
    n_fin = 0
    for q in range(m):
        if fin[q]:
            elems[p] = q
            loc[q] = p
            p += 1
            n_fin += 1
    for q in range(m):
        if not fin[q]:
            elems[p] = q
            loc[q] = p
            p += 1
    nb = 0
    if n_fin > 0:
        first[nb] = 0
        end[nb] = n_fin
        mid[nb] = 0
        nb += 1
    if n_fin < m:
        first[nb] = n_fin
        end[nb] = m
        mid[nb] = n_fin
        nb += 1
    for b in range(nb):
        for i in range(first[b], end[b]):
            blk[elems[i]] = b
        work[wp] = b
        wp += 1
        in_w[b] = True
    snap = np.empty(m, np.int64)
    touched = np.empty(m + 1, np.int64)
    chead = np.full(k, -1, np.int64)   # per symbol: first in-edge of the splitter (linked list)
    enext = np.empty(max(n_e, 1), np.int64)
    syms = np.empty(k, np.int64)
    while wp > 0:
        wp -= 1
        s = work[wp]
        in_w[s] = False
        ns = end[s] - first[s]
        for i in range(ns):
            snap[i] = elems[first[s] + i]
        n_sym = 0
        for i in range(ns):
            t = snap[i]
            for j in range(in_ptr[t], in_ptr[t + 1]):
                c = in_c[j]
                if chead[c] < 0:
                    syms[n_sym] = c
                    n_sym += 1
                enext[j] = chead[c]
                chead[c] = j
        for si in range(n_sym):
            c = syms[si]
            j = chead[c]
            chead[c] = -1
            nt = 0
            while j >= 0:
                q = in_q[j]
                j = enext[j]
                b = blk[q]
                lq = loc[q]
                if lq < mid[b]:
                    continue  # already marked
                if mid[b] == first[b]:
                    touched[nt] = b
                    nt += 1
                # swap q to position mid[b]
                pm = mid[b]
                other = elems[pm]
                elems[pm] = q
                loc[q] = pm
                elems[lq] = other
                loc[other] = lq
                mid[b] = pm + 1
            for ti in range(nt):
                b = touched[ti]
                if mid[b] == end[b]:
                    mid[b] = first[b]
                    continue
                # marked part [first, mid) becomes a new block
                nbk = nb
                nb += 1
                first[nbk] = first[b]
                end[nbk] = mid[b]
                mid[nbk] = first[b]
                for i in range(first[nbk], end[nbk]):
                    blk[elems[i]] = nbk
                first[b] = end[nbk]
                mid[b] = first[b]
                if in_w[b]:
                    work[wp] = nbk
                    wp += 1
                    in_w[nbk] = True
                else:
                    if end[nbk] - first[nbk] <= end[b] - first[b]:
                        work[wp] = nbk
                        in_w[nbk] = True
                    else:
                        work[wp] = b
                        in_w[b] = True
                    wp += 1
    # renumber blocks densely
    newid = np.full(nb, -1, np.int64)
    out = np.empty(m, np.int64)
    k2 = 0
    for q in range(m):
        b = blk[q]
        if newid[b] < 0:
            newid[b] = k2
            k2 += 1
        out[q] = newid[b]
    return out, k2


@njit(cache=True, nogil=True)
def bfs_order(trans_full, start):
    """States in BFS order from start (row order of transitions); unreachable ones are left out."""
    m, k = trans_full.shape
    seen = np.zeros(m, np.bool_)
    order = np.empty(m, np.int64)
    order[0] = start
    seen[start] = True
    n = 1
    i = 0
    while i < n:
        q = order[i]
        i += 1
        for c in range(k):
            r = trans_full[q, c]
            if r >= 0 and not seen[r]:
                seen[r] = True
                order[n] = r
                n += 1
    return order[:n]


@njit(cache=True, nogil=True)
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    size = max(need, 2 * a.shape[0])
    out = np.empty(size, a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _grow2(a, need):
    if need <= a.shape[0]:
        return a
    size = max(need, 2 * a.shape[0])
    out = np.full((size, a.shape[1]), -1, a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _mix(x):
    """splitmix64 finalizer: the hash of one NFA state (set hashes are sums, order-free)."""
    z = np.uint64(x) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def subset_construction(n, eps_ptr, eps_dst, mv_ptr, mv_sym, mv_dst, important, start, final, n_sym, max_states):
    """Subset construction over an array-encoded NFA.

    n NFA states; epsilon edges CSR (eps_ptr[n+1], eps_dst); moves CSR (mv_ptr[n+1], mv_sym,
    mv_dst), a symbol being a byte class or a call column. DFA states are sets of *important* NFA
    states (those with moves, or the final state). Returns (trans int32[n_dfa, n_sym], fin bool
    [n_dfa], n_dfa); n_dfa = -1 when more than max_states states would be needed.

    A DFA state's moves are bucketed by symbol (no sorting); sets are kept unsorted with an
    order-free hash (sum of per-state hashes) and compared through a mark stamp; a target that
    is the closure of a single NFA state (the deterministic parts: embedded minimal DFAs) is
    looked up directly in `cl_dfa` without building the set at all."""
    # --- epsilon closures (important states only), computed lazily
    cl_off = np.full(n, -1, np.int64)
    cl_len = np.zeros(n, np.int64)
    cl_hash = np.zeros(n, np.uint64)
    cl_fin = np.zeros(n, np.bool_)
    cl_dfa = np.full(n, -1, np.int64)  # DFA state whose set is exactly closure(r)
    cl_pool = np.empty(1024, np.int64)
    cl_used = 0
    seen = np.zeros(n, np.int64)  # stamp
    stamp = 0
    stack = np.empty(n, np.int64)
    # --- DFA sets
    pool = np.empty(1024, np.int64)
    pool_used = 0
    set_off = np.empty(256, np.int64)
    set_len = np.empty(256, np.int64)
    set_hash = np.empty(256, np.uint64)
    trans = np.full((256, n_sym), -1, np.int32)
    fin = np.zeros(256, np.bool_)
    n_dfa = 0
    tbits = 10
    table = np.full(1 << tbits, -1, np.int64)
    # scratch
    buf = np.empty(n, np.int64)
    mark = np.zeros(n, np.int64)   # members of the set being built
    tmark = np.zeros(n, np.int64)  # targets already merged into it
    mstamp = 0
    head = np.full(n_sym, -1, np.int64)   # per symbol: first bucket entry
    syms = np.empty(n_sym, np.int64)
    b_dst = np.empty(64, np.int64)        # bucket entries: target NFA state, next entry
    b_nxt = np.empty(64, np.int64)

    i = -1  # -1: the start set; then DFA states in creation order
    while i < n_dfa:
        n_syms = 0
        if i >= 0:
            so, sl = set_off[i], set_len[i]
            nb_e = 0
            for a in range(sl):
                q = pool[so + a]
                for j in range(mv_ptr[q], mv_ptr[q + 1]):
                    c = mv_sym[j]
                    if nb_e >= b_dst.shape[0]:
                        b_dst = _grow(b_dst, nb_e + 1)
                        b_nxt = _grow(b_nxt, nb_e + 1)
                    b_dst[nb_e] = mv_dst[j]
                    if head[c] < 0:
                        syms[n_syms] = c
                        n_syms += 1
                    b_nxt[nb_e] = head[c]
                    head[c] = nb_e
                    nb_e += 1
        else:
            n_syms = 1
        for si in range(n_syms):
            if i >= 0:
                sym = syms[si]
                e0 = head[sym]
                head[sym] = -1
                # a single distinct target?
                r0 = b_dst[e0]
                single = True
                e = b_nxt[e0]
                while e >= 0:
                    if b_dst[e] != r0:
                        single = False
                        break
                    e = b_nxt[e]
            else:
                sym = -1
                e0 = -1
                r0 = start
                single = True
            if single and cl_dfa[r0] >= 0:
                if i >= 0:
                    trans[i, sym] = cl_dfa[r0]
                continue
            # closure(s) of the target(s): members marked with mstamp, listed in buf
            mstamp += 1
            nb = 0
            h = np.uint64(0)
            isfin = False
            e = e0
            r = r0
            while True:
                if tmark[r] != mstamp:  # each distinct target once
                    tmark[r] = mstamp
                    if cl_off[r] < 0:
                        stamp += 1
                        sp = 0
                        stack[sp] = r
                        sp += 1
                        seen[r] = stamp
                        nt = 0
                        ch = np.uint64(0)
                        cf = False
                        cl_pool = _grow(cl_pool, cl_used + n)
                        while sp > 0:
                            sp -= 1
                            y = stack[sp]
                            if important[y]:
                                cl_pool[cl_used + nt] = y
                                nt += 1
                                ch += _mix(y)
                                if y == final:
                                    cf = True
                            for ee in range(eps_ptr[y], eps_ptr[y + 1]):
                                z = eps_dst[ee]
                                if seen[z] != stamp:
                                    seen[z] = stamp
                                    stack[sp] = z
                                    sp += 1
                        cl_off[r] = cl_used
                        cl_len[r] = nt
                        cl_hash[r] = ch
                        cl_fin[r] = cf
                        cl_used += nt
                    co = cl_off[r]
                    if single:
                        nb = cl_len[r]
                        h = cl_hash[r]
                        isfin = cl_fin[r]
                        for u in range(nb):
                            y = cl_pool[co + u]
                            mark[y] = mstamp
                            buf[u] = y
                        break
                    for u in range(cl_len[r]):
                        y = cl_pool[co + u]
                        if mark[y] != mstamp:
                            mark[y] = mstamp
                            buf[nb] = y
                            nb += 1
                            h += _mix(y)
                            if y == final:
                                isfin = True
                e = b_nxt[e]
                if e < 0:
                    break
                r = b_dst[e]
            # look the set up (members are marked with mstamp)
            mask = (1 << tbits) - 1
            slot = np.int64(h & np.uint64(mask))
            found = -1
            while True:
                sid = table[slot]
                if sid < 0:
                    break
                if set_hash[sid] == h and set_len[sid] == nb:
                    so2 = set_off[sid]
                    same = True
                    for u in range(nb):
                        if mark[pool[so2 + u]] != mstamp:
                            same = False
                            break
                    if same:
                        found = sid
                        break
                slot = (slot + 1) & mask
            if found < 0:
                if n_dfa >= max_states:
                    return trans[:0], fin[:0], -1
                found = n_dfa
                n_dfa += 1
                set_off = _grow(set_off, n_dfa)
                set_len = _grow(set_len, n_dfa)
                set_hash = _grow(set_hash, n_dfa)
                fin = _grow(fin, n_dfa)
                trans = _grow2(trans, n_dfa)
                trans[found, :] = -1
                pool = _grow(pool, pool_used + nb)
                for u in range(nb):
                    pool[pool_used + u] = buf[u]
                set_off[found] = pool_used
                set_len[found] = nb
                set_hash[found] = h
                fin[found] = isfin
                pool_used += nb
                table[slot] = found
                if 2 * n_dfa > (1 << tbits):
                    tbits += 1
                    table = np.full(1 << tbits, -1, np.int64)
                    mask = (1 << tbits) - 1
                    for sid in range(n_dfa):
                        sl2 = np.int64(set_hash[sid] & np.uint64(mask))
                        while table[sl2] >= 0:
                            sl2 = (sl2 + 1) & mask
                        table[sl2] = sid
            if single:
                cl_dfa[r0] = found
            if i >= 0:
                trans[i, sym] = found
        i += 1
    return trans[:n_dfa].copy(), fin[:n_dfa].copy(), n_dfa


@njit(cache=True, nogil=True)
def product_kernel(a_trans, a_final, a_start, b_trans, b_final, b_start, ac, bc, mode, max_states):
    """Reachable product of two partial DFAs over common classes (ac[c], bc[c] = the classes of
    each side); a missing transition is an implicit sink (-1). mode 0: a and b; 1: a and not b.
    Returns (trans int32[n, n_cls], fin bool[n], n); n = -1 past max_states."""
    n_cls = ac.shape[0]
    nb1 = np.int64(b_trans.shape[0] + 1)
    tbits = 10
    tkeys = np.full(1 << tbits, -1, np.int64)
    tvals = np.empty(1 << tbits, np.int64)
    qa_l = np.empty(256, np.int64)
    qb_l = np.empty(256, np.int64)
    trans = np.full((256, n_cls), -1, np.int32)
    fin = np.zeros(256, np.bool_)
    n = 0
    # insert start
    key0 = (a_start + 1) * nb1 + (b_start + 1)
    mask = (1 << tbits) - 1
    slot = (key0 * 0x9E3779B1) & mask
    tkeys[slot] = key0
    tvals[slot] = 0
    qa_l[0] = a_start
    qb_l[0] = b_start
    n = 1
    i = 0
    while i < n:
        qa = qa_l[i]
        qb = qb_l[i]
        fa = a_final[qa] if qa >= 0 else False
        fb = b_final[qb] if qb >= 0 else False
        if mode == 0:
            fin[i] = fa and fb
        else:
            fin[i] = fa and not fb
        for c in range(n_cls):
            ra = a_trans[qa, ac[c]] if qa >= 0 else -1
            rb = b_trans[qb, bc[c]] if qb >= 0 else -1
            if ra < 0 and rb < 0:
                continue
            key = (np.int64(ra) + 1) * nb1 + (np.int64(rb) + 1)
            mask = (1 << tbits) - 1
            slot = (key * 0x9E3779B1) & mask
            j = -1
            while tkeys[slot] >= 0:
                if tkeys[slot] == key:
                    j = tvals[slot]
                    break
                slot = (slot + 1) & mask
            if j < 0:
                if n >= max_states:
                    return trans[:0], fin[:0], -1
                j = n
                n += 1
                tkeys[slot] = key
                tvals[slot] = j
                qa_l = _grow(qa_l, n)
                qb_l = _grow(qb_l, n)
                fin = _grow(fin, n)
                trans = _grow2(trans, n)
                trans[j, :] = -1
                qa_l[j] = ra
                qb_l[j] = rb
                if 2 * n > (1 << tbits):
                    tbits += 1
                    ok = tkeys
                    ov = tvals
                    tkeys = np.full(1 << tbits, -1, np.int64)
                    tvals = np.empty(1 << tbits, np.int64)
                    m2 = (1 << tbits) - 1
                    for u in range(ok.shape[0]):
                        if ok[u] >= 0:
                            s2 = (ok[u] * 0x9E3779B1) & m2
                            while tkeys[s2] >= 0:
                                s2 = (s2 + 1) & m2
                            tkeys[s2] = ok[u]
                            tvals[s2] = ov[u]
            trans[i, c] = j
        i += 1
    return trans[:n].copy(), fin[:n].copy(), n


@njit(cache=True, nogil=True)
def minimize_kernel(full, final, start):
    """Minimal automaton of a partial DFA (full: int32[n, K], -1 = no edge; the K columns are
    byte classes and call symbols alike): trim, Hopcroft, quotient, then states renumbered in
    BFS order from the start (state 0), so the result is canonical for the language.
    Returns (trans int32[m, K], fin bool[m], m); m = 0 when the language is empty."""
    n, k = full.shape
    keep, start_live = trim(full, final, start)
    if not start_live:
        return np.empty((0, k), np.int32), np.zeros(0, np.bool_), 0
    remap = np.full(n, -1, np.int64)
    m0 = 0
    for q in range(n):
        if keep[q]:
            remap[q] = m0
            m0 += 1
    sub = np.empty((m0, k), np.int64)
    fin = np.empty(m0, np.bool_)
    for q in range(n):
        i = remap[q]
        if i >= 0:
            fin[i] = final[q]
            for c in range(k):
                r = full[q, c]
                sub[i, c] = remap[r] if r >= 0 else -1
    block, nb = hopcroft(sub, fin)
    rep = np.full(nb, -1, np.int64)
    for q in range(m0):
        if rep[block[q]] < 0:
            rep[block[q]] = q
    sb = block[remap[start]]
    # BFS over the quotient automaton
    pos = np.full(nb, -1, np.int64)
    order = np.empty(nb, np.int64)
    order[0] = sb
    pos[sb] = 0
    cnt = 1
    i = 0
    while i < cnt:
        b = order[i]
        i += 1
        q = rep[b]
        for c in range(k):
            r = sub[q, c]
            if r >= 0:
                b2 = block[r]
                if pos[b2] < 0:
                    pos[b2] = cnt
                    order[cnt] = b2
                    cnt += 1
    out = np.full((cnt, k), -1, np.int32)
    fout = np.empty(cnt, np.bool_)
    for j in range(cnt):
        q = rep[order[j]]
        fout[j] = fin[q]
        for c in range(k):
            r = sub[q, c]
            if r >= 0:
                out[j, c] = pos[block[r]]
    return out, fout, cnt


@njit(cache=True, nogil=True)
def reaches_final(trans, ctrans, col_ok, final, start):
    """Can the start state reach a final state over byte edges and the call columns allowed by
    col_ok (calls to productive rules)?"""
    n = trans.shape[0]
    seen = np.zeros(n, np.bool_)
    stack = np.empty(n, np.int64)
    stack[0] = start
    seen[start] = True
    sp = 1
    while sp > 0:
        sp -= 1
        q = stack[sp]
        if final[q]:
            return True
        for c in range(trans.shape[1]):
            r = trans[q, c]
            if r >= 0 and not seen[r]:
                seen[r] = True
                stack[sp] = r
                sp += 1
        for c in range(ctrans.shape[1]):
            r = ctrans[q, c]
            if r >= 0 and col_ok[c] and not seen[r]:
                seen[r] = True
                stack[sp] = r
                sp += 1
    return False
