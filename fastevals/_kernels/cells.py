"""Kernels that fold rows into per-cell tables: counts per (cell, outcome level)
and n / mean / M2 per cell, where a cell is a (segment, group) pair.

Rows are processed in fixed-size chunks. Each chunk owns its own slot of the
partial tables and makes one pass over its rows: counts, and per cell the sums
of ``x - K`` and ``(x - K)**2`` around a shift ``K`` near the cell's mean (its
mean over the call's first rows), never raw sums of squares. A chunk where a
cell's shift proved too far from its mean for those sums to keep their digits
makes a second pass over rows still in cache (deviations from the mean, the
corrected two-pass formula). Two groups without segments take a kernel of
their own (:func:`_fold_chunk_split`). The chunk slots are then merged
serially, in chunk order, with Chan et al.'s formula.
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


# The one-pass loops: counts, and each cell's sums of d = x - K[cell] and of d * d (K near the
# cell's mean, so the sums carry the spread, not the level: see _fold_chunk). One function a case,
# each a single loop without a branch around it: with the case tests inside the function, the
# same loop was measured 1.4x slower; the caller (_fold_chunk) branches instead. Slices make
# every index provably >= 0, so numba drops its negative-index wraparound (measured ~2x).


@serial_kernel
def _shifted_cells_out(lo, hi, cb, out, out_off, n_out, val, K, cnt, s1, s2):
    out = out[lo:hi]
    val = val[lo:hi]
    for i in range(hi - lo):
        u = i & 3
        cell = np.intp(cb[i])
        cnt[u, cell * n_out + np.intp(out[i]) - out_off] += 1
        d = val[i] - K[cell]
        s1[u, cell] += d
        s2[u, cell] += d * d


@serial_kernel
def _shifted_cells_binary(lo, hi, cb, out, out_off, val, K, cnt, s1, s2):
    # _shifted_cells_out for a two-level outcome (the common case): the constant width lets
    # LLVM fold the count's index
    out = out[lo:hi]
    val = val[lo:hi]
    oo = np.intp(out_off)
    for i in range(hi - lo):
        u = i & 3
        cell = np.intp(cb[i])
        cnt[u, 2 * cell + np.intp(out[i]) - oo] += 1
        d = val[i] - K[cell]
        s1[u, cell] += d
        s2[u, cell] += d * d


@serial_kernel
def _shifted_groups_out(lo, hi, grp, grp_off, out, out_off, n_out, val, K, cnt, s1, s2):
    grp = grp[lo:hi]
    out = out[lo:hi]
    val = val[lo:hi]
    for i in range(hi - lo):
        u = i & 3
        cell = np.intp(grp[i]) - grp_off
        cnt[u, cell * n_out + np.intp(out[i]) - out_off] += 1
        d = val[i] - K[cell]
        s1[u, cell] += d
        s2[u, cell] += d * d


@serial_kernel
def _shifted_cells(lo, hi, cb, val, K, cnt, s1, s2):
    val = val[lo:hi]
    for i in range(hi - lo):
        u = i & 3
        cell = np.intp(cb[i])
        cnt[u, cell] += 1
        d = val[i] - K[cell]
        s1[u, cell] += d
        s2[u, cell] += d * d


@serial_kernel
def _shifted_groups(lo, hi, grp, grp_off, val, K, cnt, s1, s2):
    grp = grp[lo:hi]
    val = val[lo:hi]
    for i in range(hi - lo):
        u = i & 3
        cell = np.intp(grp[i]) - grp_off
        cnt[u, cell] += 1
        d = val[i] - K[cell]
        s1[u, cell] += d
        s2[u, cell] += d * d


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
def _fold_chunk_split(c, lo, hi, grp, grp_off, out, out_off, val, cnt_out, n_out_arr, mean_out, m2_out):
    """:func:`_fold_chunk` for the commonest A/B shape: two groups, no segments, a value column
    and an outcome with two levels (or none). Measured ~1.4x faster than the general passes
    (single thread, 10M rows: 33 ms against 44-46 ms, best of 21).

    The general passes scatter into per-cell lanes in memory, a load-add-store per row and
    accumulator. Here each cell's four lanes (row i to lane i & 3) stay in registers, and each
    row is added to both cells, multiplied by 0 or 1 (t, its group): x * 1 = x, x * 0 = +-0 and
    x - x * 1 = 0 exactly, so each cell's lanes sum exactly its own rows. Eight accumulators a
    loop: sixteen (deviations and squares together) spilled x86-64's sixteen vector registers
    and ran at a third of the speed, so M2 is the plain two-pass sum of squared deviations from
    the chunk's mean, and the general kernel's correction term is replaced by a shifted first
    pass (below). Agreement with the general kernel and with exact sums: tests/test_abtest.py.
    Counts come from three integer sums in a loop that vectorizes. A NaN or inf value poisons
    both cells here (NaN * 0 = NaN), not one; the caller rejects either.
    """
    g = grp[lo:hi]
    v = val[lo:hi]
    m = hi - lo
    n1 = 0
    if out.shape[0] > 0:
        o = out[lo:hi]
        yes = 0
        yes1 = 0
        for i in range(m):
            gi = np.int64(g[i]) - grp_off
            oi = np.int64(o[i]) - out_off
            n1 += gi
            yes += oi
            yes1 += gi & oi
        cnt_out[c, 0] = m - n1 - (yes - yes1)
        cnt_out[c, 1] = yes - yes1
        cnt_out[c, 2] = n1 - yes1
        cnt_out[c, 3] = yes1
    else:
        for i in range(m):
            n1 += np.int64(g[i]) - grp_off
        cnt_out[c, 0] = m - n1
        cnt_out[c, 1] = n1
    n0 = m - n1
    n_out_arr[c, 0] = n0
    n_out_arr[c, 1] = n1
    # pass 1 sums each cell's deviations from one of its own values (its first in the chunk):
    # the mean then carries the rounding of sums of deviations, not of the values (a column
    # like 1e9 + noise keeps its digits; the general kernel's correction term does this there)
    ks = np.zeros(2)
    found = 0
    for i in range(m):
        cell = np.intp(g[i]) - grp_off
        if found & (1 << cell) == 0:
            ks[cell] = v[i]
            found |= 1 << cell
            if found == 3:
                break
    m4 = m & ~3
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    b3 = 0.0
    for i in range(0, m4, 4):
        t0 = np.float64(np.int64(g[i]) - grp_off)
        t1 = np.float64(np.int64(g[i + 1]) - grp_off)
        t2 = np.float64(np.int64(g[i + 2]) - grp_off)
        t3 = np.float64(np.int64(g[i + 3]) - grp_off)
        x0 = v[i] - ks[np.intp(g[i]) - grp_off]
        x1 = v[i + 1] - ks[np.intp(g[i + 1]) - grp_off]
        x2 = v[i + 2] - ks[np.intp(g[i + 2]) - grp_off]
        x3 = v[i + 3] - ks[np.intp(g[i + 3]) - grp_off]
        y0 = x0 * t0
        y1 = x1 * t1
        y2 = x2 * t2
        y3 = x3 * t3
        a0 += x0 - y0
        a1 += x1 - y1
        a2 += x2 - y2
        a3 += x3 - y3
        b0 += y0
        b1 += y1
        b2 += y2
        b3 += y3
    for i in range(m4, m):
        cell = np.intp(g[i]) - grp_off
        if cell == 1:
            b0 += v[i] - ks[1]
        else:
            a0 += v[i] - ks[0]
    mus = np.zeros(2)
    if n0 > 0:
        mus[0] = ks[0] + ((a0 + a1) + (a2 + a3)) / n0
    if n1 > 0:
        mus[1] = ks[1] + ((b0 + b1) + (b2 + b3)) / n1
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    b3 = 0.0
    for i in range(0, m4, 4):
        t0 = np.float64(np.int64(g[i]) - grp_off)
        t1 = np.float64(np.int64(g[i + 1]) - grp_off)
        t2 = np.float64(np.int64(g[i + 2]) - grp_off)
        t3 = np.float64(np.int64(g[i + 3]) - grp_off)
        e0 = v[i] - mus[np.intp(g[i]) - grp_off]
        e1 = v[i + 1] - mus[np.intp(g[i + 1]) - grp_off]
        e2 = v[i + 2] - mus[np.intp(g[i + 2]) - grp_off]
        e3 = v[i + 3] - mus[np.intp(g[i + 3]) - grp_off]
        h0 = e0 * e0
        h1 = e1 * e1
        h2 = e2 * e2
        h3 = e3 * e3
        k0 = h0 * t0
        k1 = h1 * t1
        k2 = h2 * t2
        k3 = h3 * t3
        a0 += h0 - k0
        a1 += h1 - k1
        a2 += h2 - k2
        a3 += h3 - k3
        b0 += k0
        b1 += k1
        b2 += k2
        b3 += k3
    for i in range(m4, m):
        cell = np.intp(g[i]) - grp_off
        e = v[i] - mus[cell]
        if cell == 1:
            b0 += e * e
        else:
            a0 += e * e
    mean_out[c, 0] = mus[0]
    mean_out[c, 1] = mus[1]
    m2_out[c, 0] = (a0 + a1) + (a2 + a3)
    m2_out[c, 1] = (b0 + b1) + (b2 + b3)


@serial_kernel
def _fold_chunk(c, lo, hi, seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells, K,
                cnt_out, n_out_arr, mean_out, m2_out):
    has_out = out.shape[0] > 0
    has_val = val.shape[0] > 0
    if seg.shape[0] == 0 and n_cells == 2 and has_val and (not has_out or n_out == 2):
        _fold_chunk_split(c, lo, hi, grp, grp_off, out, out_off, val, cnt_out, n_out_arr, mean_out, m2_out)
        return
    width = n_out if has_out else 1
    cnt = np.zeros((LANES, n_cells * width), dtype=np.int64)
    # with segments, each row's cell code is computed first, in a loop that vectorizes; the
    # passes then index one array, as in the flat case (measured ~1.8x faster than
    # computing (segment, group) -> cell inside the accumulating loops)
    cb = np.empty(hi - lo if seg.shape[0] > 0 else 0, dtype=np.int32)
    if seg.shape[0] > 0:
        _cell_codes(lo, hi, seg, seg_off, grp, grp_off, n_grp, cb)
    s1 = np.zeros((LANES, n_cells), dtype=np.float64)
    s2 = np.zeros((LANES, n_cells), dtype=np.float64)
    if has_val:
        if has_out and cb.shape[0] > 0 and n_out == 2:
            _shifted_cells_binary(lo, hi, cb, out, out_off, val, K, cnt, s1, s2)
        elif has_out and cb.shape[0] > 0:
            _shifted_cells_out(lo, hi, cb, out, out_off, n_out, val, K, cnt, s1, s2)
        elif has_out:
            _shifted_groups_out(lo, hi, grp, grp_off, out, out_off, n_out, val, K, cnt, s1, s2)
        elif cb.shape[0] > 0:
            _shifted_cells(lo, hi, cb, val, K, cnt, s1, s2)
        else:
            _shifted_groups(lo, hi, grp, grp_off, val, K, cnt, s1, s2)
    else:
        _pass_counts(lo, hi, cb, grp, grp_off, out, out_off, n_out, cnt)
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
    if not has_val:
        return
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
                t1 += s1[u, k]
                t2 += s2[u, k]
            mean_out[c, k] = K[k] + t1 / nk
            m2 = t2 - t1 * t1 / nk
            m2_out[c, k] = m2
            if not (t2 <= REDO_RATIO * m2):
                redo = True
    if redo:
        dm2 = np.zeros((LANES, n_cells), dtype=np.float64)
        d1 = np.zeros((LANES, n_cells), dtype=np.float64)
        _pass_deviations(lo, hi, cb, grp, grp_off, val, mean_out[c], dm2, d1)
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
