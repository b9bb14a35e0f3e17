"""CUDA twins of the Poisson-bootstrap kernels of :mod:`fastevals._kernels.bootstrap`.

:func:`accumulate_rows` (twin of ``accumulate_rows_{serial,parallel}``)
    Per replicate and cell, the integer sum of the weights and the weighted
    feature sums.  One pass over the rows folds a tile of up to
    :data:`fastevals._cuda.config.REPLICATES_PER_PASS` replicates (and of
    cells and features, so that each thread's sums fit :data:`LOCAL_SLOTS`
    local slots): each thread takes rows grid-stride, hashes the row once and
    draws its weight in every replicate of the tile from that hash (the same
    bits as the CPU, see :mod:`.rng`), adding into its private sums; a block
    reduces them with a shared-memory tree, and the blocks' partial sums are
    added in block order into device arrays that hold the whole result until
    the call returns.  Weight sums are integers, so equal to the CPU's
    exactly; feature sums agree to rounding (the CPU's 16 summation lanes are
    a CPU device: the GPU adds its sums to lane 0, and consumers sum over lanes).

:func:`sorted_poisson` (twin of ``sorted_poisson``)
    AUC, average precision or a quantile per (replicate, cell) over rows sorted
    once, drawing each weight from the rows' hashes (computed once, in sorted order).  AUC is a sum
    over rows given the weighted negatives below each row, so a cell's rows
    are split into segments (at tie-block starts), one thread per (segment,
    cell, replicate) computes each segment's positives, negatives and area,
    and a second kernel combines the segments in order.  Average precision and
    quantiles: one thread per (replicate, cell), walking the rows in the CPU's
    order.  Either way the statistic is the CPU's to rounding.

:func:`weight_matrix` (twin of ``_kernels.poisson.weight_matrix``)
    The weights themselves, for tests.
"""

from __future__ import annotations

import math

import numpy as np
from numba import float64, int64, uint32

from . import config
from ._jit import cuda, device, kernel, launching
from ._reduce import block_sum_f64, block_sum_i64
from .rng import replicate_word, row_hash, row_keys, weight

#: per-thread sums one pass keeps: replicates x cells (weights) and x features (values)
LOCAL_SLOTS = 64


# ------------------------------------------------------------------------------------------------
# sums of weights and weighted features


@kernel
def _accumulate_kernel(seed, b0, n_rep, g0, n, keys, cells, c0, n_c, V, f0, n_f, part_w, part_v):
    acc_w = cuda.local.array(LOCAL_SLOTS, int64)
    acc_v = cuda.local.array(LOCAL_SLOTS, float64)
    xv = cuda.local.array(LOCAL_SLOTS, float64)
    kbs = cuda.local.array(LOCAL_SLOTS, uint32)
    for r in range(n_rep):
        kbs[r] = replicate_word(seed, b0 + r)
    r0, r1, R1 = row_keys(seed)
    for s in range(n_rep * n_c):
        acc_w[s] = 0
    for s in range(n_rep * n_c * n_f):
        acc_v[s] = 0.0
    use_keys = keys.shape[0] > 0
    use_cells = cells.shape[0] > 0
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        c = 0
        if use_cells:
            c = cells[i] - c0
            if c < 0 or c >= n_c:
                continue
        for f in range(n_f):
            xv[f] = V[f0 + f, i]
        if use_keys:
            h = row_hash(keys[i], r0, r1, R1)
        else:
            h = row_hash(g0 + i, r0, r1, R1)
        for r in range(n_rep):
            w = weight(h, kbs[r])
            if w == 0:
                continue
            s = r * n_c + c
            acc_w[s] += w
            for f in range(n_f):
                acc_v[s * n_f + f] += w * xv[f]
    for s in range(n_rep * n_c):
        t = block_sum_i64(acc_w[s])
        if cuda.threadIdx.x == 0:
            part_w[cuda.blockIdx.x, s] = t
    for s in range(n_rep * n_c * n_f):
        t = block_sum_f64(acc_v[s])
        if cuda.threadIdx.x == 0:
            part_v[cuda.blockIdx.x, s] = t


#: replicates the one-cell, one-feature kernel folds per pass (its sums stay in registers)
MEAN_REPS = 8


@kernel
def _mean_kernel(seed, b0, n_rep, g0, n, x, part_w, part_v):
    """The hot case (one cell, one feature, row keys): :data:`MEAN_REPS` replicates per pass, with
    loops of constant length so that keys and sums live in registers."""
    kbs = cuda.local.array(MEAN_REPS, uint32)
    acc_w = cuda.local.array(MEAN_REPS, int64)
    acc_v = cuda.local.array(MEAN_REPS, float64)
    for r in range(MEAN_REPS):
        kbs[r] = replicate_word(seed, b0 + r)
        acc_w[r] = 0
        acc_v[r] = 0.0
    r0, r1, R1 = row_keys(seed)
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        xi = x[i]
        h = row_hash(g0 + i, r0, r1, R1)
        for r in range(MEAN_REPS):
            w = weight(h, kbs[r])
            acc_w[r] += w
            acc_v[r] += w * xi
    for r in range(MEAN_REPS):
        tw = block_sum_i64(acc_w[r])
        tv = block_sum_f64(acc_v[r])
        if cuda.threadIdx.x == 0 and r < n_rep:
            part_w[cuda.blockIdx.x, r] = tw
            part_v[cuda.blockIdx.x, r] = tv


@kernel
def _add_tile(part_w, part_v, n_c, n_f, b0, c0, f0, add_w, wsum, vsum):
    """Blocks' partial sums, in block order, into wsum[b0 + r, c0 + c] and vsum[b0 + r, c0 + c, f0 + f]."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    n_blocks = part_w.shape[0]
    if add_w:
        for s in range(start, part_w.shape[1], stride):
            acc = part_w[0, s]
            for k in range(1, n_blocks):
                acc += part_w[k, s]
            wsum[b0 + s // n_c, c0 + s % n_c] += acc
    for s in range(start, part_v.shape[1], stride):
        acc = part_v[0, s]
        for k in range(1, n_blocks):
            acc += part_v[k, s]
        rc = s // n_f
        vsum[b0 + rc // n_c, c0 + rc % n_c, f0 + s % n_f] += acc


def _tiles(B, C, F):
    """(replicates, cells, features) per pass: their product fits LOCAL_SLOTS."""
    n_f = min(F, LOCAL_SLOTS)
    n_c = min(C, max(1, LOCAL_SLOTS // max(n_f, 1)))
    per_rep = n_c * max(n_f, 1)
    n_rep = min(int(config.REPLICATES_PER_PASS), max(1, LOCAL_SLOTS // per_rep), B)
    return max(n_rep, 1), n_c, n_f


def accumulate_rows(seed, g0, n, keys, cells, V, wsum, vsum):
    """Add one batch's Poisson-bootstrap sums into ``wsum`` and ``vsum`` (host arrays, in place).

    The contract of ``fastevals._kernels.bootstrap.accumulate_rows_serial``:
    ``seed`` uint64; ``g0`` the global index of the batch's first row; ``n``
    rows; ``keys`` uint64 cluster keys (empty: the global row index is the
    key); ``cells`` int64 cell codes (empty: one cell); ``V`` float64[F, n];
    ``wsum`` int64[B, n_cells] gets the weight sums (exactly the CPU's),
    ``vsum`` float64[B, n_cells, F, LANES] the weighted feature sums, added to
    lane 0 (equal to the CPU's summed over lanes, to rounding).
    """
    n = int(n)
    B, C = wsum.shape
    F = V.shape[0]
    if n <= 0 or B == 0:
        return
    tpb = config.threads_per_block()
    blocks = config.blocks_for(n, tpb)
    n_rep, n_c, n_f = _tiles(B, C, F)
    with launching():
        d_keys = cuda.to_device(np.ascontiguousarray(keys, dtype=np.uint64))
        d_cells = cuda.to_device(np.ascontiguousarray(cells, dtype=np.int64))
        d_V = cuda.to_device(np.ascontiguousarray(V, dtype=np.float64))
        d_wsum = cuda.to_device(np.ascontiguousarray(wsum))
        d_vsum = cuda.to_device(np.zeros((B, C, F), dtype=np.float64))
        if C == 1 and F == 1 and keys.shape[0] == 0 and cells.shape[0] == 0:
            one = np.int64(1)
            for b0 in range(0, B, MEAN_REPS):
                nr = min(MEAN_REPS, B - b0)
                part_w = cuda.device_array((blocks, nr), dtype=np.int64)
                part_v = cuda.device_array((blocks, nr), dtype=np.float64)
                _mean_kernel[blocks, tpb](np.uint64(seed), np.int64(b0), np.int64(nr), np.int64(g0), np.int64(n),
                                          d_V[0], part_w, part_v)
                _add_tile[config.blocks_for(nr, tpb), tpb](part_w, part_v, one, one, np.int64(b0), np.int64(0),
                                                           np.int64(0), True, d_wsum, d_vsum)
            wsum[...] = d_wsum.copy_to_host()
            vsum[..., 0] += d_vsum.copy_to_host()
            return
        for b0 in range(0, B, n_rep):
            nr = min(n_rep, B - b0)
            for c0 in range(0, C, n_c):
                nc = min(n_c, C - c0)
                for f0 in range(0, max(F, 1), max(n_f, 1)):
                    nf = min(n_f, F - f0)
                    part_w = cuda.device_array((blocks, nr * nc), dtype=np.int64)
                    part_v = cuda.device_array((blocks, nr * nc * nf), dtype=np.float64)
                    _accumulate_kernel[blocks, tpb](np.uint64(seed), np.int64(b0), np.int64(nr), np.int64(g0),
                                                    np.int64(n), d_keys, d_cells, np.int64(c0), np.int64(nc), d_V,
                                                    np.int64(f0), np.int64(nf), part_w, part_v)
                    slots = nr * nc * max(nf, 1)
                    _add_tile[config.blocks_for(slots, tpb), tpb](part_w, part_v, np.int64(nc), np.int64(max(nf, 1)),
                                                                  np.int64(b0), np.int64(c0), np.int64(f0),
                                                                  f0 == 0, d_wsum, d_vsum)
        wsum[...] = d_wsum.copy_to_host()
        vsum[..., 0] += d_vsum.copy_to_host()


# ------------------------------------------------------------------------------------------------
# the weights themselves (tests)


@kernel
def _weights_kernel(seed, b0, g0, keys, out):
    n_rep, m = out.shape
    use_keys = keys.shape[0] > 0
    r0, r1, R1 = row_keys(seed)
    for s in range(cuda.grid(1), n_rep * m, cuda.gridsize(1)):
        r = s // m
        i = s % m
        if use_keys:
            h = row_hash(keys[i], r0, r1, R1)
        else:
            h = row_hash(g0 + i, r0, r1, R1)
        out[r, i] = weight(h, replicate_word(seed, b0 + r))


def weight_matrix(seed, b0, n_rep, g0, n, keys):
    """Weights ``w[b, i]`` (uint8) of replicates ``b0 .. b0 + n_rep - 1``, as ``_kernels.poisson.weight_matrix``.

    Rows ``g0 .. g0 + n - 1`` when ``keys`` is empty, else the rows with these cluster keys.
    """
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    m = keys.shape[0] if keys.shape[0] > 0 else int(n)
    out = np.zeros((int(n_rep), m), dtype=np.uint8)
    if out.size == 0:
        return out
    tpb = config.threads_per_block()
    with launching():
        d_out = cuda.to_device(out)
        _weights_kernel[config.blocks_for(out.size, tpb), tpb](np.uint64(seed), np.int64(b0), np.int64(g0),
                                                               cuda.to_device(keys), d_out)
        return d_out.copy_to_host()


# ------------------------------------------------------------------------------------------------
# sorted passes: AUC, average precision, quantiles


@kernel
def _hash_kernel(seed, rows, keys, h):
    """h[i]: the hash of sorted position i (its cluster key, or its global row index rows[i])."""
    use_keys = keys.shape[0] > 0
    r0, r1, R1 = row_keys(seed)
    for i in range(cuda.grid(1), h.shape[0], cuda.gridsize(1)):
        if use_keys:
            h[i] = row_hash(keys[i], r0, r1, R1)
        else:
            h[i] = row_hash(rows[i], r0, r1, R1)


@device
def _w(i, h, kb):
    """Weight (float) of sorted position ``i`` in the replicate with word ``kb``."""
    return np.float64(weight(h[i], kb))


@device
def _auc_sums(a, e, y, tie_end, h, kb):
    """(positive weight, negative weight, area) of rows a..e sorted by score ascending, starting
    with no negatives below; tie_end[i]: end of i's tie block (empty: no ties)."""
    neg_below = 0.0
    area = 0.0
    pos = 0.0
    if tie_end.shape[0] == 0:
        for j in range(a, e):
            wj = _w(j, h, kb)
            pj = wj * y[j]
            area += pj * neg_below
            neg_below += wj - pj
            pos += pj
    else:
        i = a
        while i < e:
            te = tie_end[i]
            bp = 0.0
            bt = 0.0
            for j in range(i, te):
                wj = _w(j, h, kb)
                bt += wj
                bp += wj * y[j]
            bn = bt - bp
            area += bp * (neg_below + 0.5 * bn)
            neg_below += bn
            pos += bp
            i = te
    return pos, neg_below, area


@device
def _auc(a, e, y, tie_end, h, kb):
    pos, neg_below, area = _auc_sums(a, e, y, tie_end, h, kb)
    denom = pos * neg_below
    if denom == 0.0:
        return math.nan
    return area / denom


@device
def _ap(a, e, y, tie_end, h, kb):
    # rows a..e sorted by score descending
    tp = 0.0
    fp = 0.0
    s = 0.0
    i = a
    while i < e:
        te = tie_end[i]
        bp = 0.0
        bt = 0.0
        for j in range(i, te):
            wj = _w(j, h, kb)
            bt += wj
            bp += wj * y[j]
        tp += bp
        fp += bt - bp
        d = tp + fp
        if d > 0.0:
            s += bp * (tp / d)
        i = te
    if tp == 0.0:
        return math.nan
    return s / tp


@device
def _lerp(a, b, t):
    # numpy.quantile's interpolation (it switches form at t = 0.5)
    d = b - a
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


@device
def _quantile(a, e, x, q, h, kb):
    # np.quantile(np.repeat(x, w), q) for sorted x and integer weights (weights drawn again per pass)
    total = 0.0
    for i in range(a, e):
        total += _w(i, h, kb)
    if total == 0.0:
        return math.nan
    pos = total * q + (1.0 - q) - 1.0
    lo = math.floor(pos)
    frac = pos - lo
    if lo >= total - 1.0:
        lo = total - 1.0
        frac = 0.0
    if lo < 0.0:
        lo = 0.0
        frac = 0.0
    cum = 0.0
    i = a
    while i < e:
        cum += _w(i, h, kb)
        if cum > lo:
            break
        i += 1
    if i >= e:
        return math.nan
    xa = x[i]
    if cum > lo + 1.0:
        return _lerp(xa, xa, frac)
    for j in range(i + 1, e):
        if _w(j, h, kb) != 0.0:
            return _lerp(xa, x[j], frac)
    return xa


@device
def _segment_start(a, e, s, n_seg, tie_end):
    """Start of segment ``s`` of rows a..e, moved forward to the start of a tie block."""
    if s >= n_seg:
        return e
    i = a + (e - a) * s // n_seg
    if i > a and tie_end.shape[0] > 0 and tie_end[i - 1] > i:
        i = tie_end[i - 1]  # i was inside the tie block of i - 1: start after it
    return min(i, e)


@kernel
def _auc_segments_kernel(seed, n_seg, y, tie_end, h, bounds, part):
    """part[s, c, b] = (positive weight, negative weight, area with no negatives before the
    segment) of segment s of cell c in replicate b.  Neighbouring threads take neighbouring
    replicates of one segment: they read the same rows."""
    _, n_cells, B, _ = part.shape
    for item in range(cuda.grid(1), n_seg * n_cells * B, cuda.gridsize(1)):
        b = item % B
        c = (item // B) % n_cells
        s = item // (B * n_cells)
        kb = replicate_word(seed, b)
        a = bounds[c]
        e = bounds[c + 1]
        lo = _segment_start(a, e, s, n_seg, tie_end)
        hi = _segment_start(a, e, s + 1, n_seg, tie_end)
        pos, neg_below, area = _auc_sums(lo, hi, y, tie_end, h, kb)
        part[s, c, b, 0] = pos
        part[s, c, b, 1] = neg_below
        part[s, c, b, 2] = area


@kernel
def _auc_combine_kernel(part, out):
    """AUC per (replicate, cell) from its segments, in order: each segment's positives also
    rank above the negatives of every segment before it."""
    n_seg, n_cells, B, _ = part.shape
    for item in range(cuda.grid(1), n_cells * B, cuda.gridsize(1)):
        b = item % B
        c = item // B
        pos = 0.0
        neg = 0.0
        area = 0.0
        for s in range(n_seg):
            p_s = part[s, c, b, 0]
            area += part[s, c, b, 2] + p_s * neg
            neg += part[s, c, b, 1]
            pos += p_s
        denom = pos * neg
        out[b, c] = math.nan if denom == 0.0 else area / denom


@kernel
def _sorted_kernel(kind, seed, x, y, tie_end, h, bounds, q, out):
    B, n_cells = out.shape
    for s in range(cuda.grid(1), B * n_cells, cuda.gridsize(1)):
        b = s // n_cells
        c = s % n_cells
        kb = replicate_word(seed, b)
        a = bounds[c]
        e = bounds[c + 1]
        if kind == 0:
            out[b, c] = _auc(a, e, y, tie_end, h, kb)
        elif kind == 1:
            out[b, c] = _ap(a, e, y, tie_end, h, kb)
        else:
            out[b, c] = _quantile(a, e, x, q, h, kb)


def sorted_poisson(kind, seed, B, x, y, tie_end, keys, rows, bounds, q):
    """Statistic per (replicate, cell) over rows sorted within cells: float64[B, n_cells].

    The contract of ``fastevals._kernels.bootstrap.sorted_poisson``:
    ``bounds[c]:bounds[c + 1]`` are cell c's rows in sorted order; ``rows``
    their global row indices (the weight key) unless ``keys`` (cluster keys, in
    sorted order) is given; ``tie_end[i]`` the end of i's tie block (may be
    empty for AUC without ties); kind 0 AUC (scores ascending), 1 average
    precision (descending), 2 quantile ``q`` of ``x``.
    """
    B = int(B)
    n_cells = bounds.shape[0] - 1
    out = np.empty((B, n_cells), dtype=np.float64)
    if out.size == 0:
        return out
    tpb = config.threads_per_block()
    n = int(keys.shape[0]) if keys.shape[0] > 0 else int(np.asarray(rows).shape[0])
    with launching():
        # the rows' hashes in sorted order, once: each weight is then one round of them
        d_h = cuda.device_array(max(n, 1), dtype=np.uint32)
        if n:
            _hash_kernel[config.blocks_for(n, tpb), tpb](
                np.uint64(seed), cuda.to_device(np.ascontiguousarray(rows, dtype=np.int64)),
                cuda.to_device(np.ascontiguousarray(keys, dtype=np.uint64)), d_h)
        d_y = cuda.to_device(np.ascontiguousarray(y))
        d_tie = cuda.to_device(np.ascontiguousarray(tie_end, dtype=np.int64))
        d_bounds = cuda.to_device(np.ascontiguousarray(bounds, dtype=np.int64))
        d_out = cuda.device_array((B, n_cells), dtype=np.float64)
        if kind == 0:
            widest = int(np.max(np.diff(bounds))) if n_cells else 0
            n_seg = max(1, min(int(config.MAX_SEGMENTS), widest // max(1, int(config.SORTED_SEGMENT_ROWS))))
            d_part = cuda.device_array((n_seg, n_cells, B, 3), dtype=np.float64)
            _auc_segments_kernel[config.blocks_for(n_seg * n_cells * B, tpb), tpb](
                np.uint64(seed), np.int64(n_seg), d_y, d_tie, d_h, d_bounds, d_part)
            _auc_combine_kernel[config.blocks_for(n_cells * B, tpb), tpb](d_part, d_out)
        else:
            _sorted_kernel[config.blocks_for(B * n_cells, tpb), tpb](
                np.int64(kind), np.uint64(seed), cuda.to_device(np.ascontiguousarray(x, dtype=np.float64)),
                d_y, d_tie, d_h, d_bounds, np.float64(q), d_out)
        return d_out.copy_to_host()
