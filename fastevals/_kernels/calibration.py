"""Kernels for calibration: fold (probability, outcome, weight) rows into
per-(segment, bin) moment tables, a fine histogram and a gather pass for exact
quantile edges, and Poisson-bootstrap replicate sums.

Binning contract (matches ``sklearn.calibration.calibration_curve``):
``bin = np.searchsorted(edges[1:-1], p, side="left")``, i.e. the number of
inner edges strictly below ``p``. With ``np.linspace`` edges the guess
``int(p * n_bins)`` is exact unless ``p * n_bins`` lies within 1e-9 of an
integer, where a walk over the float edges settles it; for other edges a
lookup table over [0, 1] gives a lower bound of the bin and the same walk
finishes it. Either way values on an edge land exactly where sklearn puts them.

Outcome contract: with ``target < 0`` the label column must hold 0/1 (any
numeric dtype; other values are counted in ``bad_y``); with ``target >= 0`` the
outcome is ``y == target`` (one-vs-rest), and ``y`` must lie in
``[0, n_classes)``.

Per chunk of ``chunk`` rows (fixed size: the result does not depend on the
thread count) one pass accumulates, per (cell, 0/1 outcome), counts and sums
of values shifted by their bin's midpoint (so no raw sums of squares:
|p - shift| is at most a bin width), spread over four lanes so that
consecutive rows of one bin do not wait on each other's store; each chunk's
centred moments are then merged serially in chunk order with Chan et al.'s
weighted formulas.

Moment table columns (``N_STATS``), per cell = segment * n_bins + bin:
  0 weight W, 1 mean p, 2 mean y, 3 M2 of p, 4 co-moment of (p, y),
  5 sum of w^2, 6 sum of w (p - y)^2.  Counts are a separate int64 array.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel

N_STATS = 7
LANES = 4
W, MP, MY, M2P, CPY, SW2, SBR = range(N_STATS)

#: fine histogram cells for exact quantile edges (uniform grid on [0, 1])
FINE_CELLS = 1 << 16

# Poisson(1) inverse CDF thresholds: P(X <= k) for k = 0..19
_POISSON1_CDF = np.cumsum(np.exp(-1.0) / np.cumprod(np.concatenate(([1.0], np.arange(1.0, 20.0)))))
_POISSON1_CDF[-1] = 1.0


#: cells of the lookup table that gives each value its first candidate bin
LUT_CELLS = 1 << 12


def bin_lookup(inner: np.ndarray) -> np.ndarray:
    """Lookup table for :func:`_bin_index`: for lookup cell ``j`` (values in
    ``[j / LUT_CELLS, (j + 1) / LUT_CELLS)``), the number of inner edges
    strictly below ``j / LUT_CELLS``: a lower bound of the bin of any value in
    the cell (``x * LUT_CELLS`` is exact, so ``x >= j / LUT_CELLS``)."""
    lows = np.arange(LUT_CELLS, dtype=np.float64) / LUT_CELLS
    return np.searchsorted(inner, lows, side="left").astype(np.int32)


#: with uniform edges, a guess ``int(p * n_bins)`` whose fractional part lies this far from 0
#: and 1 is the exact bin (the edges and ``p * n_bins`` are within a few ulps of k / n_bins)
_UNIFORM_MARGIN = 1e-9


@serial_kernel
def _bin_uniform(x, inner, n_bins):
    """Bin of x for ``np.linspace(0, 1, n_bins + 1)`` edges."""
    t = x * n_bins
    b = np.intp(t) if t > 0.0 else 0
    if b > n_bins - 1:
        b = n_bins - 1
    f = t - b
    if f > _UNIFORM_MARGIN and f < 1.0 - _UNIFORM_MARGIN:
        return b  # no edge look-up for all but a sliver of values
    while b > 0 and x <= inner[b - 1]:
        b -= 1
    while b < n_bins - 1 and x > inner[b]:
        b += 1
    return b


@serial_kernel
def _bin_lut(x, inner, lut, n_bins):
    """Bin of x for any increasing edges, from the lookup table of :func:`bin_lookup`."""
    j = np.intp(x * LUT_CELLS) if x > 0.0 else 0
    if j > LUT_CELLS - 1:
        j = LUT_CELLS - 1
    b = np.intp(lut[j])
    while b < n_bins - 1 and x > inner[b]:
        b += 1
    return b


@serial_kernel
def _bin_index(x, inner, lut, n_bins, uniform):
    """Number of inner edges strictly below x (sklearn's searchsorted side='left').
    NaN and values outside [0, 1] get some valid bin; callers count them as bad.
    (Row loops call the two cases directly: a branch on ``uniform`` inside a row
    loop was measured to cost 3x.)"""
    if uniform:
        return _bin_uniform(x, inner, n_bins)
    return _bin_lut(x, inner, lut, n_bins)


@serial_kernel
def _add(cnt, acc, u, k, d):
    cnt[u, k] += 1
    acc[u, k, 1] += d
    acc[u, k, 2] += d * d


@serial_kernel
def _add_weighted(cnt, acc, u, k, d, wi):
    cnt[u, k] += 1
    acc[u, k, 0] += wi
    acc[u, k, 1] += wi * d
    acc[u, k, 2] += wi * d * d
    acc[u, k, 3] += wi * wi


# Row loops, one per case (plain, segments, weights) and, inside each, one per kind of edges:
# every branch that does not depend on the row is outside the loop.


@serial_kernel
def _rows_plain(p, y, target, n_bins, inner, lut, uniform, shift, cnt, acc):
    bp = 0
    by = 0
    if uniform:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            bp += not (x >= 0.0 and x <= 1.0)
            by += (v != 0) & (v != 1)
            b = _bin_uniform(x, inner, n_bins)
            _add(cnt, acc, i & 3, 2 * b + np.intp(v == target), x - shift[b])
    else:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            bp += not (x >= 0.0 and x <= 1.0)
            by += (v != 0) & (v != 1)
            b = _bin_lut(x, inner, lut, n_bins)
            _add(cnt, acc, i & 3, 2 * b + np.intp(v == target), x - shift[b])
    return bp, by


@serial_kernel
def _rows_seg(p, y, target, seg, n_bins, inner, lut, uniform, shift, cnt, acc):
    bp = 0
    by = 0
    if uniform:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            bp += not (x >= 0.0 and x <= 1.0)
            by += (v != 0) & (v != 1)
            b = _bin_uniform(x, inner, n_bins)
            k = 2 * (b + np.intp(seg[i]) * n_bins) + np.intp(v == target)
            _add(cnt, acc, i & 3, k, x - shift[b])
    else:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            bp += not (x >= 0.0 and x <= 1.0)
            by += (v != 0) & (v != 1)
            b = _bin_lut(x, inner, lut, n_bins)
            k = 2 * (b + np.intp(seg[i]) * n_bins) + np.intp(v == target)
            _add(cnt, acc, i & 3, k, x - shift[b])
    return bp, by


@serial_kernel
def _rows_weighted(p, y, target, w, seg, n_bins, inner, lut, uniform, shift, cnt, acc):
    # one loop for weights with or without segments (a zero-width segment array is not read)
    has_seg = seg.shape[0] > 0
    bp = 0
    by = 0
    for i in range(p.shape[0]):
        x = np.float64(p[i])
        v = y[i]
        bp += not (x >= 0.0 and x <= 1.0)
        by += (v != 0) & (v != 1)
        b = _bin_index(x, inner, lut, n_bins, uniform)
        cell = b + np.intp(seg[i]) * n_bins if has_seg else b
        _add_weighted(cnt, acc, i & 3, 2 * cell + np.intp(v == target), x - shift[b], np.float64(w[i]))
    return bp, by


@serial_kernel
def _fold_chunk(c, lo, hi, p, y, target, w, seg, n_bins, inner, lut, uniform, shift, n_cells,
                cnt_out, st_out, bad_p, bad_y):
    """One pass over rows lo..hi into sub-cells (cell, outcome): count and the
    sums of d = p - shift[bin] (the bin midpoint) and d^2 (with weights: the
    weight, w*d, w*d^2 and w^2).  Splitting by the 0/1 outcome turns the sums
    of y, d*y and (p - y)^2 into sums already kept, so a row costs three
    accumulations.  Shifting by the bin midpoint bounds |d| by the bin width,
    so the centred moments derived from these sums lose no more than a digit
    or so; they are then folded into the chunk's slot of the moment table.

    The row loops are written out per case (plain, segments, weights): a
    loop-invariant branch inside the row loop was measured to cost ~3x.
    ``target < 0`` means binary labels (outcome ``y == 1``, anything but 0/1
    counted in ``bad_y``); otherwise the outcome is ``y == target``."""
    has_w = w.shape[0] > 0
    has_seg = seg.shape[0] > 0
    cnt = np.zeros((LANES, 2 * n_cells), dtype=np.int64)
    acc = np.zeros((LANES, 2 * n_cells, 4), dtype=np.float64)
    tgt = 1 if target < 0 else target
    pc = p[lo:hi]
    yc = y[lo:hi]
    sc = seg[lo:hi] if has_seg else seg
    if has_w:
        bp, by = _rows_weighted(pc, yc, tgt, w[lo:hi], sc, n_bins, inner, lut, uniform, shift, cnt, acc)
    elif has_seg:
        bp, by = _rows_seg(pc, yc, tgt, sc, n_bins, inner, lut, uniform, shift, cnt, acc)
    else:
        bp, by = _rows_plain(pc, yc, tgt, n_bins, inner, lut, uniform, shift, cnt, acc)
    if target >= 0:
        by = 0  # class indices are checked by the multiclass kernel
    bad_p[c] = bp
    bad_y[c] = by
    out_c = cnt_out[c]
    st = st_out[c]
    for cell in range(n_cells):
        n0 = 0
        n1 = 0
        for u in range(LANES):
            n0 += cnt[u, 2 * cell]
            n1 += cnt[u, 2 * cell + 1]
        out_c[cell] = n0 + n1
        if n0 + n1 == 0:
            continue
        w0 = 0.0
        w1 = 0.0
        s0 = 0.0
        s1 = 0.0
        q = 0.0
        r = 0.0
        for u in range(LANES):
            w0 += acc[u, 2 * cell, 0]
            w1 += acc[u, 2 * cell + 1, 0]
            s0 += acc[u, 2 * cell, 1]
            s1 += acc[u, 2 * cell + 1, 1]
            q += acc[u, 2 * cell, 2] + acc[u, 2 * cell + 1, 2]
            r += acc[u, 2 * cell, 3] + acc[u, 2 * cell + 1, 3]
        if not has_w:
            w0 = np.float64(n0)
            w1 = np.float64(n1)
            r = w0 + w1
        wt = w0 + w1
        sh = shift[cell % n_bins]
        st[cell, W] = wt
        st[cell, SW2] = r
        # sum of w (p - y)^2 with p = sh + d: outcome 0 rows give (sh + d)^2, outcome 1 rows (sh - 1 + d)^2
        qs = 0.0
        for u in range(LANES):
            qs += acc[u, 2 * cell + 1, 2]
        q0 = q - qs
        st[cell, SBR] = (w0 * sh * sh + 2.0 * sh * s0 + q0
                         + w1 * (sh - 1.0) * (sh - 1.0) + 2.0 * (sh - 1.0) * s1 + qs)
        if wt > 0.0:
            md = (s0 + s1) / wt
            my = w1 / wt
            st[cell, MP] = sh + md
            st[cell, MY] = my
            m2 = q - (s0 + s1) * md
            st[cell, M2P] = m2 if m2 > 0.0 else 0.0
            st[cell, CPY] = s1 - (s0 + s1) * my


@serial_kernel
def merge_into(cnt_a, st_a, cnt_b, st_b):
    """Merge table b into table a, cell by cell (weighted Chan et al.)."""
    for k in range(cnt_a.shape[0]):
        wb = st_b[k, W]
        cnt_a[k] += cnt_b[k]
        if wb == 0.0:
            continue
        wa = st_a[k, W]
        if wa == 0.0:
            for j in range(N_STATS):
                st_a[k, j] = st_b[k, j]
            continue
        tot = wa + wb
        f = wb / tot
        dp = st_b[k, MP] - st_a[k, MP]
        dy = st_b[k, MY] - st_a[k, MY]
        st_a[k, MP] += dp * f
        st_a[k, MY] += dy * f
        st_a[k, M2P] += st_b[k, M2P] + dp * dp * wa * f
        st_a[k, CPY] += st_b[k, CPY] + dp * dy * wa * f
        st_a[k, W] = tot
        st_a[k, SW2] += st_b[k, SW2]
        st_a[k, SBR] += st_b[k, SBR]


@serial_kernel
def _merge_chunks(cnt, st):
    for c in range(1, cnt.shape[0]):
        merge_into(cnt[0], st[0], cnt[c], st[c])


@serial_kernel
def fold_bins_serial(p, y, target, w, seg, n_bins, inner, lut, uniform, shift, n_cells, chunk):
    rows = p.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, n_cells), dtype=np.int64)
    st = np.zeros((n_chunks, n_cells, N_STATS), dtype=np.float64)
    bad_p = np.zeros(n_chunks, dtype=np.int64)
    bad_y = np.zeros(n_chunks, dtype=np.int64)
    for c in range(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_chunk(c, lo, hi, p, y, target, w, seg, n_bins, inner, lut, uniform, shift, n_cells,
                    cnt, st, bad_p, bad_y)
    _merge_chunks(cnt, st)
    return cnt[0], st[0], bad_p.sum(), bad_y.sum()


@parallel_kernel
def fold_bins_parallel(p, y, target, w, seg, n_bins, inner, lut, uniform, shift, n_cells, chunk):
    rows = p.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, n_cells), dtype=np.int64)
    st = np.zeros((n_chunks, n_cells, N_STATS), dtype=np.float64)
    bad_p = np.zeros(n_chunks, dtype=np.int64)
    bad_y = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_chunk(c, lo, hi, p, y, target, w, seg, n_bins, inner, lut, uniform, shift, n_cells,
                    cnt, st, bad_p, bad_y)
    _merge_chunks(cnt, st)
    return cnt[0], st[0], bad_p.sum(), bad_y.sum()


# ----------------------------------------------------------------------------------------------------
# exact quantile edges: fine histogram, then gather the values of the cells that hold a needed rank


@serial_kernel
def _fine_cell(x, n_fine):
    k = np.intp(x * n_fine)
    if k > n_fine - 1:
        k = n_fine - 1
    return k


@serial_kernel
def _hist_part(lo, hi, p, n_fine, out):
    bad = 0
    for i in range(lo, hi):
        x = np.float64(p[i])
        if not (x >= 0.0 and x <= 1.0):
            bad += 1
            continue
        out[_fine_cell(x, n_fine)] += 1
    return bad


@parallel_kernel
def fine_histogram(p, n_fine, n_parts):
    """Counts of p on a uniform grid of ``n_fine`` cells over [0, 1] (integer,
    so the partition into ``n_parts`` does not change the answer)."""
    rows = p.shape[0]
    parts = np.zeros((n_parts, n_fine), dtype=np.int64)
    bad = np.zeros(n_parts, dtype=np.int64)
    step = (rows + n_parts - 1) // n_parts
    for j in prange(n_parts):
        lo = min(rows, j * step)
        hi = min(rows, lo + step)
        bad[j] = _hist_part(lo, hi, p, n_fine, parts[j])
    out = parts[0].copy()
    for j in range(1, n_parts):
        out += parts[j]
    return out, bad.sum()


@serial_kernel
def gather_cells(p, n_fine, slot_of_cell, pos, out):
    """Append the values of p in the marked fine cells to ``out`` at ``pos[slot]``."""
    for i in range(p.shape[0]):
        x = np.float64(p[i])
        if not (x >= 0.0 and x <= 1.0):
            continue
        s = slot_of_cell[_fine_cell(x, n_fine)]
        if s >= 0:
            out[pos[s]] = x
            pos[s] += 1


# ----------------------------------------------------------------------------------------------------
# multiclass: top-label confidence and correctness, row sums


@parallel_kernel
def top_label(probs, y, n_classes, tol, check_rows):
    """Max probability, correctness (argmax == y, first max wins like np.argmax),
    and counts of bad rows (sum off by more than tol), bad labels and probabilities
    outside [0, 1]."""
    n = probs.shape[0]
    conf = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=np.uint8)
    bad_row = np.zeros(n, dtype=np.uint8)
    for i in prange(n):
        best = np.float64(probs[i, 0])
        arg = 0
        s = 0.0
        flag = 0
        for k in range(n_classes):
            v = np.float64(probs[i, k])
            if not (v >= 0.0 and v <= 1.0):
                flag |= 1
            s += v
            if v > best:
                best = v
                arg = k
        if check_rows and abs(s - 1.0) > tol:
            flag |= 2
        yi = y[i]
        if not (yi >= 0 and yi < n_classes):
            flag |= 4
        bad_row[i] = flag
        conf[i] = best
        correct[i] = 1 if arg == yi else 0
    return conf, correct, bad_row


# ----------------------------------------------------------------------------------------------------
# Poisson bootstrap with counter-based weights


@serial_kernel
def _mix64(x):
    # splitmix64 finalizer
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@serial_kernel
def poisson1_weight(seed, replicate, row, cdf):
    """Poisson(1) draw from hash(seed, replicate, row) by inverse CDF."""
    h = _mix64(np.uint64(seed) ^ _mix64(np.uint64(replicate) * np.uint64(0x9E3779B97F4A7C15)
                                        + np.uint64(row)))
    u = np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    k = 0
    while k < cdf.shape[0] - 1 and u >= cdf[k]:
        k += 1
    return k


@serial_kernel
def poisson1_weights(seed, n_rep, row0, n_rows, cdf):
    """The weights themselves (for tests): out[b, i] for rows row0 .. row0 + n_rows - 1."""
    out = np.empty((n_rep, n_rows), dtype=np.int64)
    for b in range(n_rep):
        for i in range(n_rows):
            out[b, i] = poisson1_weight(seed, b, row0 + i, cdf)
    return out


@serial_kernel
def _assign_part(lo, hi, p, y, target, seg, n_bins, inner, lut, uniform, cells, obs):
    has_seg = seg.shape[0] > 0
    for i in range(lo, hi):
        x = np.float64(p[i])
        c = _bin_index(x, inner, lut, n_bins, uniform)
        if has_seg:
            c += np.intp(seg[i]) * n_bins
        cells[i] = c
        if target < 0:
            obs[i] = 1 if y[i] == 1 else 0
        else:
            obs[i] = 1 if y[i] == target else 0


@parallel_kernel
def assign_cells(p, y, target, seg, n_bins, inner, lut, uniform, chunk):
    """Cell index and 0/1 outcome per row (inputs already validated)."""
    rows = p.shape[0]
    cells = np.empty(rows, dtype=np.int32)
    obs = np.empty(rows, dtype=np.uint8)
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _assign_part(lo, hi, p, y, target, seg, n_bins, inner, lut, uniform, cells, obs)
    return cells, obs


@parallel_kernel
def bootstrap_sums(p, cells, obs, w, row0, seed, n_rep, n_cells, cdf, out):
    """Add replicate sums into out[b, cell, 0:3] = (sum wt, sum wt p, sum wt y), where
    wt = w_i * Poisson1(hash(seed, b, row0 + i)). Each replicate owns its slot and
    walks rows in order, so the answer does not depend on the thread count."""
    has_w = w.shape[0] > 0
    rows = p.shape[0]
    for b in prange(n_rep):
        acc = out[b]
        for i in range(rows):
            k = poisson1_weight(seed, b, row0 + i, cdf)
            if k == 0:
                continue
            wt = np.float64(k)
            if has_w:
                wt *= np.float64(w[i])
            c = cells[i]
            acc[c, 0] += wt
            acc[c, 1] += wt * np.float64(p[i])
            acc[c, 2] += wt * obs[i]
