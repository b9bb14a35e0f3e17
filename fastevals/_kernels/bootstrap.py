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
from .poisson import key_weights_into, row_weights_into, stream_key

LANES = 16
ROW_CHUNK = 4096
REP_BLOCK = 8


@serial_kernel
def _int_sum(w):
    t = 0
    for i in range(w.shape[0]):
        t += w[i]
    return t


@serial_kernel
def _lanes_body(w, x, acc):
    # 16 independent accumulators written out as scalars, and 16-row slices: LLVM then keeps
    # them in registers and drops bounds / wraparound handling (measured 2x over an acc[k] loop)
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    a4, a5, a6, a7 = acc[4], acc[5], acc[6], acc[7]
    a8, a9, a10, a11 = acc[8], acc[9], acc[10], acc[11]
    a12, a13, a14, a15 = acc[12], acc[13], acc[14], acc[15]
    for r in range(w.shape[0] // LANES):
        j = r * LANES
        wr = w[j:j + LANES]
        xr = x[j:j + LANES]
        a0 += wr[0] * xr[0]
        a1 += wr[1] * xr[1]
        a2 += wr[2] * xr[2]
        a3 += wr[3] * xr[3]
        a4 += wr[4] * xr[4]
        a5 += wr[5] * xr[5]
        a6 += wr[6] * xr[6]
        a7 += wr[7] * xr[7]
        a8 += wr[8] * xr[8]
        a9 += wr[9] * xr[9]
        a10 += wr[10] * xr[10]
        a11 += wr[11] * xr[11]
        a12 += wr[12] * xr[12]
        a13 += wr[13] * xr[13]
        a14 += wr[14] * xr[14]
        a15 += wr[15] * xr[15]
    acc[0], acc[1], acc[2], acc[3] = a0, a1, a2, a3
    acc[4], acc[5], acc[6], acc[7] = a4, a5, a6, a7
    acc[8], acc[9], acc[10], acc[11] = a8, a9, a10, a11
    acc[12], acc[13], acc[14], acc[15] = a12, a13, a14, a15


@serial_kernel
def _fold_plain(b, g, m, lo, wbuf, V, wsum, vsum):
    # one cell: weight sum as an integer, features over the global-index lanes
    wsum[b, 0] += _int_sum(wbuf[:m])
    head = (LANES - (g & (LANES - 1))) & (LANES - 1)
    if head > m:
        head = m
    body = (m - head) // LANES * LANES
    for f in range(V.shape[0]):
        x = V[f, lo:lo + m]
        acc = vsum[b, 0, f]
        for i in range(head):
            acc[(g + i) & (LANES - 1)] += wbuf[i] * x[i]
        _lanes_body(wbuf[head:head + body], x[head:head + body], acc)
        for i in range(head + body, m):
            acc[(g + i) & (LANES - 1)] += wbuf[i] * x[i]


@serial_kernel
def _fold_cells(b, g, m, lo, wbuf, cells, V, wsum, vsum):
    F = V.shape[0]
    for i in range(m):
        w = wbuf[i]
        if w == 0:
            continue
        c = cells[lo + i]
        wsum[b, c] += w
        lane = (g + i) & (LANES - 1)
        for f in range(F):
            vsum[b, c, f, lane] += w * V[f, lo + i]


@serial_kernel
def _accumulate_block(seed, blk, g0, n, keys, cells, V, wsum, vsum, wbuf, hbuf):
    B = wsum.shape[0]
    b_lo = blk * REP_BLOCK
    b_hi = min(B, b_lo + REP_BLOCK)
    use_keys = keys.shape[0] > 0
    use_cells = cells.shape[0] > 0
    for lo in range(0, n, ROW_CHUNK):
        m = min(ROW_CHUNK, n - lo)
        g = g0 + lo
        for b in range(b_lo, b_hi):
            sb = stream_key(seed, b)
            if use_keys:
                key_weights_into(sb, keys, lo, lo + m, wbuf)
            else:
                row_weights_into(sb, g, m, wbuf, hbuf)
            if use_cells:
                _fold_cells(b, g, m, lo, wbuf, cells, V, wsum, vsum)
            else:
                _fold_plain(b, g, m, lo, wbuf, V, wsum, vsum)


@parallel_kernel
def accumulate_rows_parallel(seed, g0, n, keys, cells, V, wsum, vsum):
    n_blk = (wsum.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    for blk in prange(n_blk):
        wbuf = np.empty(ROW_CHUNK, dtype=np.int32)
        hbuf = np.empty(ROW_CHUNK // 2 + 2, dtype=np.uint64)
        _accumulate_block(seed, blk, g0, n, keys, cells, V, wsum, vsum, wbuf, hbuf)


@serial_kernel
def accumulate_rows_serial(seed, g0, n, keys, cells, V, wsum, vsum):
    n_blk = (wsum.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    wbuf = np.empty(ROW_CHUNK, dtype=np.int32)
    hbuf = np.empty(ROW_CHUNK // 2 + 2, dtype=np.uint64)
    for blk in range(n_blk):
        _accumulate_block(seed, blk, g0, n, keys, cells, V, wsum, vsum, wbuf, hbuf)


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
    use_keys = keys.shape[0] > 0
    for b in prange(B):
        sb = stream_key(seed, b)
        w = np.empty(n, dtype=np.float64)
        wk = np.empty(n, dtype=np.int32)
        if use_keys:
            key_weights_into(sb, keys, 0, n, wk)
            for i in range(n):
                w[i] = wk[i]
        else:
            # rows are a permutation of 0..n-1: draw in row order (one hash per two rows), gather
            row_weights_into(sb, 0, n, wk, np.empty(n // 2 + 2, dtype=np.uint64))
            for i in range(n):
                w[i] = wk[rows[i]]
        for c in range(n_cells):
            a = bounds[c]
            e = bounds[c + 1]
            out[b, c] = _sorted_stat(kind, x[a:e], y[a:e], tie_end[a:e] if tie_end.shape[0] > 0 else tie_end, a,
                                    w[a:e], q)
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
