"""Fairness and robustness kernels.

Fairness: Poisson-bootstrap replicate counts per cell
-----------------------------------------------------
A fairness analysis needs, per (segment, group, label, prediction-or-score-bin)
cell, only counts; a Poisson-bootstrap replicate's count of a cell is the sum
of its rows' Poisson(1) weights ``w(seed, b, row)``
(:mod:`fastevals._kernels.poisson`, keyed by the global row index).

Per batch, rows are split into fixed chunks of :data:`~fastevals._config.CHUNK_ROWS`
rows (fixed, so the result does not depend on the thread count).  Each chunk is
counting-sorted by cell once, keeping the rows' premixed hashes in sorted order
(:func:`prepare_chunks`); a replicate's count of a cell in a chunk is then the
sum of the weights of one contiguous run of hashes, which
:func:`~fastevals._kernels.poisson.hashed_weights_into` draws 8 rows to an AVX2
instruction and sums, with no scatter.  Replicates are independent output
slots: the parallel loop runs over blocks of :data:`REP_BLOCK` replicates,
each walking every chunk (the chunk's hashes stay in cache for the block).
Counts are integers, so sums are exact in any order.

Contract::

    replicate_counts_{serial,parallel}(seed, g0, kept, cells, n_cells, counts)
      seed: uint64; g0: global index of the batch's first row; kept: int64 offsets of the
      rows used within the batch (empty: all rows, contiguous); cells: int64 codes in
      [0, n_cells); counts: int64[B, n_cells], incremented in place.
      Returns the rows' own (unweighted) counts per cell, int64[n_cells].

Robustness: counter-based perturbations
---------------------------------------
Every random number of the perturbation of example ``i`` (its global row in the
feature matrix), perturbation ``p`` and feature ``f`` is
``mix(K(seed, i, p) + (j + 1) * GOLDEN)``, a splitmix64 stream keyed by::

    K(seed, i, p) = mix(mix(mix(mix(seed)) + (i + 1) * GOLDEN) + (p + 1) * GOLDEN)

* ``method="zero"``: feature ``f`` gets the sort key ``word(j = f)``; features are
  visited in increasing key order (ties, probability 2**-64 a pair, by feature
  index), and each is set to zero when the squared Euclidean distance to the
  original row, after zeroing it, stays ``<= delta**2``; otherwise it is kept and
  the walk goes on with the next feature.
* ``method="gaussian"``: ``u1 = word(2 f) >> 11 * 2**-53``, ``u2 = word(2 f + 1) ...``;
  ``z_f = sqrt(-2 log(1 - u1)) cos(2 pi u2)`` (Box-Muller), and the row moves by
  ``delta * z / ||z||``: a uniformly random direction, at distance exactly ``delta``.

The same ``(seed, i, p)`` gives the same order / direction at every delta
(common random numbers), so the robustness curve over delta is smooth and two
models compared on one seed see the very same perturbed inputs.
"""

import numpy as np
from numba import prange

from .._config import CHUNK_ROWS, parallel_kernel, serial_kernel
from .poisson import (
    GOLDEN,
    hashed_weights_into,
    mix,
    premix,
    round32,
    scheme_keys,
    stream_words,
    uniform32,
    weight_key,
)

#: replicates per block of the parallel loop
REP_BLOCK = 8
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_LOW32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0


@serial_kernel
def _prepare_chunk(ch, rk, g0, kept, cells, n_cells, h, bounds, own):
    # counting sort of chunk ch's rows by cell: their premixed hashes into h in cell order,
    # the cells' runs into bounds[ch], the chunk's unweighted counts into own[ch]
    n = cells.shape[0]
    lo = ch * CHUNK_ROWS
    hi = min(n, lo + CHUNK_ROWS)
    cnt = own[ch]
    for i in range(lo, hi):
        cnt[cells[i]] += 1
    pos = np.empty(n_cells, dtype=np.int64)
    acc = lo
    for c in range(n_cells):
        bounds[ch, c] = acc
        pos[c] = acc
        acc += cnt[c]
    bounds[ch, n_cells] = hi
    k0, k1 = stream_words(rk)
    use_kept = kept.shape[0] > 0
    for i in range(lo, hi):
        g = np.uint64(g0) + (np.uint64(kept[i]) if use_kept else np.uint64(i))
        kh = round32(np.uint32(np.uint32(g >> _S32) ^ k1))
        c = cells[i]
        h[pos[c]] = premix(uniform32(k0, kh, np.uint32(g & _LOW32)))
        pos[c] += 1


@serial_kernel
def _replicate_block(blk, qk, h, bounds, counts, wbuf):
    B = counts.shape[0]
    n_cells = counts.shape[1]
    b_lo = blk * REP_BLOCK
    b_hi = min(B, b_lo + REP_BLOCK)
    for ch in range(bounds.shape[0]):
        for b in range(b_lo, b_hi):
            kb = weight_key(qk, b)
            for c in range(n_cells):
                a = bounds[ch, c]
                e = bounds[ch, c + 1]
                if e > a:
                    counts[b, c] += hashed_weights_into(kb, h[a:e], wbuf)


@parallel_kernel
def replicate_counts_parallel(seed, g0, kept, cells, n_cells, counts):
    n = cells.shape[0]
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    rk, qk = scheme_keys(seed)
    h = np.empty(n, dtype=np.uint32)
    bounds = np.empty((n_chunks, n_cells + 1), dtype=np.int64)
    own = np.zeros((n_chunks, n_cells), dtype=np.int64)
    for ch in prange(n_chunks):
        _prepare_chunk(ch, rk, g0, kept, cells, n_cells, h, bounds, own)
    n_blk = (counts.shape[0] + REP_BLOCK - 1) // REP_BLOCK
    for blk in prange(n_blk):
        wbuf = np.empty(CHUNK_ROWS, dtype=np.int32)
        _replicate_block(blk, qk, h, bounds, counts, wbuf)
    return own.sum(axis=0)


@serial_kernel
def replicate_counts_serial(seed, g0, kept, cells, n_cells, counts):
    """Serial twin of :func:`replicate_counts_parallel` (same contract, same counts)."""
    n = cells.shape[0]
    n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    rk, qk = scheme_keys(seed)
    h = np.empty(n, dtype=np.uint32)
    bounds = np.empty((n_chunks, n_cells + 1), dtype=np.int64)
    own = np.zeros((n_chunks, n_cells), dtype=np.int64)
    for ch in range(n_chunks):
        _prepare_chunk(ch, rk, g0, kept, cells, n_cells, h, bounds, own)
    wbuf = np.empty(CHUNK_ROWS, dtype=np.int32)
    for blk in range((counts.shape[0] + REP_BLOCK - 1) // REP_BLOCK):
        _replicate_block(blk, qk, h, bounds, counts, wbuf)
    return own.sum(axis=0)


# ------------------------------------------------------------------------------------------------
# robustness: perturbations


@serial_kernel
def perturbation_key(seed, example, pert):
    """``K(seed, i, p)``: the key of example ``i``'s perturbation ``p`` (see the module docstring)."""
    k = mix(mix(mix(np.uint64(seed))) + (np.uint64(example) + _ONE) * GOLDEN)
    return mix(k + (np.uint64(pert) + _ONE) * GOLDEN)


@serial_kernel
def _perturb_one(x, key, method, delta, out, sort_keys):
    F = x.shape[0]
    if method == 0:
        for f in range(F):
            sort_keys[f] = mix(key + (np.uint64(f) + _ONE) * GOLDEN)
            out[f] = x[f]
        order = np.argsort(sort_keys, kind="mergesort")
        d2 = 0.0
        lim = delta * delta
        for j in range(F):
            f = order[j]
            c = x[f] * x[f]
            if d2 + c <= lim:
                out[f] = 0.0
                d2 += c
    else:
        ss = 0.0
        for f in range(F):
            w1 = mix(key + (np.uint64(2 * f) + _ONE) * GOLDEN)
            w2 = mix(key + (np.uint64(2 * f + 1) + _ONE) * GOLDEN)
            u1 = np.float64(w1 >> _S11) * _INV53
            u2 = np.float64(w2 >> _S11) * _INV53
            z = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
            out[f] = z
            ss += z * z
        scale = delta / np.sqrt(ss) if ss > 0.0 else 0.0
        for f in range(F):
            out[f] = x[f] + out[f] * scale


@parallel_kernel
def perturb_parallel(X, ex0, n_pert, seed, method, delta, out):
    """``out[r * n_pert + p] = perturbation p of row r of X`` (example ``ex0 + r``); method 0 zero,
    1 gaussian.  Rows are independent output slots."""
    for r in prange(X.shape[0]):
        sort_keys = np.empty(X.shape[1], dtype=np.uint64)
        for p in range(n_pert):
            _perturb_one(X[r], perturbation_key(seed, ex0 + r, p), method, delta, out[r * n_pert + p], sort_keys)


@serial_kernel
def perturb_serial(X, ex0, n_pert, seed, method, delta, out):
    """Serial twin of :func:`perturb_parallel`."""
    sort_keys = np.empty(X.shape[1], dtype=np.uint64)
    for r in range(X.shape[0]):
        for p in range(n_pert):
            _perturb_one(X[r], perturbation_key(seed, ex0 + r, p), method, delta, out[r * n_pert + p], sort_keys)
