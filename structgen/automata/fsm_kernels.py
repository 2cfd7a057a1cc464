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
    numbered 0..n_blocks-1 (arbitrary order) and n_blocks."""
    m, k = sub.shape
    n = m + 1  # state m = explicit sink
    # inverse transitions per (symbol, target), CSR over index c * n + t
    cnt = np.zeros(k * n + 1, np.int64)
    for q in range(n):
        for c in range(k):
            r = sub[q, c] if q < m else -1
            if r < 0:
                r = m
            cnt[c * n + r + 1] += 1
    for i in range(k * n):
        cnt[i + 1] += cnt[i]
    pos = cnt[:-1].copy()
    src = np.empty(cnt[k * n], np.int64)
    for q in range(n):
        for c in range(k):
            r = sub[q, c] if q < m else -1
            if r < 0:
                r = m
            idx = c * n + r
            src[pos[idx]] = q
            pos[idx] += 1
    # partition structure
    elems = np.empty(n, np.int64)
    loc = np.empty(n, np.int64)
    blk = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    end = np.empty(n, np.int64)
    mid = np.empty(n, np.int64)
    in_w = np.zeros(n, np.bool_)
    work = np.empty(n, np.int64)
    wp = 0
    # initial blocks: finals, then non-finals (sink included)
    p = 0
    n_fin = 0
    for q in range(m):
        if fin[q]:
            elems[p] = q
            loc[q] = p
            p += 1
            n_fin += 1
    for q in range(n):
        if q == m or not fin[q]:
            elems[p] = q
            loc[q] = p
            p += 1
    nb = 0
    if n_fin > 0:
        first[nb] = 0
        end[nb] = n_fin
        mid[nb] = 0
        nb += 1
    first[nb] = n_fin
    end[nb] = n
    mid[nb] = n_fin
    nb += 1
    for b in range(nb):
        for i in range(first[b], end[b]):
            blk[elems[i]] = b
    # Hopcroft: one of the two initial blocks suffices as splitter; use the finals (never the
    # block holding the sink, whose in-degree is every missing transition)
    work[wp] = 0
    wp += 1
    in_w[0] = True
    snap = np.empty(n, np.int64)
    touched = np.empty(n, np.int64)
    while wp > 0:
        wp -= 1
        s = work[wp]
        in_w[s] = False
        ns = end[s] - first[s]
        for i in range(ns):
            snap[i] = elems[first[s] + i]
        for c in range(k):
            nt = 0
            for i in range(ns):
                t = snap[i]
                idx = c * n + t
                for j in range(cnt[idx], cnt[idx + 1]):
                    q = src[j]
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
    # renumber blocks of real states densely, skipping the sink's block
    sink_b = blk[m]
    newid = np.full(nb, -1, np.int64)
    out = np.empty(m, np.int64)
    k2 = 0
    for q in range(m):
        b = blk[q]
        if b == sink_b:
            # a live state equivalent to the dead state: impossible after trimming
            out[q] = -1
            continue
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
def _set_hash(buf, n):
    h = np.uint64(1469598103934665603)
    for i in range(n):
        h = (h ^ np.uint64(buf[i])) * np.uint64(1099511628211)
    h ^= h >> np.uint64(29)
    return h


@njit(cache=True, nogil=True)
def subset_construction(n, eps_ptr, eps_dst, mv_ptr, mv_sym, mv_dst, important, start, final, n_sym, max_states):
    """Subset construction over an array-encoded NFA.

    n NFA states; epsilon edges CSR (eps_ptr[n+1], eps_dst); moves CSR (mv_ptr[n+1], mv_sym,
    mv_dst), a symbol being a byte class or a call column. DFA states are sets of *important* NFA
    states (those with moves, or the final state). Returns (trans int32[n_dfa, n_sym], fin bool
    [n_dfa], n_dfa); n_dfa = -1 when more than max_states states would be needed."""
    # --- epsilon closures (important states only), computed lazily, stored as CSR-ish slices
    cl_off = np.full(n, -1, np.int64)
    cl_len = np.zeros(n, np.int64)
    cl_pool = np.empty(1024, np.int64)
    cl_used = 0
    seen = np.zeros(n, np.int64)  # stamp
    stamp = 0
    stack = np.empty(n, np.int64)
    tmp = np.empty(n, np.int64)
    # --- DFA sets
    pool = np.empty(1024, np.int64)
    pool_used = 0
    set_off = np.empty(256, np.int64)
    set_len = np.empty(256, np.int64)
    trans = np.full((256, n_sym), -1, np.int32)
    fin = np.zeros(256, np.bool_)
    n_dfa = 0
    tbits = 10
    table = np.full(1 << tbits, -1, np.int64)
    # scratch
    pair_key = np.empty(64, np.int64)
    buf = np.empty(n, np.int64)
    mark = np.zeros(n, np.int64)
    mstamp = 0

    # seed: closure of start
    todo_first = True
    i = 0
    while True:
        if todo_first:
            # build the start set as a pseudo-group containing only `start`
            pair_key = _grow(pair_key, 1)
            pair_key[0] = start
        if not todo_first:
            if i >= n_dfa:
                break
        # collect (sym, target) pairs of the current set
        np_pairs = 0
        if not todo_first:
            so, sl = set_off[i], set_len[i]
            for a in range(sl):
                q = pool[so + a]
                for j in range(mv_ptr[q], mv_ptr[q + 1]):
                    pair_key = _grow(pair_key, np_pairs + 1)
                    pair_key[np_pairs] = mv_sym[j] * n + mv_dst[j]
                    np_pairs += 1
            keys = np.sort(pair_key[:np_pairs])
        else:
            keys = pair_key[:1].copy()
            np_pairs = 1
        g = 0
        while g < np_pairs:
            if todo_first:
                sym = -1
                h_end = 1
            else:
                sym = keys[g] // n
                h_end = g
                while h_end < np_pairs and keys[h_end] // n == sym:
                    h_end += 1
            # union of closures of the targets keys[g:h_end]
            mstamp += 1
            nb = 0
            prev = -1
            for x in range(g, h_end):
                r = keys[x] if todo_first else keys[x] % n
                if r == prev:
                    continue
                prev = r
                if cl_off[r] < 0:
                    # compute closure of r
                    stamp += 1
                    sp = 0
                    stack[sp] = r
                    sp += 1
                    seen[r] = stamp
                    nt = 0
                    while sp > 0:
                        sp -= 1
                        y = stack[sp]
                        if important[y]:
                            tmp[nt] = y
                            nt += 1
                        for e in range(eps_ptr[y], eps_ptr[y + 1]):
                            z = eps_dst[e]
                            if seen[z] != stamp:
                                seen[z] = stamp
                                stack[sp] = z
                                sp += 1
                    cl_pool = _grow(cl_pool, cl_used + nt)
                    for u in range(nt):
                        cl_pool[cl_used + u] = tmp[u]
                    cl_off[r] = cl_used
                    cl_len[r] = nt
                    cl_used += nt
                co = cl_off[r]
                for u in range(cl_len[r]):
                    y = cl_pool[co + u]
                    if mark[y] != mstamp:
                        mark[y] = mstamp
                        buf[nb] = y
                        nb += 1
            members = np.sort(buf[:nb])
            h = _set_hash(members, nb)
            mask = (1 << tbits) - 1
            slot = np.int64(h & np.uint64(mask))
            found = -1
            while True:
                sid = table[slot]
                if sid < 0:
                    break
                if set_len[sid] == nb:
                    so2 = set_off[sid]
                    same = True
                    for u in range(nb):
                        if pool[so2 + u] != members[u]:
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
                fin = _grow(fin, n_dfa)
                trans = _grow2(trans, n_dfa)
                trans[found, :] = -1
                pool = _grow(pool, pool_used + nb)
                isfin = False
                for u in range(nb):
                    pool[pool_used + u] = members[u]
                    if members[u] == final:
                        isfin = True
                set_off[found] = pool_used
                set_len[found] = nb
                fin[found] = isfin
                pool_used += nb
                table[slot] = found
                if 2 * n_dfa > (1 << tbits):
                    tbits += 1
                    table = np.full(1 << tbits, -1, np.int64)
                    mask = (1 << tbits) - 1
                    for sid in range(n_dfa):
                        hh = _set_hash(pool[set_off[sid]: set_off[sid] + set_len[sid]], set_len[sid])
                        sl2 = np.int64(hh & np.uint64(mask))
                        while table[sl2] >= 0:
                            sl2 = (sl2 + 1) & mask
                        table[sl2] = sid
            if not todo_first:
                trans[i, sym] = found
            g = h_end
        if todo_first:
            todo_first = False
        else:
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
