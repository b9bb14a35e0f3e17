"""CUDA twin of :func:`fastevals._kernels.calibration.fold_bins_serial` (and ``_parallel``).

Per (segment, bin) cell and 0/1 outcome ("sub-cell"), the device sums the
count and, with ``d = p - shift[bin]`` (the value less its bin's midpoint, as
on the CPU), the sums of ``w``, ``w d``, ``w d^2`` and ``w^2``; the host then
turns them into the CPU kernel's moment table with the CPU's formulas (O(cells)).

Deterministic, without atomics: a block takes ``blockDim`` consecutive rows at
a time (grid-stride over such tiles); each thread bins its row and writes
(sub-cell, d, w) to shared memory; then thread ``t`` adds the tile's rows of
the sub-cells it owns (``sub-cell % blockDim == t``) in row order into
accumulators in shared memory that only it writes.  Blocks' accumulators are
summed over blocks in block order on the device.  Sub-cells beyond
:data:`SUB_TILE` are done in further passes over the rows (data stays on the
device).

Bins are sklearn's (``searchsorted(edges[1:-1], p, side="left")``) exactly,
as on the CPU: with uniform edges the guess ``int(p * n_bins)`` away from an
edge, else a binary search over the float edges (the CPU's lookup table is not
needed on the device).  Values outside [0, 1] or NaN are counted in ``bad_p``
and put in bin 0 at its shift, as the CPU does.  Counts equal the CPU's
exactly; sums agree to rounding (1e-9 relative).
"""

from __future__ import annotations

import numpy as np
from numba import float64

from .._kernels import calibration as _cpu
from . import config
from ._jit import cuda, device, kernel, launching
from ._reduce import block_sum_i64, sum_partials

#: most sub-cells (cell x outcome) one pass accumulates in shared memory (5 doubles each);
#: fewer when the block's shared memory would exceed :data:`SHARED_BYTES`
SUB_TILE = 512

#: shared memory a block may use without opting in to more (48 KiB on every CUDA GPU): the
#: row tile, the sub-cell sums, and the static buffer of the integer block reduction
SHARED_BYTES = 48 * 1024
_NSUM = 5  # count, sum w, sum w d, sum w d^2, sum w^2
_UNIFORM_MARGIN = 1e-9


@device
def _search(x, inner):
    """Number of inner edges strictly below x (binary search)."""
    lo = 0
    hi = inner.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if inner[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@device
def _bin(x, inner, n_bins, uniform):
    """sklearn's bin of x in [0, 1] (``searchsorted(inner, x, side="left")``).
    With uniform edges the guess ``int(x * n_bins)`` is the bin unless ``x * n_bins``
    lies within 1e-9 of an integer; there, and for any other edges, a binary search."""
    if uniform:
        t = x * n_bins
        g = int(t)
        if g > n_bins - 1:
            g = n_bins - 1
        f = t - g
        if f > _UNIFORM_MARGIN and f < 1.0 - _UNIFORM_MARGIN:
            return g
    return _search(x, inner)


@kernel
def _fold_kernel(p, y, tgt, binary, w, seg, n_bins, inner, uniform, shift, s0, n_sub, count_bad,
                 partial, partial_bad):
    tpb = cuda.blockDim.x
    tid = cuda.threadIdx.x
    sh = cuda.shared.array(0, float64)
    t_sub = sh[0:tpb]
    t_d = sh[tpb:2 * tpb]
    t_w = sh[2 * tpb:3 * tpb]
    acc = sh[3 * tpb:3 * tpb + _NSUM * n_sub]
    for k in range(tid, _NSUM * n_sub, tpb):
        acc[k] = 0.0
    has_w = w.shape[0] > 0
    has_seg = seg.shape[0] > 0
    rows = p.shape[0]
    mask = tpb - 1
    bp = 0
    by = 0
    n_tiles = (rows + tpb - 1) // tpb
    for tile in range(cuda.blockIdx.x, n_tiles, cuda.gridDim.x):
        i = tile * tpb + tid
        cuda.syncthreads()  # the previous tile is consumed
        t_sub[tid] = -1.0
        if i < rows:
            x = np.float64(p[i])
            v = y[i]
            if count_bad and binary and v != 0 and v != 1:
                by += 1
            if x >= 0.0 and x <= 1.0:
                b = _bin(x, inner, n_bins, uniform)
                d = x - shift[b]
            else:  # outside [0, 1] or NaN: counted, and put in bin 0 at its shift, as on the CPU
                if count_bad:
                    bp += 1
                b = 0
                d = 0.0
            cell = b
            if has_seg:
                cell += int(seg[i]) * n_bins
            k = 2 * cell + (1 if v == tgt else 0) - s0
            if k >= 0 and k < n_sub:
                t_sub[tid] = np.float64(k)
                t_d[tid] = d
                t_w[tid] = np.float64(w[i]) if has_w else 1.0
        cuda.syncthreads()
        m = min(tpb, rows - tile * tpb)
        for e in range(m):
            s = int(t_sub[e])
            if s >= 0 and (s & mask) == tid:
                wi = t_w[e]
                d = t_d[e]
                a = _NSUM * s
                acc[a] += 1.0
                acc[a + 1] += wi
                acc[a + 2] += wi * d
                acc[a + 3] += wi * d * d
                acc[a + 4] += wi * wi
    cuda.syncthreads()
    for k in range(tid, _NSUM * n_sub, tpb):
        partial[cuda.blockIdx.x, k] = acc[k]
    tb = block_sum_i64(bp)
    ty = block_sum_i64(by)
    if tid == 0:
        partial_bad[cuda.blockIdx.x, 0] = tb
        partial_bad[cuda.blockIdx.x, 1] = ty


def _moment_table(sums, has_w, shift, n_bins, n_cells):
    """The CPU kernel's (count, moment table) from per-sub-cell sums (n, sum w, sum wd, sum wd^2, sum w^2)."""
    S = sums.reshape(n_cells, 2, _NSUM)
    n0 = np.rint(S[:, 0, 0]).astype(np.int64)
    n1 = np.rint(S[:, 1, 0]).astype(np.int64)
    cnt = n0 + n1
    if has_w:
        w0, w1 = S[:, 0, 1], S[:, 1, 1]
        r = S[:, 0, 4] + S[:, 1, 4]
    else:
        w0, w1 = n0.astype(np.float64), n1.astype(np.float64)
        r = w0 + w1
    s0, s1 = S[:, 0, 2], S[:, 1, 2]
    q0, qs = S[:, 0, 3], S[:, 1, 3]
    q = q0 + qs
    wt = w0 + w1
    sh = shift[np.arange(n_cells) % n_bins]
    st = np.zeros((n_cells, _cpu.N_STATS), dtype=np.float64)
    st[:, _cpu.W] = wt
    st[:, _cpu.SW2] = r
    st[:, _cpu.SBR] = (w0 * sh * sh + 2.0 * sh * s0 + q0
                       + w1 * (sh - 1.0) * (sh - 1.0) + 2.0 * (sh - 1.0) * s1 + qs)
    pos = wt > 0.0
    md = np.where(pos, (s0 + s1) / np.where(pos, wt, 1.0), 0.0)
    my = np.where(pos, w1 / np.where(pos, wt, 1.0), 0.0)
    m2 = q - (s0 + s1) * md
    st[:, _cpu.MP] = np.where(pos, sh + md, 0.0)
    st[:, _cpu.MY] = np.where(pos, my, 0.0)
    st[:, _cpu.M2P] = np.where(pos & (m2 > 0.0), m2, 0.0)
    st[:, _cpu.CPY] = np.where(pos, s1 - (s0 + s1) * my, 0.0)
    st[cnt == 0] = 0.0
    return cnt, st


def fold_bins(p, y, target, w, seg, n_bins, inner, lut, uniform, shift, n_cells, chunk=0):
    """Per-cell counts and moment table of one batch, as the CPU's ``fold_bins_serial``.

    The CPU kernel's arguments (``lut``, its bin lookup table, and ``chunk``,
    its row chunk for threads, are accepted and unused).  Returns ``(cnt int64[n_cells], st float64[n_cells,
    N_STATS], bad_p, bad_y)`` on the host; ``st`` columns as in
    :mod:`fastevals._kernels.calibration`.
    """
    n_bins = int(n_bins)
    n_cells = int(n_cells)
    target = int(target)
    rows = p.shape[0]
    has_w = w.shape[0] > 0
    tgt = 1 if target < 0 else target
    tpb = config.threads_per_block()
    blocks = config.blocks_for(rows, tpb)
    n_sub_all = 2 * n_cells
    room = (SHARED_BYTES - 8 * config.MAX_THREADS_PER_BLOCK - 3 * 8 * tpb) // (_NSUM * 8)
    sub_tile = max(1, min(int(SUB_TILE), room))
    sums = np.zeros(_NSUM * n_sub_all, dtype=np.float64)
    bad = np.zeros(2, dtype=np.int64)
    with launching():
        d_p = cuda.to_device(np.ascontiguousarray(p))
        d_y = cuda.to_device(np.ascontiguousarray(y))
        d_w = cuda.to_device(np.ascontiguousarray(w))
        d_seg = cuda.to_device(np.ascontiguousarray(seg))
        d_inner = cuda.to_device(np.ascontiguousarray(inner, dtype=np.float64))
        d_shift = cuda.to_device(np.ascontiguousarray(shift, dtype=np.float64))
        d_bad = cuda.to_device(bad)
        for s0 in range(0, max(n_sub_all, 1), sub_tile):
            n_sub = min(sub_tile, n_sub_all - s0)
            partial = cuda.device_array((blocks, _NSUM * n_sub), dtype=np.float64)
            partial_bad = cuda.device_array((blocks, 2), dtype=np.int64)
            d_out = cuda.to_device(np.zeros(_NSUM * n_sub, dtype=np.float64))
            shmem = (3 * tpb + _NSUM * n_sub) * 8
            _fold_kernel[blocks, tpb, 0, shmem](d_p, d_y, np.int64(tgt), target < 0, d_w, d_seg, np.int64(n_bins),
                                                d_inner, bool(uniform), d_shift, np.int64(s0),
                                                np.int64(n_sub), s0 == 0, partial, partial_bad)
            rb = config.blocks_for(_NSUM * n_sub, tpb)
            sum_partials[rb, tpb](partial, d_out)
            if s0 == 0:
                sum_partials[1, 2](partial_bad, d_bad)
            sums[_NSUM * s0:_NSUM * (s0 + n_sub)] = d_out.copy_to_host()
        bad = d_bad.copy_to_host()
    with np.errstate(all="ignore"):  # NaN or inf probabilities (counted in bad_p) propagate, as on the CPU
        cnt, st = _moment_table(sums, has_w, np.asarray(shift, dtype=np.float64), n_bins, n_cells)
    return cnt, st, int(bad[0]), int(bad[1]) if target < 0 else 0
