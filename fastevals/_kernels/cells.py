"""Kernels that fold rows into per-cell tables: counts per (cell, outcome level)
and n / mean / M2 per cell, where a cell is a (segment, group) pair.

Rows are processed in fixed-size chunks. Each chunk owns its own slot of the
partial tables and makes two passes over rows that stay in cache (sums, then
deviations from the chunk mean, with the corrected two-pass formula: no raw
sums of squares); the chunk
slots are then merged serially, in chunk order, with Chan et al.'s formula.
Chunking depends only on the number of rows, never on the thread count, so 1
and N threads give bit-identical results.

Inside a chunk, accumulators are spread over four lanes (row i of the chunk
goes to lane i & 3): consecutive rows of the same cell then do not wait on each other's
store, which was measured to make the first pass ~1.5x faster. The loops are
written out per case (with/without segment, outcome, value) because a branch
inside the row loop was measured to cost up to 2.5x.

Contract (CPU kernels; a CUDA twin would share it):
  seg, grp, out: integer code arrays (``seg``/``out`` may be empty = absent);
  local code = code - offset, in [0, width). val: numeric values (may be empty).
  Returns cnt[n_cells * n_out] (int64), n[n_cells] (int64), mean[n_cells],
  m2[n_cells] (float64), with n_cells = seg_width * n_grp. A NaN value poisons
  its cell's mean, which the caller checks. Anything more in the row loops (a
  running min/max, a count of non-0/1 values) was measured to cost 1.6-2x.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel

LANES = 4


@serial_kernel
def _cell_codes(lo, hi, seg, seg_off, grp, grp_off, n_grp, cb):
    """``cb[i] = (seg - seg_off) * n_grp + grp - grp_off`` for the chunk's rows (int32: cells < 2**31)."""
    seg = seg[lo:hi]
    grp = grp[lo:hi]
    so = np.int32(seg_off)
    go = np.int32(grp_off)
    ng = np.int32(n_grp)
    for i in range(hi - lo):
        cb[i] = (np.int32(seg[i]) - so) * ng + np.int32(grp[i]) - go


@serial_kernel
def _pass_counts_values(lo, hi, cb, grp, grp_off, out, out_off, n_out, val, cnt, s):
    # slices make every index provably >= 0, so numba drops its negative-index
    # wraparound (measured ~2x on this loop)
    grp = grp[lo:hi]
    out = out[lo:hi]
    val = val[lo:hi]
    if cb.shape[0] > 0:
        for i in range(hi - lo):
            u = i & 3
            cell = np.intp(cb[i])
            cnt[u, cell * n_out + np.intp(out[i]) - out_off] += 1
            s[u, cell] += val[i]
    else:
        for i in range(hi - lo):
            u = i & 3
            cell = np.intp(grp[i]) - grp_off
            cnt[u, cell * n_out + np.intp(out[i]) - out_off] += 1
            s[u, cell] += val[i]


@serial_kernel
def _pass_counts(lo, hi, cb, grp, grp_off, out, out_off, n_out, cnt):
    # slices make every index provably >= 0, so numba drops its negative-index
    # wraparound (measured ~2x on this loop)
    grp = grp[lo:hi]
    out = out[lo:hi]
    if cb.shape[0] > 0:
        for i in range(hi - lo):
            cell = np.intp(cb[i])
            cnt[i & 3, cell * n_out + np.intp(out[i]) - out_off] += 1
    else:
        for i in range(hi - lo):
            cell = np.intp(grp[i]) - grp_off
            cnt[i & 3, cell * n_out + np.intp(out[i]) - out_off] += 1


@serial_kernel
def _pass_values(lo, hi, cb, grp, grp_off, val, cnt, s):
    # slices make every index provably >= 0, so numba drops its negative-index
    # wraparound (measured ~2x on this loop)
    grp = grp[lo:hi]
    val = val[lo:hi]
    if cb.shape[0] > 0:
        for i in range(hi - lo):
            u = i & 3
            cell = np.intp(cb[i])
            cnt[u, cell] += 1
            s[u, cell] += val[i]
    else:
        for i in range(hi - lo):
            u = i & 3
            cell = np.intp(grp[i]) - grp_off
            cnt[u, cell] += 1
            s[u, cell] += val[i]


@serial_kernel
def _pass_deviations(lo, hi, cb, grp, grp_off, val, mean, m2, d1):
    # slices make every index provably >= 0, so numba drops its negative-index
    # wraparound (measured ~2x on this loop)
    grp = grp[lo:hi]
    val = val[lo:hi]
    if cb.shape[0] > 0:
        for i in range(hi - lo):
            cell = np.intp(cb[i])
            d = val[i] - mean[cell]
            d1[i & 3, cell] += d
            m2[i & 3, cell] += d * d
    else:
        for i in range(hi - lo):
            cell = np.intp(grp[i]) - grp_off
            d = val[i] - mean[cell]
            d1[i & 3, cell] += d
            m2[i & 3, cell] += d * d


@serial_kernel
def _fold_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells,
                cnt_out, n_out_arr, mean_out, m2_out):
    has_out = out.shape[0] > 0
    has_val = val.shape[0] > 0
    width = n_out if has_out else 1
    cnt = np.zeros((LANES, n_cells * width), dtype=np.int64)
    s = np.zeros((LANES, n_cells), dtype=np.float64)
    # with segments, each row's cell code is computed first, in a loop that vectorizes; the
    # passes then index one array, as in the flat case (measured ~1.8x faster than
    # computing (segment, group) -> cell inside the accumulating loops)
    cb = np.empty(hi - lo if seg.shape[0] > 0 else 0, dtype=np.int32)
    if seg.shape[0] > 0:
        _cell_codes(lo, hi, seg, seg_off, grp, grp_off, n_grp, cb)
    if has_out and has_val:
        _pass_counts_values(lo, hi, cb, grp, grp_off, out, out_off, n_out, val, cnt, s)
    elif has_out:
        _pass_counts(lo, hi, cb, grp, grp_off, out, out_off, n_out, cnt)
    else:
        _pass_values(lo, hi, cb, grp, grp_off, val, cnt, s)
    for j in range(n_cells * width):
        t = 0
        for u in range(LANES):
            t += cnt[u, j]
        cnt_out[c, j] = t
    for k in range(n_cells):
        t = 0
        for o in range(width):
            t += cnt_out[c, k * width + o]
        n_out_arr[c, k] = t
    if has_val:
        for k in range(n_cells):
            if n_out_arr[c, k] > 0:
                tot = 0.0
                for u in range(LANES):
                    tot += s[u, k]
                mean_out[c, k] = tot / n_out_arr[c, k]
        m2 = np.zeros((LANES, n_cells), dtype=np.float64)
        d1 = np.zeros((LANES, n_cells), dtype=np.float64)
        _pass_deviations(lo, hi, cb, grp, grp_off, val, mean_out[c], m2, d1)
        for k in range(n_cells):
            if n_out_arr[c, k] > 0:
                t1 = 0.0
                t2 = 0.0
                for u in range(LANES):
                    t1 += d1[u, k]
                    t2 += m2[u, k]
                # corrected two-pass (Chan, Golub & LeVeque 1983): the sum of deviations is zero
                # in exact arithmetic; what rounding left in it corrects the mean and M2
                m2_out[c, k] = t2 - t1 * t1 / n_out_arr[c, k]
                mean_out[c, k] += t1 / n_out_arr[c, k]


@serial_kernel
def _merge_chunks(cnt, n, mean, m2):
    """Fold chunk rows into row 0: counts add, moments merge with Chan et al."""
    n_chunks, n_cells = n.shape
    for c in range(1, n_chunks):
        for j in range(cnt.shape[1]):
            cnt[0, j] += cnt[c, j]
        for k in range(n_cells):
            nb = n[c, k]
            if nb == 0:
                continue
            na = n[0, k]
            if na == 0:
                n[0, k] = nb
                mean[0, k] = mean[c, k]
                m2[0, k] = m2[c, k]
                continue
            tot = na + nb
            delta = mean[c, k] - mean[0, k]
            mean[0, k] += delta * (nb / tot)
            m2[0, k] += m2[c, k] + delta * delta * (na * (nb / tot))
            n[0, k] = tot


@serial_kernel
def fold_cells_serial(seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells, chunk):
    rows = grp.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    width = n_out if out.shape[0] > 0 else 1
    cnt = np.zeros((n_chunks, n_cells * width), dtype=np.int64)
    n = np.zeros((n_chunks, n_cells), dtype=np.int64)
    mean = np.zeros((n_chunks, n_cells), dtype=np.float64)
    m2 = np.zeros((n_chunks, n_cells), dtype=np.float64)
    for c in range(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells,
                    cnt, n, mean, m2)
    _merge_chunks(cnt, n, mean, m2)
    return cnt[0], n[0], mean[0], m2[0]


@parallel_kernel
def fold_cells_parallel(seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells, chunk):
    rows = grp.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    width = n_out if out.shape[0] > 0 else 1
    cnt = np.zeros((n_chunks, n_cells * width), dtype=np.int64)
    n = np.zeros((n_chunks, n_cells), dtype=np.int64)
    mean = np.zeros((n_chunks, n_cells), dtype=np.float64)
    m2 = np.zeros((n_chunks, n_cells), dtype=np.float64)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells,
                    cnt, n, mean, m2)
    _merge_chunks(cnt, n, mean, m2)
    return cnt[0], n[0], mean[0], m2[0]


@serial_kernel
def first_non_binary(val):
    """Index of the first value that is neither 0 nor 1, or -1. Stops at the first one, so
    a column of amounts costs one row; only a 0/1 column is read to its end."""
    for i in range(val.shape[0]):
        x = val[i]
        if x != 0 and x != 1:
            return i
    return -1
