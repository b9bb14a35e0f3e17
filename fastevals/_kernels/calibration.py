"""Kernels for calibration: fold (probability, outcome, weight) rows into
per-(segment, bin) moment tables, a fine histogram and a gather pass for exact
quantile edges, and Poisson-bootstrap replicate sums.

Binning contract (matches ``sklearn.calibration.calibration_curve``):
``bin = np.searchsorted(edges[1:-1], p, side="left")``, i.e. the number of
inner edges strictly below ``p``. With ``uniform`` the bin is first guessed as
``int(p * n_bins)`` and then moved to agree with that rule on the float edges,
so values on an edge land where sklearn puts them.

Outcome contract: with ``target < 0`` the label column must hold 0/1 (any
numeric dtype; other values are counted in ``bad_y``); with ``target >= 0`` the
outcome is ``y == target`` (one-vs-rest), and ``y`` must lie in
``[0, n_classes)``.

Per chunk of ``chunk`` rows (fixed size: the result does not depend on the
thread count) two passes run over rows that stay in cache: weighted sums, then
deviations from the chunk's bin means (no raw sums of squares); chunk slots are
merged serially in chunk order with Chan et al.'s weighted formulas.

Moment table columns (``N_STATS``), per cell = segment * n_bins + bin:
  0 weight W, 1 mean p, 2 mean y, 3 M2 of p, 4 co-moment of (p, y),
  5 sum of w^2, 6 sum of w (p - y)^2.  Counts are a separate int64 array.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel

N_STATS = 7
W, MP, MY, M2P, CPY, SW2, SBR = range(N_STATS)

#: fine histogram cells for exact quantile edges (uniform grid on [0, 1])
FINE_CELLS = 1 << 16

# Poisson(1) inverse CDF thresholds: P(X <= k) for k = 0..19
_POISSON1_CDF = np.cumsum(np.exp(-1.0) / np.cumprod(np.concatenate(([1.0], np.arange(1.0, 20.0)))))
_POISSON1_CDF[-1] = 1.0


@serial_kernel
def _bin_index(x, inner, n_bins, uniform):
    """Number of inner edges strictly below x (sklearn's searchsorted side='left')."""
    if uniform:
        b = np.intp(x * n_bins)
        if b < 0:
            b = 0
        elif b > n_bins - 1:
            b = n_bins - 1
        while b > 0 and x <= inner[b - 1]:
            b -= 1
        while b < n_bins - 1 and x > inner[b]:
            b += 1
        return b
    lo = 0
    hi = n_bins - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if inner[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@serial_kernel
def _fold_chunk(c, lo, hi, p, y, target, w, seg, n_bins, inner, uniform, n_cells,
                cnt_out, st_out, bad_p, bad_y, binbuf):
    has_w = w.shape[0] > 0
    has_seg = seg.shape[0] > 0
    cnt = cnt_out[c]
    st = st_out[c]
    p = p[lo:hi]
    y = y[lo:hi]
    if has_w:
        w = w[lo:hi]
    if has_seg:
        seg = seg[lo:hi]
    bp = 0
    by = 0
    m = hi - lo
    # pass 1: weighted sums
    for i in range(m):
        x = np.float64(p[i])
        if not (x >= 0.0 and x <= 1.0):
            bp += 1
            binbuf[i] = -1
            continue
        if target < 0:
            v = y[i]
            if v == 1:
                o = 1.0
            elif v == 0:
                o = 0.0
            else:
                by += 1
                binbuf[i] = -1
                continue
        else:
            o = 1.0 if y[i] == target else 0.0
        wi = np.float64(w[i]) if has_w else 1.0
        cell = _bin_index(x, inner, n_bins, uniform)
        if has_seg:
            cell += np.intp(seg[i]) * n_bins
        binbuf[i] = cell
        cnt[cell] += 1
        st[cell, W] += wi
        st[cell, MP] += wi * x
        st[cell, MY] += wi * o
        st[cell, SW2] += wi * wi
        d = x - o
        st[cell, SBR] += wi * d * d
    bad_p[c] = bp
    bad_y[c] = by
    for k in range(n_cells):
        if st[k, W] > 0.0:
            st[k, MP] /= st[k, W]
            st[k, MY] /= st[k, W]
    # pass 2: deviations from this chunk's bin means
    for i in range(m):
        cell = binbuf[i]
        if cell < 0:
            continue
        x = np.float64(p[i])
        if target < 0:
            o = 1.0 if y[i] == 1 else 0.0
        else:
            o = 1.0 if y[i] == target else 0.0
        wi = np.float64(w[i]) if has_w else 1.0
        dp = x - st[cell, MP]
        st[cell, M2P] += wi * dp * dp
        st[cell, CPY] += wi * dp * (o - st[cell, MY])


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
def fold_bins_serial(p, y, target, w, seg, n_bins, inner, uniform, n_cells, chunk):
    rows = p.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, n_cells), dtype=np.int64)
    st = np.zeros((n_chunks, n_cells, N_STATS), dtype=np.float64)
    bad_p = np.zeros(n_chunks, dtype=np.int64)
    bad_y = np.zeros(n_chunks, dtype=np.int64)
    binbuf = np.empty(min(rows, chunk), dtype=np.intp)
    for c in range(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_chunk(c, lo, hi, p, y, target, w, seg, n_bins, inner, uniform, n_cells,
                    cnt, st, bad_p, bad_y, binbuf)
    _merge_chunks(cnt, st)
    return cnt[0], st[0], bad_p.sum(), bad_y.sum()


@parallel_kernel
def fold_bins_parallel(p, y, target, w, seg, n_bins, inner, uniform, n_cells, chunk):
    rows = p.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, n_cells), dtype=np.int64)
    st = np.zeros((n_chunks, n_cells, N_STATS), dtype=np.float64)
    bad_p = np.zeros(n_chunks, dtype=np.int64)
    bad_y = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        binbuf = np.empty(hi - lo, dtype=np.intp)
        _fold_chunk(c, lo, hi, p, y, target, w, seg, n_bins, inner, uniform, n_cells,
                    cnt, st, bad_p, bad_y, binbuf)
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


@parallel_kernel
def check_multiclass(probs, y, n_classes, tol, check_rows):
    """Flags per row as in :func:`top_label` without the top-label outputs."""
    n = probs.shape[0]
    bad_row = np.zeros(n, dtype=np.uint8)
    for i in prange(n):
        s = 0.0
        flag = 0
        for k in range(n_classes):
            v = np.float64(probs[i, k])
            if not (v >= 0.0 and v <= 1.0):
                flag |= 1
            s += v
        if check_rows and abs(s - 1.0) > tol:
            flag |= 2
        yi = y[i]
        if not (yi >= 0 and yi < n_classes):
            flag |= 4
        bad_row[i] = flag
    return bad_row


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


@parallel_kernel
def poisson1_weights(seed, n_rep, row0, n_rows, cdf):
    """The weights themselves (for tests): out[b, i] for rows row0 .. row0 + n_rows - 1."""
    out = np.empty((n_rep, n_rows), dtype=np.int64)
    for b in prange(n_rep):
        for i in range(n_rows):
            out[b, i] = poisson1_weight(seed, b, row0 + i, cdf)
    return out


@serial_kernel
def _assign_part(lo, hi, p, y, target, seg, n_bins, inner, uniform, cells, obs):
    has_seg = seg.shape[0] > 0
    for i in range(lo, hi):
        x = np.float64(p[i])
        c = _bin_index(x, inner, n_bins, uniform)
        if has_seg:
            c += np.intp(seg[i]) * n_bins
        cells[i] = c
        if target < 0:
            obs[i] = 1 if y[i] == 1 else 0
        else:
            obs[i] = 1 if y[i] == target else 0


@parallel_kernel
def assign_cells(p, y, target, seg, n_bins, inner, uniform, chunk):
    """Cell index and 0/1 outcome per row (inputs already validated)."""
    rows = p.shape[0]
    cells = np.empty(rows, dtype=np.int32)
    obs = np.empty(rows, dtype=np.uint8)
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _assign_part(lo, hi, p, y, target, seg, n_bins, inner, uniform, cells, obs)
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
