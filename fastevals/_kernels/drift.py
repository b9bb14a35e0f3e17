"""Kernels for distribution shift: fold one numeric column into per-(segment, bin) counts and
per-segment moments, and the exact two-sample KS / Wasserstein-1 merge walk.

Binning contract (``edges`` sorted, strictly increasing, ``K = len(edges) - 1`` >= 1):
``K + 2`` bins per segment: bin ``0`` holds ``v < edges[0]``, bin ``j`` (``1 <= j <= K``)
holds ``edges[j - 1] <= v < edges[j]`` except that the last inner bin ``K`` also holds
``v == edges[K]``, and bin ``K + 1`` holds ``v > edges[K]``. A value's bin is found by a
binary search (``np.searchsorted(edges, v, side="right")`` clamped as above).

One pass counts rows per (segment, bin) and accumulates per segment the count, the sums of
``v - shift`` and ``(v - shift) ** 2`` and the min and max. ``shift`` is a fixed value per
column (the middle edge: about the reference's median), so the sums are not raw sums of squares
(``M2 = S2 - S1 ** 2 / n`` loses nothing while the mean stays within a few spreads of the
shift), and merging two states is an addition: exact whenever the sums are (the protocol's
``merge == concatenation`` holds bit for bit on exactly representable data). The parallel kernel
folds chunks of ``CHUNK_ROWS`` rows (a fixed size: the result does not depend on the thread
count) into private slots merged serially in chunk order.

Moment columns (``N_MOMENTS``) per segment: 0 count, 1 sum of (v - shift), 2 sum of
(v - shift) ** 2, 3 min, 4 max.
"""

import numpy as np
from numba import prange

from .._config import CHUNK_ROWS, parallel_kernel, serial_kernel

N_MOMENTS = 5


@serial_kernel
def _bin_of(v, edges, lut, scale):
    """Bin of one value (see the module docstring); ``lut[m]`` = number of edges <= the lower end
    of grid cell ``m`` of a uniform grid over [edges[0], edges[K]]."""
    k = edges.shape[0] - 1
    if v < edges[0]:
        return 0
    if v > edges[k]:
        return k + 1
    cells = lut.shape[0] - 1
    m = int((v - edges[0]) * scale)
    if m >= cells:
        m = cells - 1
    # number of edges <= v: a binary search inside the cell's range, then exact fix-ups
    # (the float cell index may be one off right at a cell's boundary)
    a = lut[m]
    c = lut[m + 1]
    while a < c:
        mid = (a + c) >> 1
        if edges[mid] <= v:
            a = mid + 1
        else:
            c = mid
    while a > 0 and edges[a - 1] > v:
        a -= 1
    while a <= k and edges[a] <= v:
        a += 1
    return a if a <= k else k


@serial_kernel
def _bin_chunk(values, seg, has_seg, edges, lut, scale, shift, lo, hi, counts, mom):
    if not has_seg:
        s1 = 0.0
        s2 = 0.0
        vmin = mom[0, 3]
        vmax = mom[0, 4]
        for i in range(lo, hi):
            v = values[i]
            counts[0, _bin_of(v, edges, lut, scale)] += 1
            d = v - shift
            s1 += d
            s2 += d * d
            vmin = min(vmin, v)
            vmax = max(vmax, v)
        mom[0, 0] += hi - lo
        mom[0, 1] += s1
        mom[0, 2] += s2
        mom[0, 3] = vmin
        mom[0, 4] = vmax
        return
    for i in range(lo, hi):
        v = values[i]
        s = seg[i]
        counts[s, _bin_of(v, edges, lut, scale)] += 1
        d = v - shift
        mom[s, 0] += 1.0
        mom[s, 1] += d
        mom[s, 2] += d * d
        if v < mom[s, 3]:
            mom[s, 3] = v
        if v > mom[s, 4]:
            mom[s, 4] = v


@serial_kernel
def _merge_moments(acc, part):
    """Add the moments ``part`` (segments x N_MOMENTS) into ``acc``."""
    for s in range(acc.shape[0]):
        acc[s, 0] += part[s, 0]
        acc[s, 1] += part[s, 1]
        acc[s, 2] += part[s, 2]
        acc[s, 3] = min(acc[s, 3], part[s, 3])
        acc[s, 4] = max(acc[s, 4], part[s, 4])


def _empty_moments(n_seg):
    mom = np.zeros((n_seg, N_MOMENTS))
    mom[:, 3] = np.inf
    mom[:, 4] = -np.inf
    return mom


@serial_kernel
def bin_values_serial(values, seg, has_seg, edges, lut, scale, shift, counts, mom):
    """Add the rows of ``values`` (float64) into ``counts`` (segments x (K + 2), int64) and the
    moments ``mom`` (segments x N_MOMENTS)."""
    _bin_chunk(values, seg, has_seg, edges, lut, scale, shift, 0, values.shape[0], counts, mom)


@parallel_kernel
def bin_values_parallel(values, seg, has_seg, edges, lut, scale, shift, counts, mom):
    """:func:`bin_values_serial` with one private (counts, moments) slot per chunk of ``CHUNK_ROWS``
    rows, merged serially in chunk order (the same result on any thread count)."""
    n = values.shape[0]
    n_seg = counts.shape[0]
    n_bins = counts.shape[1]
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    part_counts = np.zeros((n_chunks, n_seg, n_bins), dtype=np.int64)
    part_mom = np.zeros((n_chunks, n_seg, 5))
    for c in prange(n_chunks):
        for s in range(n_seg):
            part_mom[c, s, 3] = np.inf
            part_mom[c, s, 4] = -np.inf
        _bin_chunk(values, seg, has_seg, edges, lut, scale, shift, c * CHUNK_ROWS, min(n, (c + 1) * CHUNK_ROWS),
                   part_counts[c], part_mom[c])
    for c in range(n_chunks):
        counts += part_counts[c]
        _merge_moments(mom, part_mom[c])


@serial_kernel
def ks_wasserstein_sorted(a, b):
    """Exact two-sample KS statistic and Wasserstein-1 distance of two sorted float64 samples.

    One merge walk over the distinct values of both samples: after each distinct value ``x``
    the empirical CDFs are ``F_a(x) = i / n_a`` and ``F_b(x) = j / n_b`` (right-continuous, as
    ``np.searchsorted(..., side="right")`` in ``scipy.stats.ks_2samp``); the KS statistic is the
    largest ``|F_a - F_b|`` and W1 integrates ``|F_a - F_b|`` between consecutive distinct
    values (as ``scipy.stats.wasserstein_distance``). Returns (D, D+ = max(F_a - F_b), W1).
    """
    na = a.shape[0]
    nb = b.shape[0]
    i = 0
    j = 0
    dmax = 0.0
    dmin = 0.0
    w = 0.0
    prev = 0.0
    started = False
    while i < na or j < nb:
        if j >= nb or (i < na and a[i] <= b[j]):
            x = a[i]
        else:
            x = b[j]
        if started:
            w += abs(i / na - j / nb) * (x - prev)
        while i < na and a[i] == x:
            i += 1
        while j < nb and b[j] == x:
            j += 1
        d = i / na - j / nb
        if d > dmax:
            dmax = d
        if d < dmin:
            dmin = d
        prev = x
        started = True
    return max(dmax, -dmin), dmax, w


def bin_lookup(edges: np.ndarray) -> tuple[np.ndarray, float]:
    """The grid lookup of :func:`_bin_of`: 4 cells per bin over [edges[0], edges[-1]]."""
    cells = 4 * (edges.size - 1)
    span = float(edges[-1] - edges[0])
    scale = cells / span if span > 0 and np.isfinite(cells / span) else 0.0
    bounds = edges[0] + np.arange(cells + 1) / scale if scale > 0 else np.full(cells + 1, edges[0])
    return np.searchsorted(edges, bounds, side="right").astype(np.int64), scale


def bin_values(values, seg, has_seg, edges, lut, scale, shift, counts, mom, parallel_min_rows):
    """Dispatch to the serial kernel below ``parallel_min_rows`` rows, else the parallel one."""
    if values.shape[0] < parallel_min_rows:
        bin_values_serial(values, seg, has_seg, edges, lut, scale, shift, counts, mom)
    else:
        bin_values_parallel(values, seg, has_seg, edges, lut, scale, shift, counts, mom)


def empty_moments(n_seg: int) -> np.ndarray:
    """Moments of ``n_seg`` empty segments (count 0, min +inf, max -inf)."""
    return _empty_moments(n_seg)


def merge_moments(acc: np.ndarray, part: np.ndarray) -> None:
    """Add ``part`` into ``acc`` in place (for the states' merge)."""
    _merge_moments(acc, part)


def warmup(parallel: bool = True) -> None:
    """Compile (or load from numba's cache) the drift kernels on tiny inputs."""
    edges = np.array([0.0, 1.0, 2.0])
    lut, scale = bin_lookup(edges)
    values = np.array([-1.0, 0.5, 1.5, 3.0])
    seg = np.zeros(4, dtype=np.int64)
    for has_seg in (False, True):
        counts, mom = np.zeros((1, 4), dtype=np.int64), empty_moments(1)
        bin_values_serial(values, seg, has_seg, edges, lut, scale, 1.0, counts, mom)
        if parallel:
            bin_values_parallel(values, seg, has_seg, edges, lut, scale, 1.0, counts, mom)
    merge_moments(mom, empty_moments(1))
    ks_wasserstein_sorted(values, values)
