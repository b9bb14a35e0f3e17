"""Bootstrap kernels: per-replicate weighted sums (the state of every sum-based
metric) and one weighted pass per replicate over sorted data (AUC, average
precision, quantiles).

Weights come from :mod:`fastevals._kernels.poisson` (counter-based), or from an
explicit weight matrix (the multinomial bootstrap of small inputs).

Determinism.  Replicates are independent output slots, so the parallel loop
runs over blocks of replicates and no slot is shared.  Within a replicate,
weight sums are integers (exact, order-free) and weighted feature sums are
spread over 16 lanes chosen by the *global* row index (row ``g`` goes to
lane ``g & 15``) and kept in the state between batches: each lane then sees
its rows in the same order whatever the batch size or thread count, so the
sums are bit-identical for any batching, on 1 or N threads.

Speed.  numba runs LLVM's loop vectorizer but not its SLP vectorizer, so only
loops whose iterations are independent become AVX2 code.  Per block of
``REP_BLOCK`` replicates and ``ROW_CHUNK`` rows (the chunk stays in cache for
the block): the rows' hashes are computed once for the block, then for each
replicate the chunk's weights go to a buffer (one 32-bit round a weight, 8
rows an instruction, see :mod:`~fastevals._kernels.poisson`, returning their
sum, the replicate's weight total), then :func:`_lanes_fold` adds them to the 16 lanes with the
lane loop innermost (4 lanes an instruction, 8 rows per lane per step, in row
order).  The no-ties AUC, a chain of dependent adds within a replicate, runs
``AUC_GROUP`` replicates side by side instead, with the weights drawn on the
fly from the rows' hashes, computed once in sorted order (no gather).

Contract:
  accumulate_rows_{serial,parallel}(seed, g0, n, keys, cells, V, wsum, vsum)
    seed: uint64; g0: global index of the batch's first row; n: rows; keys: uint64
    row keys (empty: the global row index is the key); cells: int64 cell
    codes in [0, n_cells) (empty: one cell); V: float64[F, n] features;
    wsum: int64[B, n_cells] and vsum: float64[B, n_cells, F, LANES] updated in place.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel
from .poisson import (
    hashed_weights_into,
    key_hashes_into,
    poisson1_flipped,
    round32_tail,
    row_hashes_into,
    scheme_keys,
    sign_flip,
    weight_key,
)

LANES = 16
ROW_CHUNK = 4096
REP_BLOCK = 16
#: replicates per pass of the no-ties AUC (the vectorized dimension of that kernel)
AUC_GROUP = 64
# rows per step of the vectorized lane fold: SUB rows of each of the 16 lanes
_SUB = 8
_FOLD_ROWS = _SUB * LANES


@serial_kernel
def _lanes_fold(w, x, acc):
    # acc[k] += w[16 r + k] * x[16 r + k] for r = 0, 1, ... in order (len(w) a multiple of 128).
    # numba leaves LLVM's SLP vectorizer off, so 16 scalar accumulators stay scalar; instead the
    # loop over lanes is the inner loop (its trip count, acc's length, is unknown to LLVM, so it
    # is vectorized rather than unrolled away) and each step adds 8 rows per lane in row order:
    # every lane sums its rows in the same order as a plain loop, bit for bit, 4 lanes a vector.
    nl = acc.shape[0]
    for r in range(w.shape[0] // _FOLD_ROWS):
        j = r * _FOLD_ROWS
        wb = w[j:j + _FOLD_ROWS]
        xb = x[j:j + _FOLD_ROWS]
        for k in range(nl):
            a = acc[k]
            a += wb[k] * xb[k]
            a += wb[k + 16] * xb[k + 16]
            a += wb[k + 32] * xb[k + 32]
            a += wb[k + 48] * xb[k + 48]
            a += wb[k + 64] * xb[k + 64]
            a += wb[k + 80] * xb[k + 80]
            a += wb[k + 96] * xb[k + 96]
            a += wb[k + 112] * xb[k + 112]
            acc[k] = a


@serial_kernel
def _fold_plain(b, g, m, lo, wbuf, V, vsum):
    # one cell: features over the global-index lanes (the weight sum is added by the caller)
    head = (LANES - (g & (LANES - 1))) & (LANES - 1)
    if head > m:
        head = m
    body = (m - head) // _FOLD_ROWS * _FOLD_ROWS
    for f in range(V.shape[0]):
        x = V[f, lo:lo + m]
        acc = vsum[b, 0, f]
        for i in range(head):
            acc[(g + i) & (LANES - 1)] += wbuf[i] * x[i]
        _lanes_fold(wbuf[head:head + body], x[head:head + body], acc)
        for i in range(head + body, m):
            acc[(g + i) & (LANES - 1)] += wbuf[i] * x[i]


@serial_kernel
def _fold_cells(b, g, m, lo, wbuf, cells, V, wsum, vsum, wl):
    # Every row, weight 0 included (a branch on it mispredicts: 37% of weights are 0). Indices
    # are unsigned, so numba adds no negative-index wraparound (cell codes are >= 0). The weight
    # counts go to 4 lanes (wl, int64: exact in any order), so consecutive rows of one cell do
    # not wait on each other's store; the feature sums keep their global-row lanes. One feature
    # (a mean, a proportion) has a loop of its own: measured 3.3-3.9x faster than the general
    # loop with its inner loop over features (1M rows x 256 replicates, 4 cells, same results).
    F = V.shape[0]
    cc = cells[lo:lo + m]
    wl[:] = 0
    vb = vsum[b]
    if F == 1:
        x = V[0, lo:lo + m]
        for i in range(m):
            w = wbuf[i]
            c = np.uintp(cc[i])
            wl[c * np.uintp(4) + np.uintp(i & 3)] += w
            vb[c, 0, np.uintp((g + i) & (LANES - 1))] += w * x[i]
    else:
        for i in range(m):
            w = wbuf[i]
            c = np.uintp(cc[i])
            wl[c * np.uintp(4) + np.uintp(i & 3)] += w
            lane = np.uintp((g + i) & (LANES - 1))
            for f in range(F):
                vb[c, f, lane] += w * V[f, lo + i]
    for c in range(wsum.shape[1]):
        wsum[b, c] += (wl[4 * c] + wl[4 * c + 1]) + (wl[4 * c + 2] + wl[4 * c + 3])


@serial_kernel
def _accumulate_block(seed, blk, g0, n, keys, cells, V, wsum, vsum, wbuf, hbuf, wl):
    B = wsum.shape[0]
    b_lo = blk * REP_BLOCK
    b_hi = min(B, b_lo + REP_BLOCK)
    use_keys = keys.shape[0] > 0
    use_cells = cells.shape[0] > 0
    rk, qk = scheme_keys(seed)
    for lo in range(0, n, ROW_CHUNK):
        m = min(ROW_CHUNK, n - lo)
        g = g0 + lo
        h = hbuf[:m]
        if use_keys:
            key_hashes_into(rk, keys, lo, lo + m, h)
        else:
            row_hashes_into(rk, g, m, h)
        for b in range(b_lo, b_hi):
            tot = hashed_weights_into(weight_key(qk, b), h, wbuf)
            if use_cells:
                _fold_cells(b, g, m, lo, wbuf, cells, V, wsum, vsum, wl)
            else:
                wsum[b, 0] += tot
                _fold_plain(b, g, m, lo, wbuf, V, vsum)


@parallel_kernel
def accumulate_rows_parallel(seed, g0, n, keys, cells, V, wsum, vsum):
    n_blk = (wsum.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    for blk in prange(n_blk):
        wbuf = np.empty(ROW_CHUNK, dtype=np.int32)
        hbuf = np.empty(ROW_CHUNK, dtype=np.uint32)
        wl = np.empty(4 * wsum.shape[1], dtype=np.int64)
        _accumulate_block(seed, blk, g0, n, keys, cells, V, wsum, vsum, wbuf, hbuf, wl)


@serial_kernel
def accumulate_rows_serial(seed, g0, n, keys, cells, V, wsum, vsum):
    n_blk = (wsum.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    wbuf = np.empty(ROW_CHUNK, dtype=np.int32)
    hbuf = np.empty(ROW_CHUNK, dtype=np.uint32)
    wl = np.empty(4 * wsum.shape[1], dtype=np.int64)
    for blk in range(n_blk):
        _accumulate_block(seed, blk, g0, n, keys, cells, V, wsum, vsum, wbuf, hbuf, wl)


# ------------------------------------------------------------------------------------------------
# sorted passes: one weighted pass per replicate over data sorted once


@serial_kernel
def _auc_pass(y, tie_end, off, w):
    # rows sorted by score ascending; tie_end[i] - off: end of i's tie block (read at block starts),
    # or tie_end empty when no two scores tie.
    # Branch-free in the labels: a branch on y mispredicts half the time (measured 3x slower).
    n = y.shape[0]
    neg_below = 0.0
    area = 0.0
    pos = 0.0
    if tie_end.shape[0] == 0:
        # no ties anywhere (the caller passes no tie blocks): a straight loop, ~4x faster
        for j in range(n):
            wj = w[j]
            pj = wj * y[j]
            area += pj * neg_below
            neg_below += wj - pj
            pos += pj
        denom = pos * neg_below
        if denom == 0.0:
            return np.nan
        return area / denom
    i = 0
    while i < n:
        e = tie_end[i] - off
        bp = 0.0
        bt = 0.0
        for j in range(i, e):
            bt += w[j]
            bp += w[j] * y[j]
        bn = bt - bp
        area += bp * (neg_below + 0.5 * bn)
        neg_below += bn
        pos += bp
        i = e
    denom = pos * neg_below
    if denom == 0.0:
        return np.nan
    return area / denom


@serial_kernel
def _auc_pass_int(y, tie_end, off, w):
    # _auc_pass for integer weights (Poisson): every partial sum is an integer, kept in int64,
    # so the three running sums have 1-cycle dependency chains instead of 3-4 cycle float adds.
    # The value is the same: in float64 those sums are exact integers too (below 2**53).
    n = y.shape[0]
    neg_below = 0
    area = 0
    pos = 0
    if tie_end.shape[0] == 0:
        for j in range(n):
            wj = np.int64(w[j])
            pj = wj * np.int64(y[j])
            area += pj * neg_below
            neg_below += wj - pj
            pos += pj
        denom = np.float64(pos) * np.float64(neg_below)
        if denom == 0.0:
            return np.nan
        return np.float64(area) / denom
    # ties: twice the area, so that half a tie block's negatives stay an integer
    i = 0
    while i < n:
        e = tie_end[i] - off
        bp = 0
        bt = 0
        for j in range(i, e):
            wj = np.int64(w[j])
            bt += wj
            bp += wj * np.int64(y[j])
        bn = bt - bp
        area += bp * (2 * neg_below + bn)
        neg_below += bn
        pos += bp
        i = e
    denom = np.float64(pos) * np.float64(neg_below)
    if denom == 0.0:
        return np.nan
    return 0.5 * np.float64(area) / denom


@serial_kernel
def _auc_group_pass(kb, h, y, pbuf, area, nb, pos):
    # The no-ties AUC of len(k0) replicates in one pass over the sorted rows, weights drawn on the
    # fly: lane r holds replicate r's integer sums (area, negatives below, positives).  A single
    # replicate's pass is a chain of dependent scalar adds; across replicates the lane loops are
    # inner loops and vectorize: the weights 8 replicates to an instruction, the 64-bit area 4
    # (two loops, so the 64-bit one does not narrow the hashing to 4 lanes).
    # The sums are those of _auc_pass_int, so the values are identical.
    g = kb.shape[0]
    flip = sign_flip(kb)
    for r in range(g):
        area[r] = 0
        nb[r] = 0
        pos[r] = 0
    for j in range(h.shape[0]):
        c = h[j]
        ny = np.uint32(1 - y[j])
        for r in range(g):
            # the weight if row j is positive, 0 if negative: negatives' weights go to nb below
            pbuf[r] = np.uint32(poisson1_flipped(np.int32(round32_tail(np.uint32(c ^ kb[r])) ^ flip)))
        if ny:
            for r in range(g):
                nb[r] = np.uint32(nb[r] + pbuf[r])
        else:
            for r in range(g):
                p = pbuf[r]
                area[r] += np.uint64(p) * np.uint64(nb[r])
                pos[r] = np.uint32(pos[r] + p)


@serial_kernel
def _ap_pass(y, tie_end, off, w):
    # rows sorted by score DEscending
    n = y.shape[0]
    tp = 0.0
    fp = 0.0
    s = 0.0
    i = 0
    while i < n:
        e = tie_end[i] - off
        bp = 0.0
        bt = 0.0
        for j in range(i, e):
            bt += w[j]
            bp += w[j] * y[j]
        tp += bp
        fp += bt - bp
        d = tp + fp
        if d > 0.0:
            s += bp * (tp / d)
        i = e
    if tp == 0.0:
        return np.nan
    return s / tp


@serial_kernel
def _lerp(a, b, t):
    # numpy.quantile's interpolation, to the last bit (it switches form at t = 0.5)
    d = b - a
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


@serial_kernel
def _quantile_pass(x, w, q):
    # np.quantile(np.repeat(x, w), q) (method "linear") for sorted x and integer weights
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        total += w[i]
    if total == 0.0:
        return np.nan
    # numpy's virtual index n q + (1 - q) - 1, clipped to [0, n - 1]
    h = total * q + (1.0 - q) - 1.0
    lo = np.floor(h)
    frac = h - lo
    if lo >= total - 1.0:
        lo = total - 1.0
        frac = 0.0
    if lo < 0.0:
        lo = 0.0
        frac = 0.0
    # the values at expanded positions lo and lo + 1; cum crosses lo on a row of positive weight
    cum = 0.0
    i = 0
    while i < n:
        cum += w[i]
        if cum > lo:
            break
        i += 1
    if i >= n:
        return np.nan
    a = x[i]
    if cum > lo + 1.0:
        return _lerp(a, a, frac)
    for j in range(i + 1, n):
        if w[j] != 0:
            return _lerp(a, x[j], frac)
    return a


@serial_kernel
def _sorted_stat(kind, x, y, tie_end, off, w, q):
    if kind == 0:
        return _auc_pass(y, tie_end, off, w)
    if kind == 1:
        return _ap_pass(y, tie_end, off, w)
    return _quantile_pass(x, w, q)


@parallel_kernel
def sorted_poisson(kind, seed, B, x, y, tie_end, keys, rows, bounds, q):
    """Statistic per (replicate, cell) over rows sorted within cells.

    ``bounds[c]:bounds[c + 1]`` are cell c's rows; ``rows`` (a permutation of
    0..n-1) their global row index, the weight key, unless ``keys`` (cluster
    keys, in sorted order) is given.
    kind: 0 AUC (ascending scores), 1 average precision (descending), 2 quantile q.
    """
    n = x.shape[0]
    n_cells = bounds.shape[0] - 1
    out = np.empty((B, n_cells), dtype=np.float64)
    ties = tie_end.shape[0] > 0
    # the rows' hashes in sorted order, once: each replicate's weights then cost one round a row
    rk, qk = scheme_keys(seed)
    h = np.empty(n, dtype=np.uint32)
    if keys.shape[0] > 0:
        key_hashes_into(rk, keys, 0, n, h)
    else:
        key_hashes_into(rk, rows, 0, n, h)
    if kind == 0 and not ties and n < 300_000_000:
        # AUC without ties: groups of replicates in one vectorized pass
        # (weight sums stay below 2**32: at most 12 a row)
        n_grp = (B + AUC_GROUP - 1) // AUC_GROUP
        for gi in prange(n_grp):
            b0 = gi * AUC_GROUP
            m = min(AUC_GROUP, B - b0)
            kb = np.empty(m, dtype=np.uint32)
            for r in range(m):
                kb[r] = weight_key(qk, b0 + r)
            pbuf = np.empty(m, dtype=np.uint32)
            area = np.empty(m, dtype=np.uint64)
            nb = np.empty(m, dtype=np.uint32)
            pos = np.empty(m, dtype=np.uint32)
            for c in range(n_cells):
                a = bounds[c]
                e = bounds[c + 1]
                _auc_group_pass(kb, h[a:e], y[a:e], pbuf, area, nb, pos)
                for r in range(m):
                    denom = np.float64(pos[r]) * np.float64(nb[r])
                    out[b0 + r, c] = np.nan if denom == 0.0 else np.float64(area[r]) / denom
        return out
    for b in prange(B):
        kb = weight_key(qk, b)
        if kind == 0:
            wi = np.empty(n, dtype=np.int32)
            hashed_weights_into(kb, h, wi)
            for c in range(n_cells):
                a = bounds[c]
                e = bounds[c + 1]
                out[b, c] = _auc_pass_int(y[a:e], tie_end[a:e] if ties else tie_end, a, wi[a:e])
        else:
            w = np.empty(n, dtype=np.float64)
            hashed_weights_into(kb, h, w)
            for c in range(n_cells):
                a = bounds[c]
                e = bounds[c + 1]
                out[b, c] = _sorted_stat(kind, x[a:e], y[a:e], tie_end[a:e] if ties else tie_end, a, w[a:e], q)
    return out


@parallel_kernel
def sorted_weighted(kind, W, x, y, tie_end, bounds, q):
    """As :func:`sorted_poisson` with explicit weights ``W[b, i]`` in sorted order."""
    B = W.shape[0]
    n_cells = bounds.shape[0] - 1
    out = np.empty((B, n_cells), dtype=np.float64)
    for b in prange(B):
        w = W[b]
        for c in range(n_cells):
            a = bounds[c]
            e = bounds[c + 1]
            out[b, c] = _sorted_stat(kind, x[a:e], y[a:e], tie_end[a:e] if tie_end.shape[0] > 0 else tie_end, a,
                                    w[a:e], q)
    return out
