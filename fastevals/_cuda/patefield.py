"""CUDA twin of :func:`fastevals._kernels.patefield.monte_carlo_g_hits`.

One thread per random table (grid-stride).  Table ``t`` draws its uniforms
from the splitmix64 stream keyed by ``(seed, t)`` exactly as the CPU kernel
does, builds the table row by row with Patefield's hypergeometric inversion
from the mode, and adds each cell's G term as soon as the cell is drawn (in
the CPU's row-major order), so no table is stored: a thread keeps only the
column totals left (at most :data:`MAX_COLS` columns).  Hits are summed in a
shared-memory tree per block, then over blocks in order on the device.

Same tables as the CPU, hence the same hit count and Monte Carlo p-value,
with one caveat measured nowhere yet: the device's ``lgamma``/``exp``/``log``
(libdevice) may differ from the CPU's in the last bit, which could change a
draw only when a uniform falls within an ulp of a cumulative probability, and
the G values may differ in the last bits, which the caller's threshold slack
(``1e-7`` relative) absorbs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import int64

from . import config
from ._jit import cuda, device, kernel, launching
from ._reduce import block_sum_i64, sum_partials
from .rng import GOLDEN, mix64, to_unit

#: most columns a table may have on the device (rows are unlimited)
MAX_COLS = 64


@device
def _log_choose(n, k):
    return math.lgamma(n + 1.0) - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0)


@device
def _next_uniform(state):
    state = state + GOLDEN
    return state, to_unit(mix64(state))


@device
def _hypergeometric(total, good, draws, state):
    """(draw, new state): good units among ``draws`` taken from ``total`` of which ``good`` are good."""
    bad = total - good
    lo = max(0, draws - bad)
    hi = min(draws, good)
    if lo == hi:
        return lo, state
    mode = ((draws + 1) * (good + 1)) // (total + 2)
    mode = min(max(mode, lo), hi)
    p_mode = math.exp(_log_choose(good, mode) + _log_choose(bad, draws - mode) - _log_choose(total, draws))
    while True:
        state, u = _next_uniform(state)
        acc = p_mode
        if u <= acc:
            return mode, state
        up = mode
        down = mode
        p_up = p_mode
        p_down = p_mode
        while up < hi or down > lo:
            if up < hi:
                p_up *= (good - up) * (draws - up) / ((up + 1.0) * (bad - draws + up + 1.0))
                up += 1
                acc += p_up
                if u <= acc:
                    return up, state
            if down > lo:
                p_down *= down * (bad - draws + down) / ((good - down + 1.0) * (draws - down + 1.0))
                down -= 1
                acc += p_down
                if u <= acc:
                    return down, state
        # u fell in the rounding gap above the summed probabilities: draw again


@device
def _g_term(x, le, xlogx, use_table):
    if x <= 0:
        return 0.0
    if use_table:
        return xlogx[x] - x * le
    return x * (math.log(x) - le)


@device
def _random_table_g(rows, cols, log_expected, xlogx, use_table, state, left):
    """G statistic of one random table with margins ``rows``, ``cols`` (drawn as the CPU's ``random_table``)."""
    n_rows = rows.shape[0]
    n_cols = cols.shape[0]
    remaining = 0
    for j in range(n_cols):
        left[j] = cols[j]
        remaining += cols[j]
    g = 0.0
    for i in range(n_rows - 1):
        need = rows[i]
        pool = remaining
        for j in range(n_cols - 1):
            x = 0
            if need != 0:
                x, state = _hypergeometric(pool, left[j], need, state)
                need -= x
            pool -= left[j]  # the column total before this row, as on the CPU
            left[j] -= x
            g += _g_term(x, log_expected[i, j], xlogx, use_table)
        left[n_cols - 1] -= need
        g += _g_term(need, log_expected[i, n_cols - 1], xlogx, use_table)
        remaining -= rows[i]
    for j in range(n_cols):
        g += _g_term(left[j], log_expected[n_rows - 1, j], xlogx, use_table)
    return 2.0 * g


@kernel
def _hits_kernel(rows, cols, log_expected, xlogx, threshold, n_tables, seed, partial):
    left = cuda.local.array(MAX_COLS, int64)
    use_table = xlogx.shape[0] > 0
    hits = 0
    for t in range(cuda.grid(1), n_tables, cuda.gridsize(1)):
        state = mix64(seed ^ mix64(np.uint64(t) + GOLDEN))
        if _random_table_g(rows, cols, log_expected, xlogx, use_table, state, left) >= threshold:
            hits += 1
    total = block_sum_i64(hits)
    if cuda.threadIdx.x == 0:
        partial[cuda.blockIdx.x, 0] = total


def monte_carlo_g_hits(rows, cols, log_expected, xlogx, threshold, n_tables, seed, block=0):
    """How many of ``n_tables`` random tables with margins ``rows``, ``cols`` have G >= ``threshold``.

    The arguments of the CPU kernel (``block``, its thread-chunk size, is
    accepted and unused: the GPU splits tables by thread).  ``rows``, ``cols``
    int64; ``log_expected`` float64 (R, C); ``xlogx`` float64 (``x log x`` for
    x = 0..n, or empty); ``seed`` a uint64.  Returns the count as an int.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    if cols.shape[0] > MAX_COLS:
        raise ValueError(f"the CUDA Monte Carlo G-test supports at most {MAX_COLS} columns; got {cols.shape[0]}")
    n_tables = int(n_tables)
    if n_tables <= 0:
        return 0
    tpb = config.threads_per_block()
    blocks = config.blocks_for(n_tables, tpb)
    with launching():
        d_rows = cuda.to_device(rows)
        d_cols = cuda.to_device(cols)
        d_le = cuda.to_device(np.ascontiguousarray(log_expected, dtype=np.float64))
        d_xl = cuda.to_device(np.ascontiguousarray(xlogx, dtype=np.float64))
        partial = cuda.device_array((blocks, 1), dtype=np.int64)
        out = cuda.to_device(np.zeros(1, dtype=np.int64))
        _hits_kernel[blocks, tpb](d_rows, d_cols, d_le, d_xl, np.float64(threshold), np.int64(n_tables),
                                  np.uint64(seed), partial)
        sum_partials[1, 1](partial, out)
        return int(out.copy_to_host()[0])
