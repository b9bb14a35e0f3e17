"""Deterministic reductions shared by the CUDA twins: a shared-memory tree within a
block (no warp shuffles, so the simulator runs it) and an in-order sum over the
blocks' partial results.  The same inputs give the same bits on every run."""

from __future__ import annotations

from numba import float64, int64

from ._jit import cuda, device, kernel
from .config import MAX_THREADS_PER_BLOCK

_BUF = MAX_THREADS_PER_BLOCK


@device
def block_sum_f64(value):
    """Sum of ``value`` over the threads of the block (every thread gets it).
    ``blockDim.x`` must be a power of two; every thread of the block must call it."""
    buf = cuda.shared.array(_BUF, float64)
    tid = cuda.threadIdx.x
    cuda.syncthreads()  # the buffer may still be read from a previous call
    buf[tid] = value
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            buf[tid] += buf[tid + s]
        cuda.syncthreads()
        s //= 2
    return buf[0]


@device
def block_sum_i64(value):
    """Integer twin of :func:`block_sum_f64`."""
    buf = cuda.shared.array(_BUF, int64)
    tid = cuda.threadIdx.x
    cuda.syncthreads()
    buf[tid] = value
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            buf[tid] += buf[tid + s]
        cuda.syncthreads()
        s //= 2
    return buf[0]


@kernel
def sum_partials(partial, out):
    """``out[s] += sum(partial[:, s])``, blocks summed in order (one thread per slot)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    n_blocks = partial.shape[0]
    for s in range(start, partial.shape[1], stride):
        acc = partial[0, s]
        for k in range(1, n_blocks):
            acc += partial[k, s]
        out[s] += acc
