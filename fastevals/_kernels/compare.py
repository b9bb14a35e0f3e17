"""Paired bootstrap kernel of model comparison: per-replicate weighted sums of K models' features.

One pass over the rows: for each row the Poisson weight of each replicate is
computed once (counter-based, :mod:`fastevals._kernels.poisson`) and reused for
all ``F`` feature columns (one or a few per model), so every model sees the same
weights in a replicate: that is the paired bootstrap.  Pairwise differences are
computed from the ``B x F`` sums at finalize.

Layout and determinism.  Rows are item-major (``X[i, :]``: the ``F`` features of
row ``i``, contiguous), so the inner loop runs over features and vectorizes;
per replicate the sums take the rows in global row order, so the result is the
same for any batch size; the parallel loop is over blocks of replicates
(independent output rows of ``S``), so it is the same on 1 or N threads.
Weight-0 rows (37%) are skipped when there are enough features to pay for the
branch.  The row chunk is sized so that its ``chunk x F`` block stays in L2
while a block of replicates passes over it.

Contract:
  accumulate_{serial,parallel}(seed, g0, keys, X, S, W)
    seed: uint64; g0: global index of X's first row (the weight key when ``keys``
    is empty); keys: uint64 row keys (hashed cluster ids) or empty; X: float64[n, F]
    C-contiguous; S: float64[B, F] and W: int64[B] (weight totals) updated in place.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel
from .poisson import hashed_weights_into, key_hashes_into, row_hashes_into, scheme_keys, weight_key

#: replicates per block (one block: one task of the parallel loop)
REP_BLOCK = 8
#: the row chunk's feature block targets this many float64 (512 KiB: in L2 with room to spare)
CHUNK_VALUES = 1 << 16
#: features from which zero-weight rows are skipped (below, the branch costs more than it saves)
SKIP_FROM = 6


@serial_kernel
def _chunk_rows(F):
    c = CHUNK_VALUES // max(F, 1)
    if c < 64:
        c = 64
    if c > 4096:
        c = 4096
    return c


@serial_kernel
def _block(seed, blk, g0, keys, X, S, W, wbuf, hbuf):
    n = X.shape[0]
    F = X.shape[1]
    B = S.shape[0]
    b_lo = blk * REP_BLOCK
    b_hi = min(B, b_lo + REP_BLOCK)
    rk, qk = scheme_keys(seed)
    chunk = _chunk_rows(F)
    use_keys = keys.shape[0] > 0
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        h = hbuf[:m]
        if use_keys:
            key_hashes_into(rk, keys, lo, lo + m, h)
        else:
            row_hashes_into(rk, g0 + lo, m, h)
        wb = wbuf[:m]
        for b in range(b_lo, b_hi):
            W[b] += hashed_weights_into(weight_key(qk, b), h, wb)
            acc = S[b]
            if F >= SKIP_FROM:
                for i in range(m):
                    w = wb[i]
                    if w != 0:
                        fw = np.float64(w)
                        x = X[lo + i]
                        for f in range(F):
                            acc[f] += fw * x[f]
            else:
                for i in range(m):
                    fw = np.float64(wb[i])
                    x = X[lo + i]
                    for f in range(F):
                        acc[f] += fw * x[f]


@parallel_kernel
def accumulate_parallel(seed, g0, keys, X, S, W):
    n_blk = (S.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    chunk = _chunk_rows(X.shape[1])
    for blk in prange(n_blk):
        wbuf = np.empty(chunk, dtype=np.int32)
        hbuf = np.empty(chunk, dtype=np.uint32)
        _block(seed, blk, g0, keys, X, S, W, wbuf, hbuf)


@serial_kernel
def accumulate_serial(seed, g0, keys, X, S, W):
    n_blk = (S.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    chunk = _chunk_rows(X.shape[1])
    wbuf = np.empty(chunk, dtype=np.int32)
    hbuf = np.empty(chunk, dtype=np.uint32)
    for blk in range(n_blk):
        _block(seed, blk, g0, keys, X, S, W, wbuf, hbuf)
