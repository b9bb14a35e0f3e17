"""Slice counting: one pass adds every row into the cell of every slice it belongs to.

A slice is a conjunction of conditions on up to ``max_order`` columns; each column holds
small integer codes (a categorical level or a numeric bin). The slices of one combination
of columns (``combo``) are the cells of a dense block of the output: row ``i`` falls into
cell ``offset[m] + sum_k codes[i, cols[m, k]] * strides[m, k]`` of combo ``m``.

Per cell the kernels add ``count``, ``sum(v)`` and, with ``width == 3``, ``sum(v * v)``
(``v`` is the per-row metric, already shifted by the state).

Parallelism: the rows are cut into ``n_parts`` fixed ranges (a function of the row count
and ``n_parts`` only, never of the thread count); each part adds into its own private
block ``out[p]`` and the caller sums the parts in order. So the answer is the same on 1 or
N threads.
"""

from __future__ import annotations

from numba import prange

from .._config import parallel_kernel, serial_kernel


@serial_kernel
def _count_rows(lo, hi, codes, values, cols, offsets, strides, out, p):
    n_combos = cols.shape[0]
    order = cols.shape[1]
    width = out.shape[2]
    for i in range(lo, hi):
        v = values[i]
        for m in range(n_combos):
            cell = offsets[m]
            for k in range(order):
                c = cols[m, k]
                if c < 0:
                    break
                cell += codes[i, c] * strides[m, k]
            out[p, cell, 0] += 1.0
            out[p, cell, 1] += v
            if width == 3:
                out[p, cell, 2] += v * v


@serial_kernel
def count_cells_serial(codes, values, cols, offsets, strides, out):
    """Every row into its cells, in ``out.shape[0]`` consecutive row parts (one after the other)."""
    n = codes.shape[0]
    n_parts = out.shape[0]
    for p in range(n_parts):
        _count_rows(p * n // n_parts, (p + 1) * n // n_parts, codes, values, cols, offsets, strides, out, p)


@parallel_kernel
def count_cells_parallel(codes, values, cols, offsets, strides, out):
    """As :func:`count_cells_serial`, the parts run in parallel (each writes only ``out[p]``)."""
    n = codes.shape[0]
    n_parts = out.shape[0]
    for p in prange(n_parts):
        _count_rows(p * n // n_parts, (p + 1) * n // n_parts, codes, values, cols, offsets, strides, out, p)
