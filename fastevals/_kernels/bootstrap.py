"""Bootstrap kernels: per-replicate weighted sums (the state of every sum-based
metric) and one weighted pass per replicate over sorted data (AUC, average
precision, quantiles).

Weights come from :mod:`fastevals._kernels.poisson` (counter-based), or from an
explicit weight matrix (the multinomial bootstrap of small inputs).

Determinism.  Replicates are independent output slots, so the parallel loop
runs over blocks of replicates and no slot is shared.  Within a replicate,
weight sums are integers (exact, order-free) and weighted feature sums are
spread over four lanes chosen by the *global* row index (row ``g`` goes to
lane ``g & 3``) and kept in the state between batches: each lane then sees
its rows in the same order whatever the batch size or thread count, so the
sums are bit-identical for any batching, on 1 or N threads.

Contract:
  accumulate_rows(seed, g0, keys, cells, V, wsum, vsum)
    seed: uint64; g0: global index of the batch's first row; keys: uint64
    row keys (empty: the global row index is the key); cells: int64 cell
    codes in [0, n_cells) (empty: one cell); V: float64[F, n] features;
    wsum: int64[B, n_cells] and vsum: float64[B, n_cells, F, 4] updated in place.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel
from .poisson import key_weights_into, row_weights_into, stream_key

LANES = 4
ROW_CHUNK = 4096
REP_BLOCK = 8


@serial_kernel
def _fold_plain(b, g, m, lo, wbuf, V, wsum, vsum):
    # one cell: weight sum as an integer, features over the 4 global-index lanes
    t = 0
    for i in range(m):
        t += wbuf[i]
    wsum[b, 0] += t
    head = (4 - (g & 3)) & 3
    if head > m:
        head = m
    body = (m - head) // 4 * 4
    for f in range(V.shape[0]):
        x = V[f, lo:lo + m]
        acc = vsum[b, 0, f]
        for i in range(head):
            acc[(g + i) & 3] += wbuf[i] * x[i]
        a0 = acc[0]
        a1 = acc[1]
        a2 = acc[2]
        a3 = acc[3]
        for i in range(head, head + body, 4):
            a0 += wbuf[i] * x[i]
            a1 += wbuf[i + 1] * x[i + 1]
            a2 += wbuf[i + 2] * x[i + 2]
            a3 += wbuf[i + 3] * x[i + 3]
        acc[0] = a0
        acc[1] = a1
        acc[2] = a2
        acc[3] = a3
        for i in range(head + body, m):
            acc[(g + i) & 3] += wbuf[i] * x[i]


@serial_kernel
def _fold_cells(b, g, m, lo, wbuf, cells, V, wsum, vsum):
    F = V.shape[0]
    for i in range(m):
        w = wbuf[i]
        if w == 0:
            continue
        c = cells[lo + i]
        wsum[b, c] += w
        lane = (g + i) & 3
        for f in range(F):
            vsum[b, c, f, lane] += w * V[f, lo + i]


@serial_kernel
def _accumulate_block(seed, blk, g0, keys, cells, V, wsum, vsum, wbuf):
    n = V.shape[1] if V.shape[0] > 0 else (cells.shape[0] if cells.shape[0] > 0 else keys.shape[0])
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
                row_weights_into(sb, g, m, wbuf)
            if use_cells:
                _fold_cells(b, g, m, lo, wbuf, cells, V, wsum, vsum)
            else:
                _fold_plain(b, g, m, lo, wbuf, V, wsum, vsum)


@parallel_kernel
def accumulate_rows_parallel(seed, g0, keys, cells, V, wsum, vsum):
    n_blk = (wsum.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    for blk in prange(n_blk):
        wbuf = np.empty(ROW_CHUNK, dtype=np.int64)
        _accumulate_block(seed, blk, g0, keys, cells, V, wsum, vsum, wbuf)


@serial_kernel
def accumulate_rows_serial(seed, g0, keys, cells, V, wsum, vsum):
    n_blk = (wsum.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    wbuf = np.empty(ROW_CHUNK, dtype=np.int64)
    for blk in range(n_blk):
        _accumulate_block(seed, blk, g0, keys, cells, V, wsum, vsum, wbuf)


# ------------------------------------------------------------------------------------------------
# sorted passes: one weighted pass per replicate over data sorted once


@serial_kernel
def _auc_pass(y, tie_end, w):
    # rows sorted by score ascending; tie_end[i]: end of i's tie block (only read at block starts)
    n = y.shape[0]
    neg_below = 0.0
    area = 0.0
    pos = 0.0
    i = 0
    while i < n:
        e = tie_end[i]
        bp = 0.0
        bn = 0.0
        for j in range(i, e):
            if y[j] != 0:
                bp += w[j]
            else:
                bn += w[j]
        area += bp * (neg_below + 0.5 * bn)
        neg_below += bn
        pos += bp
        i = e
    denom = pos * neg_below
    if denom == 0.0:
        return np.nan
    return area / denom


@serial_kernel
def _ap_pass(y, tie_end, w):
    # rows sorted by score DEscending
    n = y.shape[0]
    tp = 0.0
    fp = 0.0
    s = 0.0
    i = 0
    while i < n:
        e = tie_end[i]
        bp = 0.0
        bn = 0.0
        for j in range(i, e):
            if y[j] != 0:
                bp += w[j]
            else:
                bn += w[j]
        tp += bp
        fp += bn
        if bp > 0.0:
            s += bp * (tp / (tp + fp))
        i = e
    if tp == 0.0:
        return np.nan
    return s / tp


@serial_kernel
def _quantile_pass(x, w, q):
    # np.quantile(np.repeat(x, w), q) (linear interpolation) for sorted x and integer weights
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        total += w[i]
    if total == 0.0:
        return np.nan
    h = q * (total - 1.0)
    lo = np.floor(h)
    frac = h - lo
    # find the values at expanded positions lo and lo + 1
    cum = 0.0
    v_lo = np.nan
    for i in range(n):
        if w[i] == 0:
            continue
        cum += w[i]
        if cum > lo:
            v_lo = x[i]
            if cum > lo + 1.0 or frac == 0.0:
                return v_lo
            for j in range(i + 1, n):
                if w[j] != 0:
                    return v_lo + frac * (x[j] - v_lo)
            return v_lo
    return v_lo


@serial_kernel
def _sorted_stat(kind, x, y, tie_end, w, q):
    if kind == 0:
        return _auc_pass(y, tie_end, w)
    if kind == 1:
        return _ap_pass(y, tie_end, w)
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
        wk = np.empty(n, dtype=np.int64)
        if use_keys:
            key_weights_into(sb, keys, 0, n, wk)
            for i in range(n):
                w[i] = wk[i]
        else:
            # rows are a permutation of 0..n-1: draw in row order (one hash per two rows), gather
            row_weights_into(sb, 0, n, wk)
            for i in range(n):
                w[i] = wk[rows[i]]
        for c in range(n_cells):
            a = bounds[c]
            e = bounds[c + 1]
            out[b, c] = _sorted_stat(kind, x[a:e], y[a:e], tie_end[a:e] - a, w[a:e], q)
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
            out[b, c] = _sorted_stat(kind, x[a:e], y[a:e], tie_end[a:e] - a, w[a:e], q)
    return out
