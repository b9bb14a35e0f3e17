"""Kernels for calibration: fold (probability, outcome, weight) rows into
per-(segment, bin) moment tables, a fine histogram and a gather pass for exact
quantile edges, and Poisson-bootstrap replicate sums.

Binning contract (matches ``sklearn.calibration.calibration_curve``):
``bin = np.searchsorted(edges[1:-1], p, side="left")``, i.e. the number of
inner edges strictly below ``p``.  Row loops bin in one of two ways, both exact:

* uniform edges (``np.linspace``): ``t = p * n_bins``; the guess ``g = int(t)``
  (clamped to ``[0, n_bins - 1]``) is the bin when ``u = t - g - 0.5`` has
  ``|u| < 0.5 - 1e-9``, i.e. ``t`` is more than 1e-9 from an integer; otherwise
  (and for values outside [0, 1], NaN: their ``u`` is never that small) a
  binary search over the float edges settles it;
* any other edges: a lookup table over ``[0, 1]`` (:func:`bin_lookup`) gives
  the bin of every table cell that holds no edge; cells that do hold one
  (and values outside ``[0, 1]``, NaN) take the binary search.

Either way a value on an edge lands exactly where sklearn puts it, and the
values outside [0, 1] or NaN are counted (``bad_p``) only on the rare path, so
the common path has no validation branch of its own.

Outcome contract: with ``target < 0`` the label column must hold 0/1 (any
numeric dtype; other values are counted in ``bad_y``); with ``target >= 0`` the
outcome is ``y == target`` (one-vs-rest), and ``y`` must lie in
``[0, n_classes)``.

Per chunk of ``chunk`` rows (fixed size: the result does not depend on the
thread count) one pass accumulates, per (cell, 0/1 outcome) "sub-cell"
``k = 2 * cell + outcome``, an integer count and sums of values shifted by
their bin's centre (so no raw sums of squares: |p - shift| is at most a bin
width) in one small table per statistic (``acc[stat, k]``); each chunk's
centred moments are then merged serially in chunk order with Chan et al.'s
weighted formulas.  (One accumulator per sub-cell: four interleaved lanes were
measured to cost more instructions and no fewer cycles, as consecutive rows
rarely share a sub-cell.)  With uniform edges the shifted value is computed in
units of the bin width, ``u = p * n_bins - (bin + 0.5)`` (no table load), and
scaled back per chunk (``scale = 1 / n_bins``); otherwise ``u = p - shift[bin]``
and ``scale = 1``.

Top-label multiclass input is folded without materializing the confidences:
each chunk computes (max probability, argmax == label) for a small block of
rows into a buffer that stays in L1 and folds the block with the binary row
loops (:func:`fold_top_label_serial` / :func:`fold_top_label_parallel`).

Moment table columns (``N_STATS``), per cell = segment * n_bins + bin:
  0 weight W, 1 mean p, 2 mean y, 3 M2 of p, 4 co-moment of (p, y),
  5 sum of w^2, 6 sum of w (p - y)^2.  Counts are a separate int64 array.

Bootstrap weights are the bootstrap engine's (:mod:`fastevals._kernels.poisson`):
replicate ``b`` gives global row ``g`` the weight ``Poisson1(hash(seed, b, g))``.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel
from .poisson import hashed_weights_into, row_hashes_into, scheme_keys, weight_key

N_STATS = 7
W, MP, MY, M2P, CPY, SW2, SBR = range(N_STATS)

#: per-chunk accumulators (``acc[stat, sub_cell]``): plain rows keep (sum u, sum u^2),
#: weighted rows (sum w, sum w u, sum w u^2, sum w^2); counts are kept apart as integers
_PLAIN_ACC = 2
_WEIGHTED_ACC = 4

#: fine histogram cells for exact quantile edges (uniform grid on [0, 1]); 2**14 int64 counts
#: (128 kB) stay in a core's L2 cache
FINE_CELLS = 1 << 14

#: cells of the lookup table of :func:`bin_lookup` over [0, 1)
LUT_CELLS = 1 << 11
#: lookup-table entry of a cell that needs the exact search
_SEARCH = -1

#: rows of a top-label block: its confidences and outcomes stay in L1 between the max/argmax loop
#: and the binning loop
TOP_BLOCK = 256


def bin_lookup(inner: np.ndarray) -> np.ndarray:
    """Lookup table for the row loops (int32, ``LUT_CELLS + 2`` entries).

    Entry ``j < LUT_CELLS`` (values in ``[j / L, (j + 1) / L)``) is the bin of
    every value of the cell when no inner edge lies in the cell, else
    ``_SEARCH``; entry ``L`` is the bin of ``p == 1``; entry ``L + 1``
    (values outside [0, 1], NaN) is ``_SEARCH``.  ``x * L`` is exact (a power
    of two), so a value's cell is exact too.
    """
    inner = np.asarray(inner, dtype=np.float64)
    lows = np.arange(LUT_CELLS + 1, dtype=np.float64) / LUT_CELLS
    below = np.searchsorted(inner, lows, side="left")  # inner edges strictly below each cell start
    lut = np.where(below[1:] == below[:-1], below[:-1], _SEARCH)
    one = np.searchsorted(inner, 1.0, side="left")
    return np.concatenate([lut, [one, _SEARCH]]).astype(np.int32)


def uniform_shift(n_bins: int) -> np.ndarray:
    """Per-bin shifts of the uniform row loop: the bin centres ``(b + 0.5) / n_bins``."""
    return (np.arange(n_bins, dtype=np.float64) + 0.5) / n_bins


#: with uniform edges, a guess ``int(p * n_bins)`` whose fractional part lies this far from 0
#: and 1 is the exact bin (the edges and ``p * n_bins`` are within a few ulps of k / n_bins)
_UNIFORM_MARGIN = 1e-9
#: the same test on ``u = fractional part - 0.5``: ``|u| < _FAST_HALF``
_FAST_HALF = 0.5 - _UNIFORM_MARGIN


@serial_kernel
def _search(x, inner):
    """Number of inner edges strictly below x (binary search; x must not be NaN)."""
    lo = 0
    hi = inner.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if inner[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@serial_kernel
def _guess_uniform(t, top):
    """(guess, u) for ``t = x * n_bins`` and ``top = n_bins - 1``: ``guess = int(t)`` clamped to
    ``[0, top]`` (NaN -> 0: never convert NaN to an integer) and ``u = t - guess - 0.5``.

    ``|u| < _FAST_HALF`` proves the guess is the bin: ``t`` is then more than the margin from
    an integer and inside ``(0, n_bins)``.  Out of range or NaN, ``|u| >= 0.5`` or NaN."""
    tc = t if t > 0.0 else 0.0
    tc = tc if tc < top else top
    g = np.intp(tc)
    return g, t - g - 0.5


@serial_kernel
def _settle_uniform(x, t, inner):
    """(bin, u, bad) of a row whose uniform guess was not proved: a value near an edge, on one,
    or outside [0, 1] / NaN (``bad = 1``, bin 0)."""
    if not (x >= 0.0 and x <= 1.0):
        return 0, 0.0, 1
    b = _search(x, inner)
    return b, t - b - 0.5, 0


@serial_kernel
def _lut_entry(x, lut):
    """Entry of :func:`bin_lookup`'s table for x: its bin, or ``_SEARCH`` (< 0)."""
    n_lut = lut.shape[0] - 2
    t = x * n_lut
    j = np.intp(t) if (t >= 0.0) & (t <= n_lut) else n_lut + 1
    return np.intp(lut[j])


@serial_kernel
def _settle_lut(x, inner, shift):
    """(bin, u, bad) of a row whose table cell holds an edge, or outside [0, 1] / NaN (bad)."""
    if not (x >= 0.0 and x <= 1.0):
        return 0, 0.0, 1
    b = _search(x, inner)
    return b, x - shift[b], 0


@serial_kernel
def _bin_index(x, inner, lut, n_bins, uniform):
    """Bin of x (sklearn's searchsorted side='left'); values outside [0, 1] or NaN get bin 0.
    (Row loops inline the two cases: a branch on ``uniform`` inside a row loop costs.)"""
    if uniform:
        fn = np.float64(n_bins)
        g, u = _guess_uniform(x * fn, fn - 1.0)
        if abs(u) < _FAST_HALF:
            return g
    else:
        b = _lut_entry(x, lut)
        if b >= 0:
            return b
    if not (x >= 0.0 and x <= 1.0):
        return 0
    return _search(x, inner)


# Row loops, one per case (plain, segments, weights) and, inside each, one per kind of edges:
# every branch that does not depend on the row is outside the loop.  Row i goes to sub-cell
# ``k = 2 * cell + outcome`` of ``cnt_acc`` (int64) and ``acc[stat, k]``; indices are unsigned,
# so numba adds no negative-index wraparound.  The rare path (a row near an edge, or invalid)
# is the only one that touches ``bp``.


@serial_kernel
def _rows_plain(p, y, target, n_bins, inner, lut, uniform, shift, cnt_acc, acc):
    bp = 0
    by = 0
    fn = np.float64(n_bins)
    top = fn - 1.0
    if uniform:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            t = x * fn
            b, u = _guess_uniform(t, top)
            if not abs(u) < _FAST_HALF:
                b, u, bad = _settle_uniform(x, t, inner)
                bp += bad
            by += (v != 0) & (v != 1)
            k = np.uint64(2 * b) + np.uint64(v == target)
            cnt_acc[k] += 1
            acc[0, k] += u
            acc[1, k] += u * u
    else:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            b = _lut_entry(x, lut)
            if b < 0:
                b, u, bad = _settle_lut(x, inner, shift)
                bp += bad
            else:
                u = x - shift[b]
            by += (v != 0) & (v != 1)
            k = np.uint64(2 * b) + np.uint64(v == target)
            cnt_acc[k] += 1
            acc[0, k] += u
            acc[1, k] += u * u
    return bp, by


@serial_kernel
def _rows_seg(p, y, target, seg, n_bins, inner, lut, uniform, shift, cnt_acc, acc):
    bp = 0
    by = 0
    fn = np.float64(n_bins)
    top = fn - 1.0
    if uniform:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            t = x * fn
            b, u = _guess_uniform(t, top)
            if not abs(u) < _FAST_HALF:
                b, u, bad = _settle_uniform(x, t, inner)
                bp += bad
            by += (v != 0) & (v != 1)
            cell = np.uint64(b) + np.uint64(seg[i]) * np.uint64(n_bins)
            k = np.uint64(2) * cell + np.uint64(v == target)
            cnt_acc[k] += 1
            acc[0, k] += u
            acc[1, k] += u * u
    else:
        for i in range(p.shape[0]):
            x = np.float64(p[i])
            v = y[i]
            b = _lut_entry(x, lut)
            if b < 0:
                b, u, bad = _settle_lut(x, inner, shift)
                bp += bad
            else:
                u = x - shift[b]
            by += (v != 0) & (v != 1)
            cell = np.uint64(b) + np.uint64(seg[i]) * np.uint64(n_bins)
            k = np.uint64(2) * cell + np.uint64(v == target)
            cnt_acc[k] += 1
            acc[0, k] += u
            acc[1, k] += u * u
    return bp, by


@serial_kernel
def _rows_weighted(p, y, target, w, seg, n_bins, inner, lut, uniform, shift, cnt_acc, acc):
    # one loop for weights with or without segments (a zero-width segment array is not read)
    has_seg = seg.shape[0] > 0
    bp = 0
    by = 0
    fn = np.float64(n_bins)
    top = fn - 1.0
    for i in range(p.shape[0]):
        x = np.float64(p[i])
        v = y[i]
        if uniform:
            t = x * fn
            b, u = _guess_uniform(t, top)
            if not abs(u) < _FAST_HALF:
                b, u, bad = _settle_uniform(x, t, inner)
                bp += bad
        else:
            b = _lut_entry(x, lut)
            if b < 0:
                b, u, bad = _settle_lut(x, inner, shift)
                bp += bad
            else:
                u = x - shift[b]
        by += (v != 0) & (v != 1)
        cell = np.uint64(b) + np.uint64(seg[i]) * np.uint64(n_bins) if has_seg else np.uint64(b)
        k = np.uint64(2) * cell + np.uint64(v == target)
        wi = np.float64(w[i])
        cnt_acc[k] += 1
        acc[0, k] += wi
        acc[1, k] += wi * u
        acc[2, k] += wi * u * u
        acc[3, k] += wi * wi
    return bp, by


@serial_kernel
def _chunk_accumulators(n_cells, has_w):
    """Zeroed (cnt_acc, acc) of one chunk: see the row loops."""
    stride = 2 * n_cells
    return (np.zeros(stride, dtype=np.int64),
            np.zeros((_WEIGHTED_ACC if has_w else _PLAIN_ACC, stride), dtype=np.float64))


@serial_kernel
def _fold_rows(pc, yc, tgt, wc, sc, n_bins, inner, lut, uniform, shift, cnt_acc, acc):
    """Rows of one chunk (or block) into the chunk's accumulators, by case; returns (bad_p, bad_y)."""
    if wc.shape[0] > 0:
        return _rows_weighted(pc, yc, tgt, wc, sc, n_bins, inner, lut, uniform, shift, cnt_acc, acc)
    if sc.shape[0] > 0:
        return _rows_seg(pc, yc, tgt, sc, n_bins, inner, lut, uniform, shift, cnt_acc, acc)
    return _rows_plain(pc, yc, tgt, n_bins, inner, lut, uniform, shift, cnt_acc, acc)


@serial_kernel
def _chunk_moments(cnt_acc, acc, has_w, n_bins, uniform, shift, n_cells, out_c, st):
    """Fold a chunk's sub-cell sums into its slot of the moment table: counts into ``out_c``,
    centred moments into ``st`` (see the module docstring).  Splitting by the 0/1 outcome turns
    the sums of y, d*y and (p - y)^2 into sums already kept, so a row costs three accumulations;
    shifting by the bin centre bounds |d| by the bin width, so the centred moments derived from
    these sums lose no more than a digit or so."""
    scale = 1.0 / n_bins if uniform else 1.0
    # plain rows: acc = (sum u, sum u^2) and the weight is the count; weighted rows:
    # acc = (sum w, sum w u, sum w u^2, sum w^2)
    j = 1 if has_w else 0
    for cell in range(n_cells):
        k0 = 2 * cell
        k1 = k0 + 1
        n = cnt_acc[k0] + cnt_acc[k1]
        out_c[cell] = n
        if n == 0:
            continue
        if has_w:
            w0 = acc[0, k0]
            w1 = acc[0, k1]
            r = acc[3, k0] + acc[3, k1]
        else:
            w0 = np.float64(cnt_acc[k0])
            w1 = np.float64(cnt_acc[k1])
            r = w0 + w1
        s0 = acc[j, k0] * scale
        s1 = acc[j, k1] * scale
        q0 = acc[j + 1, k0] * (scale * scale)
        q1 = acc[j + 1, k1] * (scale * scale)
        q = q0 + q1
        wt = w0 + w1
        sh = shift[cell % n_bins]
        st[cell, W] = wt
        st[cell, SW2] = r
        # sum of w (p - y)^2 with p = sh + d: outcome 0 rows give (sh + d)^2, outcome 1 rows (sh - 1 + d)^2
        st[cell, SBR] = (w0 * sh * sh + 2.0 * sh * s0 + q0
                         + w1 * (sh - 1.0) * (sh - 1.0) + 2.0 * (sh - 1.0) * s1 + q1)
        if wt > 0.0:
            md = (s0 + s1) / wt
            my = w1 / wt
            st[cell, MP] = sh + md
            st[cell, MY] = my
            m2 = q - (s0 + s1) * md
            st[cell, M2P] = m2 if m2 > 0.0 else 0.0
            st[cell, CPY] = s1 - (s0 + s1) * my


@serial_kernel
def _fold_chunk(c, lo, hi, p, y, target, w, seg, n_bins, inner, lut, uniform, shift, n_cells,
                cnt_out, st_out, bad_p, bad_y):
    """One pass over rows lo..hi into sub-cells (cell, outcome): count and the
    sums of u = (p - shift[bin]) / scale and u^2 (with weights: the weight,
    w*u, w*u^2 and w^2), then into the chunk's slot of the moment table.

    The row loops are written out per case (plain, segments, weights): a
    loop-invariant branch inside the row loop was measured to cost ~3x.
    ``target < 0`` means binary labels (outcome ``y == 1``, anything but 0/1
    counted in ``bad_y``); otherwise the outcome is ``y == target``."""
    has_w = w.shape[0] > 0
    has_seg = seg.shape[0] > 0
    cnt_acc, acc = _chunk_accumulators(n_cells, has_w)
    tgt = 1 if target < 0 else target
    bp, by = _fold_rows(p[lo:hi], y[lo:hi], tgt, w[lo:hi] if has_w else w, seg[lo:hi] if has_seg else seg,
                        n_bins, inner, lut, uniform, shift, cnt_acc, acc)
    if target >= 0:
        by = 0  # class indices are checked by the multiclass kernel
    bad_p[c] = bp
    bad_y[c] = by
    _chunk_moments(cnt_acc, acc, has_w, n_bins, uniform, shift, n_cells, cnt_out[c], st_out[c])


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
def _fine_slot(x, n_fine):
    """Slot of x in a fine table of ``n_fine + 2`` slots: the grid cell of x in [0, 1), ``n_fine``
    for x == 1 and ``n_fine + 1`` for values outside [0, 1] or NaN (no branch on the row)."""
    t = x * n_fine
    return np.intp(t) if (t >= 0.0) & (t <= n_fine) else n_fine + 1


@serial_kernel
def _hist_part(lo, hi, p, n_fine, out):
    pc = p[lo:hi]
    for i in range(pc.shape[0]):
        out[np.uint64(_fine_slot(np.float64(pc[i]), n_fine))] += 1


@parallel_kernel
def fine_histogram(p, n_fine, n_parts):
    """Counts of p on a uniform grid of ``n_fine`` cells over [0, 1] (integer,
    so the partition into ``n_parts`` does not change the answer), and the
    number of values outside [0, 1] or NaN."""
    rows = p.shape[0]
    parts = np.zeros((n_parts, n_fine + 2), dtype=np.int64)
    step = (rows + n_parts - 1) // n_parts
    for j in prange(n_parts):
        lo = min(rows, j * step)
        hi = min(rows, lo + step)
        _hist_part(lo, hi, p, n_fine, parts[j])
    out = parts[0].copy()
    for j in range(1, n_parts):
        out += parts[j]
    hist = out[:n_fine].copy()
    hist[n_fine - 1] += out[n_fine]
    return hist, out[n_fine + 1]


@serial_kernel
def gather_cells(p, n_fine, slot_of_cell, pos, end, out):
    """Append the values of p in the marked fine cells to ``out`` at ``pos[slot]`` (up to
    ``end[slot]``); returns the number of values that did not fit (the input changed).
    ``slot_of_cell`` has ``n_fine + 2`` int32 entries (see :func:`_fine_slot`), -1 where unmarked."""
    over = 0
    for i in range(p.shape[0]):
        x = np.float64(p[i])
        s = slot_of_cell[np.uint64(_fine_slot(x, n_fine))]
        if s >= 0:
            k = pos[s]
            if k < end[s]:
                out[k] = x
                pos[s] = k + 1
            else:
                over += 1
    return over


# ----------------------------------------------------------------------------------------------------
# multiclass: top-label confidence and correctness, row sums


@serial_kernel
def _top_label_rows(pm, ym, n_classes, tol, check_rows, conf, correct):
    """Confidence (max probability; the first max wins like np.argmax) and correctness
    (argmax == y) of the rows of pm into conf/correct.  Returns the rows with a probability
    outside [0, 1] or NaN, the labels outside 0..n_classes-1 and the rows whose sum is off by
    more than tol.

    The range check rides on the max: every value of a row is in [0, 1] and none is NaN
    exactly when the max is <= 1, the min is >= 0 and the sum is not NaN (a NaN is skipped by
    the max and the min but not by the sum).  One min per value is cheaper than a separate
    check pass (measured ~25% of this loop)."""
    n_bad_p = 0
    n_bad_y = 0
    n_bad_s = 0
    for i in range(pm.shape[0]):
        row = pm[i]
        best = np.float64(row[0])
        low = best
        arg = 0
        s = 0.0
        for k in range(n_classes):
            v = np.float64(row[k])
            s += v
            low = v if v < low else low
            if v > best:
                best = v
                arg = k
        n_bad_p += not ((best <= 1.0) & (low >= 0.0) & (s == s))
        if check_rows:
            n_bad_s += abs(s - 1.0) > tol
        yi = ym[i]
        n_bad_y += not ((yi >= 0) & (yi < n_classes))
        conf[i] = best
        correct[i] = arg == yi
    return n_bad_p, n_bad_y, n_bad_s


@serial_kernel
def _top_label_part(lo, hi, probs, y, n_classes, tol, check_rows, conf, correct, bad, c):
    """Rows lo..hi, block by block: confidence and correctness into conf/correct; bad[c] =
    (rows with a probability outside [0, 1] or NaN, labels outside 0..n_classes-1, rows whose
    sum is off by more than tol)."""
    n_p = 0
    n_y = 0
    n_s = 0
    for b0 in range(lo, hi, TOP_BLOCK):
        b1 = min(hi, b0 + TOP_BLOCK)
        dp, dy, ds = _top_label_rows(probs[b0:b1], y[b0:b1], n_classes, tol, check_rows, conf[b0:b1],
                                     correct[b0:b1])
        n_p += dp
        n_y += dy
        n_s += ds
    bad[c, 0] = n_p
    bad[c, 1] = n_y
    bad[c, 2] = n_s


@serial_kernel
def top_label_serial(probs, y, n_classes, tol, check_rows, chunk):
    """Max probability, correctness (argmax == y, first max wins like np.argmax), and
    counts of rows with probabilities outside [0, 1], bad labels, and sums off by more than tol.
    ``probs`` must be C-contiguous."""
    n = probs.shape[0]
    conf = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=np.uint8)
    bad = np.zeros((1, 3), dtype=np.int64)
    _top_label_part(0, n, probs, y, n_classes, tol, check_rows, conf, correct, bad, 0)
    return conf, correct, bad[0]


@parallel_kernel
def top_label_parallel(probs, y, n_classes, tol, check_rows, chunk):
    """Parallel twin of :func:`top_label_serial` (fixed chunks, counts summed)."""
    n = probs.shape[0]
    conf = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=np.uint8)
    n_chunks = max(1, (n + chunk - 1) // chunk)
    bad = np.zeros((n_chunks, 3), dtype=np.int64)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(n, lo + chunk)
        _top_label_part(lo, hi, probs, y, n_classes, tol, check_rows, conf, correct, bad, c)
    return conf, correct, bad.sum(axis=0)


@serial_kernel
def _fold_top_label_chunk(c, lo, hi, probs, y, n_classes, tol, check_rows, w, seg, n_bins, inner, lut,
                          uniform, shift, n_cells, cnt_out, st_out, bad):
    """Top-label rows lo..hi straight into the chunk's slot of the moment table: per block of
    ``TOP_BLOCK`` rows, confidence and correctness into a buffer that stays in L1, then the
    binary row loop over the buffer (outcome = correct).  The blocks of a chunk accumulate in
    row order, so the sums are those of :func:`fold_bins_serial` over the materialized
    confidences."""
    has_w = w.shape[0] > 0
    has_seg = seg.shape[0] > 0
    cnt_acc, acc = _chunk_accumulators(n_cells, has_w)
    conf = np.empty(TOP_BLOCK, dtype=np.float64)
    correct = np.empty(TOP_BLOCK, dtype=np.uint8)
    n_p = 0
    n_y = 0
    n_s = 0
    for b0 in range(lo, hi, TOP_BLOCK):
        b1 = min(hi, b0 + TOP_BLOCK)
        cb = conf[:b1 - b0]
        ob = correct[:b1 - b0]
        dp, dy, ds = _top_label_rows(probs[b0:b1], y[b0:b1], n_classes, tol, check_rows, cb, ob)
        n_p += dp
        n_y += dy
        n_s += ds
        # a confidence outside [0, 1] (or NaN) comes from a row already counted in n_p
        _fold_rows(cb, ob, 1, w[b0:b1] if has_w else w, seg[b0:b1] if has_seg else seg, n_bins, inner,
                   lut, uniform, shift, cnt_acc, acc)
    bad[c, 0] = n_p
    bad[c, 1] = n_y
    bad[c, 2] = n_s
    _chunk_moments(cnt_acc, acc, has_w, n_bins, uniform, shift, n_cells, cnt_out[c], st_out[c])


@serial_kernel
def fold_top_label_serial(probs, y, n_classes, tol, check_rows, w, seg, n_bins, inner, lut, uniform, shift,
                          n_cells, chunk):
    """:func:`fold_bins_serial` of the top-label curve (confidence, argmax == y) of a C-contiguous
    (rows, n_classes) matrix, without materializing the confidences.  Returns (counts, moment
    table, the three counts of :func:`top_label_serial`)."""
    rows = probs.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, n_cells), dtype=np.int64)
    st = np.zeros((n_chunks, n_cells, N_STATS), dtype=np.float64)
    bad = np.zeros((n_chunks, 3), dtype=np.int64)
    for c in range(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_top_label_chunk(c, lo, hi, probs, y, n_classes, tol, check_rows, w, seg, n_bins, inner, lut,
                              uniform, shift, n_cells, cnt, st, bad)
    _merge_chunks(cnt, st)
    return cnt[0], st[0], bad.sum(axis=0)


@parallel_kernel
def fold_top_label_parallel(probs, y, n_classes, tol, check_rows, w, seg, n_bins, inner, lut, uniform, shift,
                            n_cells, chunk):
    """Parallel twin of :func:`fold_top_label_serial` (fixed chunks, merged in chunk order)."""
    rows = probs.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, n_cells), dtype=np.int64)
    st = np.zeros((n_chunks, n_cells, N_STATS), dtype=np.float64)
    bad = np.zeros((n_chunks, 3), dtype=np.int64)
    for c in prange(n_chunks):
        lo = c * chunk
        hi = min(rows, lo + chunk)
        _fold_top_label_chunk(c, lo, hi, probs, y, n_classes, tol, check_rows, w, seg, n_bins, inner, lut,
                              uniform, shift, n_cells, cnt, st, bad)
    _merge_chunks(cnt, st)
    return cnt[0], st[0], bad.sum(axis=0)


# ----------------------------------------------------------------------------------------------------
# Poisson bootstrap: the bootstrap engine's counter-based weights


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


#: rows whose weights one replicate draws at a time
BOOT_ROWS = 4096
#: replicates that share one computation of the rows' hashes
BOOT_REPS = 8


@serial_kernel
def _boot_block(p, cells, obs, w, row0, seed, b_lo, b_hi, out, wbuf, hbuf):
    has_w = w.shape[0] > 0
    rows = p.shape[0]
    rk, qk = scheme_keys(seed)
    for lo in range(0, rows, BOOT_ROWS):
        m = min(BOOT_ROWS, rows - lo)
        h = hbuf[:m]
        row_hashes_into(rk, row0 + lo, m, h)
        pc = p[lo:lo + m]
        cc = cells[lo:lo + m]
        oc = obs[lo:lo + m]
        for b in range(b_lo, b_hi):
            hashed_weights_into(weight_key(qk, b), h, wbuf)
            acc = out[b]
            # every row, weight 0 included: a branch on it mispredicts (37% of weights are 0),
            # and adding 0.0 to these sums of non-negative terms leaves them bit for bit
            for i in range(m):
                wt = np.float64(wbuf[i])
                if has_w:
                    wt *= np.float64(w[lo + i])
                c = np.uint64(cc[i])
                acc[c, 0] += wt
                acc[c, 1] += wt * np.float64(pc[i])
                acc[c, 2] += wt * oc[i]


@parallel_kernel
def bootstrap_sums(p, cells, obs, w, row0, seed, n_rep, out):
    """Add replicate sums into out[b, cell, 0:3] = (sum wt, sum wt p, sum wt y), where
    wt = w_i * Poisson1(hash(seed, b, row0 + i)): the weights of the bootstrap engine
    (:mod:`fastevals._kernels.poisson`), keyed by the global row index.
    Each replicate owns its slot and walks rows in order, so the answer does not depend on
    the thread count, the batch size or the partitioning."""
    n_blk = (n_rep + BOOT_REPS - 1) // BOOT_REPS
    for blk in prange(n_blk):
        wbuf = np.empty(BOOT_ROWS, dtype=np.int32)
        hbuf = np.empty(BOOT_ROWS, dtype=np.uint32)
        b_lo = blk * BOOT_REPS
        _boot_block(p, cells, obs, w, row0, seed, b_lo, min(n_rep, b_lo + BOOT_REPS), out, wbuf, hbuf)
