"""Monte Carlo tables with fixed margins (Patefield 1981, AS 159) and their G statistics.

Each random table is built row by row: row i takes its r_i units from an urn
holding the column totals that earlier rows left, one colour (column) at a
time, so every cell is a univariate hypergeometric draw given the cells
before it. Each draw is made by inversion from the mode outwards, as in
Patefield's algorithm: start at the most likely value and add the
probabilities of its neighbours, alternately above and below, until they
exceed a uniform variate. The result is an exact draw from the distribution
of tables with the observed margins under independence.

Table ``t`` draws its uniforms from a splitmix64 stream keyed by (seed, t), so
the simulated tables, and the Monte Carlo p-value, do not depend on the number
of threads or on how tables are split into blocks.

References
----------
W. M. Patefield, "Algorithm AS 159: An efficient method of generating random
R x C tables with given row and column totals", Applied Statistics 30 (1981).
"""

import math

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel
from .poisson import GOLDEN as _GOLDEN
from .poisson import mix as _mix64  # splitmix64: one jitted source (fastevals._rng)

_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@serial_kernel
def _uniform(state):
    """Next uniform in [0, 1) of the splitmix64 stream whose counter is state[0]."""
    state[0] += _GOLDEN
    return (_mix64(state[0]) >> _S11) * _INV53


@serial_kernel
def _log_choose(n, k):
    return math.lgamma(n + 1.0) - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0)


@serial_kernel
def hypergeometric(total, good, draws, state):
    """One draw of the number of good units among ``draws`` taken without
    replacement from ``total`` units of which ``good`` are good."""
    bad = total - good
    lo = max(0, draws - bad)
    hi = min(draws, good)
    if lo == hi:
        return lo
    mode = ((draws + 1) * (good + 1)) // (total + 2)
    mode = min(max(mode, lo), hi)
    p_mode = math.exp(_log_choose(good, mode) + _log_choose(bad, draws - mode) - _log_choose(total, draws))
    while True:
        u = _uniform(state)
        acc = p_mode
        if u <= acc:
            return mode
        up = mode
        down = mode
        p_up = p_mode
        p_down = p_mode
        while up < hi or down > lo:
            if up < hi:
                # p(x + 1) / p(x) = (good - x)(draws - x) / ((x + 1)(bad - draws + x + 1))
                p_up *= (good - up) * (draws - up) / ((up + 1.0) * (bad - draws + up + 1.0))
                up += 1
                acc += p_up
                if u <= acc:
                    return up
            if down > lo:
                # p(x - 1) / p(x) = x (bad - draws + x) / ((good - x + 1)(draws - x + 1))
                p_down *= down * (bad - draws + down) / ((good - down + 1.0) * (draws - down + 1.0))
                down -= 1
                acc += p_down
                if u <= acc:
                    return down
        # u fell in the rounding gap above the summed probabilities: draw again


@serial_kernel
def random_table(rows, cols, state, out):
    """Fill ``out`` (R x C, int64) with a random table with margins ``rows``, ``cols``."""
    n_rows = rows.shape[0]
    n_cols = cols.shape[0]
    left = cols.copy()
    remaining = 0
    for j in range(n_cols):
        remaining += left[j]
    for i in range(n_rows - 1):
        need = rows[i]
        pool = remaining
        for j in range(n_cols - 1):
            if need == 0:
                out[i, j] = 0
            else:
                x = hypergeometric(pool, left[j], need, state)
                out[i, j] = x
                need -= x
            pool -= left[j]
        out[i, n_cols - 1] = need
        for j in range(n_cols):
            left[j] -= out[i, j]
        remaining -= rows[i]
    for j in range(n_cols):
        out[n_rows - 1, j] = left[j]


@serial_kernel
def _table_g(table, log_expected, xlogx):
    g = 0.0
    use_table = xlogx.shape[0] > 0
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            x = table[i, j]
            if x > 0:
                if use_table:
                    g += xlogx[x] - x * log_expected[i, j]
                else:
                    g += x * (math.log(x) - log_expected[i, j])
    return 2.0 * g


@serial_kernel
def _count_block(b, block, n_tables, rows, cols, log_expected, xlogx, threshold, seed, counts):
    start = b * block
    stop = min(n_tables, start + block)
    table = np.empty((rows.shape[0], cols.shape[0]), dtype=np.int64)
    state = np.empty(1, dtype=np.uint64)
    hits = 0
    for t in range(start, stop):
        state[0] = _mix64(np.uint64(seed) ^ _mix64(np.uint64(t) + _GOLDEN))
        random_table(rows, cols, state, table)
        if _table_g(table, log_expected, xlogx) >= threshold:
            hits += 1
    counts[b] = hits


@parallel_kernel
def monte_carlo_g_hits(rows, cols, log_expected, xlogx, threshold, n_tables, seed, block):
    """How many of ``n_tables`` random tables with these margins have G >= threshold."""
    n_blocks = (n_tables + block - 1) // block
    counts = np.zeros(n_blocks, dtype=np.int64)
    for b in prange(n_blocks):
        _count_block(b, block, n_tables, rows, cols, log_expected, xlogx, threshold, seed, counts)
    return counts.sum()


@serial_kernel
def random_tables(rows, cols, n_tables, seed):
    """``n_tables`` random tables (for tests and diagnostics), table t from stream (seed, t)."""
    out = np.empty((n_tables, rows.shape[0], cols.shape[0]), dtype=np.int64)
    state = np.empty(1, dtype=np.uint64)
    for t in range(n_tables):
        state[0] = _mix64(np.uint64(seed) ^ _mix64(np.uint64(t) + _GOLDEN))
        random_table(rows, cols, state, out[t])
    return out
