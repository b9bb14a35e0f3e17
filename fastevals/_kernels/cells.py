"""Kernels that fold rows into per-cell tables: counts per (cell, outcome level)
and n / mean / M2 per cell, where a cell is a (segment, group) pair.

Rows are processed in fixed-size chunks. Each chunk owns its own slot of the
partial tables and makes one pass over its rows: counts, and per cell the sums
of ``x - K`` and ``(x - K)**2`` around a shift ``K`` near the cell's mean (its
mean over the call's first rows), never raw sums of squares. A chunk where a
cell's shift proved too far from its mean for those sums to keep their digits
makes a second pass over rows still in cache (deviations from the mean, the
corrected two-pass formula). The chunk slots are then merged serially, in
chunk order, with Chan et al.'s formula.
Chunking depends only on the number of rows, never on the thread count, so 1
and N threads give bit-identical results.

Inside a chunk, accumulators are spread over four lanes (row i of the chunk
goes to lane i & 3): consecutive rows of the same cell then do not wait on each other's
store, which was measured to make the first pass ~1.5x faster. A (cell, lane)
keeps its outcome counts and its two sums side by side in one table, and every
index is unsigned (no negative-index wraparound): together 1.4-2x faster than
three tables and signed indices, which also made the general loops faster than
the former kernel of their own for two groups without segments (removed). The
loops are written out per case (with/without segment, outcome, value) because a
branch inside the row loop was measured to cost up to 2.5x.

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
#: rows at the start of each call whose per-cell means become the shifts of the one-pass sums
SHIFT_ROWS = 16384
#: a chunk's cell whose sum of squared shifted values exceeds this many times its M2 gets a second pass
REDO_RATIO = 16.0


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


# Row loops. ``codes`` are the chunk's cell codes: the precomputed (segment, group) codes ``cb``
# (offset 0) or, without segments, the group codes ``grp[lo:hi]`` (offset ``grp_off``); the
# caller slices ``out`` and ``val`` to the chunk too. Every index is unsigned: the loop counter
# and the codes, read as np.uintp (local codes are >= 0; code - offset is computed mod 2**64,
# exact for any offset). numba wraps a *signed* index that may be negative (a compare and a
# select per index and access); without that, these loops ran 1.2-1.8x faster (10M rows, 1 and
# 2 threads, bit-identical results).


@serial_kernel
def _pass_counts(codes, off, out, out_off, n_out, cnt):
    uc = np.uintp(off)
    uo = np.uintp(out_off)
    un = np.uintp(n_out)
    for i in range(codes.shape[0]):
        cell = np.uintp(codes[i]) - uc
        cnt[np.uintp(i & 3), cell * un + np.uintp(out[i]) - uo] += 1


# The one-pass loops: counts, and each cell's sums of d = x - K[cell] and of d * d (K near the
# cell's mean, so the sums carry the spread, not the level: see _fold_codes). One function a
# case, each a single loop without a branch around it: with the case tests inside the function,
# the same loop was measured 1.4x slower; the caller (_fold_codes) branches instead. A (cell,
# lane) keeps its outcome counts and its two sums in one block of ``w`` slots of ``acc``:
# counts first, then sum(d), sum(d * d).


@serial_kernel
def _shifted_out(codes, off, out, out_off, n_out, val, K, acc):
    uc = np.uintp(off)
    uo = np.uintp(out_off)
    w = np.uintp(max(4, n_out + 2))
    k1 = np.uintp(n_out)
    for i in range(codes.shape[0]):
        cell = np.uintp(codes[i]) - uc
        base = (cell * np.uintp(LANES) + np.uintp(i & 3)) * w
        acc[base + np.uintp(out[i]) - uo] += 1.0
        d = val[i] - K[cell]
        acc[base + k1] += d
        acc[base + k1 + np.uintp(1)] += d * d


@serial_kernel
def _shifted_binary(codes, off, out, out_off, val, K, acc):
    # _shifted_out for a two-level outcome (the common case): constant slots, measured
    # 1.05-1.19x faster
    uc = np.uintp(off)
    uo = np.uintp(out_off)
    for i in range(codes.shape[0]):
        cell = np.uintp(codes[i]) - uc
        base = (cell * np.uintp(LANES) + np.uintp(i & 3)) * np.uintp(4)
        acc[base + np.uintp(out[i]) - uo] += 1.0
        d = val[i] - K[cell]
        acc[base + np.uintp(2)] += d
        acc[base + np.uintp(3)] += d * d


@serial_kernel
def _shifted(codes, off, val, K, acc):
    # no outcome: slots count, sum(d), sum(d * d)
    uc = np.uintp(off)
    for i in range(codes.shape[0]):
        cell = np.uintp(codes[i]) - uc
        base = (cell * np.uintp(LANES) + np.uintp(i & 3)) * np.uintp(4)
        acc[base] += 1.0
        d = val[i] - K[cell]
        acc[base + np.uintp(1)] += d
        acc[base + np.uintp(2)] += d * d


@serial_kernel
def _pass_deviations(codes, off, val, mean, m2, d1):
    uc = np.uintp(off)
    for i in range(codes.shape[0]):
        cell = np.uintp(codes[i]) - uc
        d = val[i] - mean[cell]
        d1[np.uintp(i & 3), cell] += d
        m2[np.uintp(i & 3), cell] += d * d


@serial_kernel
def _fold_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells, K,
                cnt_out, n_out_arr, mean_out, m2_out):
    # with segments, each row's cell code is computed first, in a loop that vectorizes; the
    # passes then index one array, as in the flat case (measured ~1.8x faster than
    # computing (segment, group) -> cell inside the accumulating loops)
    if seg.shape[0] > 0:
        cb = np.empty(hi - lo, dtype=np.int32)
        _cell_codes(lo, hi, seg, seg_off, grp, grp_off, n_grp, cb)
        _fold_codes(c, cb, 0, out[lo:hi], out_off, n_out, val[lo:hi], n_cells, K,
                    cnt_out, n_out_arr, mean_out, m2_out)
    else:
        _fold_codes(c, grp[lo:hi], grp_off, out[lo:hi], out_off, n_out, val[lo:hi], n_cells, K,
                    cnt_out, n_out_arr, mean_out, m2_out)


@serial_kernel
def _fold_codes(c, codes, off, out, out_off, n_out, val, n_cells, K, cnt_out, n_out_arr, mean_out, m2_out):
    # one chunk's rows (codes, out and val sliced to it) into chunk slot c
    has_out = out.shape[0] > 0
    has_val = val.shape[0] > 0
    width = n_out if has_out else 1
    if not has_val:
        cnt = np.zeros((LANES, n_cells * width), dtype=np.int64)
        _pass_counts(codes, off, out, out_off, n_out, cnt)
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
        return
    # One table, a block of w slots per (cell, lane): the counts of the outcome levels (float64,
    # exact far beyond a chunk's rows), then the sums of d and of d * d (slots width, width + 1).
    # A row's three updates then share one cache line; measured ~1.15x faster than three tables.
    w = max(4, width + 2)
    acc = np.zeros(n_cells * LANES * w, dtype=np.float64)
    if has_out and n_out == 2:
        _shifted_binary(codes, off, out, out_off, val, K, acc)
    elif has_out:
        _shifted_out(codes, off, out, out_off, n_out, val, K, acc)
    else:
        _shifted(codes, off, val, K, acc)
    for k in range(n_cells):
        nk = 0
        for o in range(width):
            t = 0
            for u in range(LANES):
                t += np.int64(acc[(k * LANES + u) * w + o])
            cnt_out[c, k * width + o] = t
            nk += t
        n_out_arr[c, k] = nk
    # Shifted sums (Chan, Golub & LeVeque 1983): with d = x - K, mean = K + sum(d) / n and
    # M2 = sum(d^2) - sum(d)^2 / n.  The subtraction loses the digits of sum(d^2) / M2 =
    # 1 + (mean - K)^2 / variance; K is the cell's mean over the first rows, so that ratio is ~1.
    # Where it exceeds REDO_RATIO (a cell whose level drifted, or was not among those rows), or
    # is not a number, the chunk's M2 comes from a second pass instead: deviations from the
    # mean just found, with the corrected two-pass formula.
    redo = False
    for k in range(n_cells):
        nk = n_out_arr[c, k]
        if nk > 0:
            t1 = 0.0
            t2 = 0.0
            for u in range(LANES):
                t1 += acc[(k * LANES + u) * w + width]
                t2 += acc[(k * LANES + u) * w + width + 1]
            mean_out[c, k] = K[k] + t1 / nk
            m2 = t2 - t1 * t1 / nk
            m2_out[c, k] = m2
            if not (t2 <= REDO_RATIO * m2):
                redo = True
    if redo:
        dm2 = np.zeros((LANES, n_cells), dtype=np.float64)
        d1 = np.zeros((LANES, n_cells), dtype=np.float64)
        _pass_deviations(codes, off, val, mean_out[c], dm2, d1)
        for k in range(n_cells):
            if n_out_arr[c, k] > 0:
                t1 = 0.0
                t2 = 0.0
                for u in range(LANES):
                    t1 += d1[u, k]
                    t2 += dm2[u, k]
                # corrected two-pass: the sum of deviations is zero in exact arithmetic; what
                # rounding left in it corrects the mean and M2
                m2_out[c, k] = t2 - t1 * t1 / n_out_arr[c, k]
                mean_out[c, k] += t1 / n_out_arr[c, k]


@serial_kernel
def _shifts(seg, seg_off, grp, grp_off, n_grp, val, n_cells):
    """Per-cell shifts for the one-pass sums: each cell's mean over the first SHIFT_ROWS rows;
    a cell not among them gets the mean of those rows (0 if that is not finite).  Computed once
    per call, before the chunks, so every thread count uses the same shifts."""
    K = np.zeros(n_cells, dtype=np.float64)
    if val.shape[0] == 0:
        return K
    m = min(grp.shape[0], SHIFT_ROWS)
    tot = np.zeros(n_cells, dtype=np.float64)
    cnt = np.zeros(n_cells, dtype=np.int64)
    all_sum = 0.0
    for i in range(m):
        if seg.shape[0] > 0:
            cell = (np.intp(seg[i]) - seg_off) * n_grp + np.intp(grp[i]) - grp_off
        else:
            cell = np.intp(grp[i]) - grp_off
        tot[cell] += val[i]
        cnt[cell] += 1
        all_sum += val[i]
    fill = all_sum / m if m > 0 else 0.0
    if not np.isfinite(fill):
        fill = 0.0
    for k in range(n_cells):
        K[k] = tot[k] / cnt[k] if cnt[k] > 0 else fill
        if not np.isfinite(K[k]):
            K[k] = fill
    return K


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
    K = _shifts(seg, seg_off, grp, grp_off, n_grp, val, n_cells)
    for c in range(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells, K,
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
    K = _shifts(seg, seg_off, grp, grp_off, n_grp, val, n_cells)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells, K,
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


# ------------------------------------------------------------------------------------------------
# Co-moments of several numeric columns per cell: the value and its covariates (regression
# adjustment, CUPED) and a ratio metric's denominator.
#
# Contract: y (rows,) and X (n_x, rows) float64 (X may have no rows: n_x = 0); K (n_cells, 1 + n_x)
# per-cell shifts; monomials m = 1 .. M-1 of the shifted values d = (y, X[:, i]) - K[cell]
# defined by ``parent`` / ``var``: monomial m = monomial parent[m] * d[var[m]] (monomial 0 = 1,
# the count). Returns acc (n_chunks, n_cells * LANES * M): per chunk, cell and lane, the sums of
# the monomials of the shifted values (fastevals._cuped turns them into central co-moments).
# The same four lanes and fixed chunks as above: the same result on 1 or N threads.


@serial_kernel
def _moment_rows(codes, off, y, X, K, parent, var, acc):
    uc = np.uintp(off)
    nx = X.shape[0]
    M = parent.shape[0]
    d = np.empty(nx + 1, dtype=np.float64)
    p = np.empty(M, dtype=np.float64)
    p[0] = 1.0
    for i in range(codes.shape[0]):
        cell = np.uintp(codes[i]) - uc
        base = (cell * np.uintp(LANES) + np.uintp(i & 3)) * np.uintp(M)
        d[0] = y[i] - K[cell, 0]
        for j in range(nx):
            d[j + 1] = X[j, i] - K[cell, j + 1]
        acc[base] += 1.0
        for m in range(1, M):
            v = p[parent[m]] * d[var[m]]
            p[m] = v
            acc[base + np.uintp(m)] += v


@serial_kernel
def _moment_rows_pair(codes, off, y, x, K, acc):
    # _moment_rows for one covariate and second moments (the common CUPED case), written out:
    # monomials 1, dy, dx, dy^2, dy dx, dx^2
    uc = np.uintp(off)
    for i in range(codes.shape[0]):
        cell = np.uintp(codes[i]) - uc
        base = (cell * np.uintp(LANES) + np.uintp(i & 3)) * np.uintp(6)
        dy = y[i] - K[cell, 0]
        dx = x[i] - K[cell, 1]
        acc[base] += 1.0
        acc[base + np.uintp(1)] += dy
        acc[base + np.uintp(2)] += dx
        acc[base + np.uintp(3)] += dy * dy
        acc[base + np.uintp(4)] += dy * dx
        acc[base + np.uintp(5)] += dx * dx


@serial_kernel
def _moment_codes(codes, off, y, X, K, parent, var, acc):
    if X.shape[0] == 1 and parent.shape[0] == 6:
        _moment_rows_pair(codes, off, y, X[0], K, acc)
    else:
        _moment_rows(codes, off, y, X, K, parent, var, acc)


@serial_kernel
def _moment_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, y, X, K, parent, var, acc):
    if seg.shape[0] > 0:
        cb = np.empty(hi - lo, dtype=np.int32)
        _cell_codes(lo, hi, seg, seg_off, grp, grp_off, n_grp, cb)
        _moment_codes(cb, 0, y[lo:hi], X[:, lo:hi], K, parent, var, acc[c])
    else:
        _moment_codes(grp[lo:hi], grp_off, y[lo:hi], X[:, lo:hi], K, parent, var, acc[c])


@serial_kernel
def fold_moments_serial(seg, seg_off, grp, grp_off, n_grp, y, X, K, parent, var, n_cells, chunk):
    rows = grp.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    acc = np.zeros((n_chunks, n_cells * LANES * parent.shape[0]), dtype=np.float64)
    for c in range(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _moment_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, y, X, K, parent, var, acc)
    return acc


@parallel_kernel
def fold_moments_parallel(seg, seg_off, grp, grp_off, n_grp, y, X, K, parent, var, n_cells, chunk):
    rows = grp.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    acc = np.zeros((n_chunks, n_cells * LANES * parent.shape[0]), dtype=np.float64)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _moment_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, y, X, K, parent, var, acc)
    return acc
