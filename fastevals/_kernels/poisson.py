"""Counter-based Poisson weights: the random numbers of the Poisson bootstrap.

Replicate ``b`` gives the row with key ``k`` the weight::

    w(seed, b, k) = Poisson1(hash(seed, b, k))

computed from nothing but those three integers, so the weight is the same on
any thread count, batch size, file split or device; nothing is stored.

The hash
--------
``stream(seed, b) = mix(mix(seed) ^ mix(b + 1))`` keys replicate ``b``; a row
key is then mixed in splitmix64 style, ``h = mix(stream + (k + 1) * GOLDEN)``,
where ``mix`` is the splitmix64 finalizer (Steele, Lea & Flood 2014; constants
of Stafford's "Mix13").  Row keys come in two kinds:

* ``row``: the global index ``i`` of the row.  Rows ``2j`` and ``2j + 1`` share
  one 64-bit hash of ``j``: the low 32 bits draw the weight of row ``2j``,
  the high 32 bits that of row ``2j + 1`` (one hash for two weights).
* ``key``: a 64-bit key (a hashed cluster / unit id, see :func:`hash_key`);
  the weight is drawn from the low 32 bits of ``mix(stream ^ key)``.

Poisson(1) from 32 bits
-----------------------
``u`` (32 uniform bits) is compared with the integer thresholds
``T[k] = round(2**32 * P(X <= k))``, ``k = 0..11``; the weight is the number
of thresholds ``u`` reaches.  Each probability is then exact to within
``2**-32`` (2.3e-10); weights above 12 (true probability 6e-11) are not drawn.
The comparison chain is branch-free, so the loop vectorizes.

Poisson(lambda) for the sufficient-statistics shortcut
------------------------------------------------------
The sum of ``n`` independent Poisson(1) weights is Poisson(n): a categorical
metric needs one draw per (replicate, cell) instead of one per row.  Those
draws are counter-based too: uniforms ``mix(stream ^ mix(cell_key) + j * GOLDEN)``
for ``j = 1, 2, ...`` feed inversion (lambda < 10) or Hormann's PTRS
transformed rejection (lambda >= 10), both exact samplers.

References
----------
G. L. Steele, D. Lea, C. H. Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014.
W. Hormann, "The transformed rejection method for generating Poisson random
variables", Insurance: Mathematics and Economics 12 (1993) 39-45.
"""

import math

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_LOW32 = np.uint64(0xFFFFFFFF)

#: round(2**32 * scipy.stats.poisson.cdf(k, 1)) for k = 0..11 (tests recompute them)
THRESHOLDS = (
    1580030169, 3160060337, 3950075422, 4213413783, 4279248374, 4292415292,
    4294609778, 4294923276, 4294962463, 4294966817, 4294967253, 4294967292,
)
_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11 = (np.uint32(t) for t in THRESHOLDS)

#: the largest weight the generator draws
MAX_WEIGHT = len(THRESHOLDS)


@serial_kernel
def mix(z):
    """splitmix64 finalizer: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@serial_kernel
def stream_key(seed, b):
    """The 64-bit key of replicate ``b`` under ``seed``."""
    return mix(mix(np.uint64(seed)) ^ mix(np.uint64(b) + _ONE))


@serial_kernel
def poisson1_u32(u):
    """Poisson(1) variate from 32 uniform bits (``u`` a uint32), branch-free."""
    return (
        np.int64(u >= _T0) + np.int64(u >= _T1) + np.int64(u >= _T2) + np.int64(u >= _T3)
        + np.int64(u >= _T4) + np.int64(u >= _T5) + np.int64(u >= _T6) + np.int64(u >= _T7)
        + np.int64(u >= _T8) + np.int64(u >= _T9) + np.int64(u >= _T10) + np.int64(u >= _T11)
    )


@serial_kernel
def pair_hashes(sb, pair0, m, h):
    """``h[j] = mix(sb + (pair0 + j + 1) * GOLDEN)``: the hash of row pair ``pair0 + j``."""
    for j in range(m):
        h[j] = mix(sb + (np.uint64(pair0 + j) + _ONE) * GOLDEN)


@serial_kernel
def poisson1_bits(u, out):
    """``out[i] = Poisson1(u[i])`` for uint32 ``u`` (a separate loop: it vectorizes)."""
    for i in range(out.shape[0]):
        out[i] = np.int32(poisson1_u32(u[i]))


@serial_kernel
def row_weights_into(sb, g0, n, out, hbuf):
    """Weights of rows ``g0 .. g0 + n - 1`` for the replicate keyed ``sb`` into ``out[:n]`` (int32).

    ``hbuf`` (uint64, at least ``n // 2 + 1`` long) is scratch.  Row ``g`` takes
    the low (even ``g``) or high (odd ``g``) 32 bits of the hash of pair ``g >> 1``;
    on a little-endian machine those are the uint32 view of the hashes, in order.
    """
    if n <= 0:
        return
    sb = np.uint64(sb)
    p0 = g0 >> 1
    n_pairs = ((g0 + n - 1) >> 1) - p0 + 1
    pair_hashes(sb, p0, n_pairs, hbuf)
    u = hbuf[:n_pairs].view(np.uint32)
    off = g0 & 1
    poisson1_bits(u[off:off + n], out[:n])


@serial_kernel
def key_weights_into(sb, keys, lo, hi, out):
    """Weights of the rows with 64-bit keys ``keys[lo:hi]`` (cluster bootstrap), into ``out``."""
    sb = np.uint64(sb)
    for i in range(hi - lo):
        h = mix(sb ^ keys[lo + i])
        out[i] = np.int32(poisson1_u32(np.uint32(h & _LOW32)))


@parallel_kernel
def weight_matrix(seed, b0, n_rep, g0, n, keys):
    """Weights ``w[b, i]`` for replicates ``b0 .. b0 + n_rep - 1`` (uint8).

    Rows are ``g0 .. g0 + n - 1`` when ``keys`` is empty, else ``keys`` (then ``n`` is ignored).
    For tests and small inputs: the engine never materializes this matrix.
    """
    use_keys = keys.shape[0] > 0
    m = keys.shape[0] if use_keys else n
    out = np.empty((n_rep, m), dtype=np.uint8)
    for r in prange(n_rep):
        sb = stream_key(seed, b0 + r)
        buf = np.empty(m, dtype=np.int32)
        if use_keys:
            key_weights_into(sb, keys, 0, m, buf)
        else:
            hbuf = np.empty(m // 2 + 2, dtype=np.uint64)
            row_weights_into(sb, g0, m, buf, hbuf)
        for i in range(m):
            out[r, i] = buf[i]
    return out


@serial_kernel
def hash_keys_int(values):
    """64-bit keys of integer cluster ids (a bijection, so distinct ids never collide)."""
    out = np.empty(values.shape[0], dtype=np.uint64)
    for i in range(values.shape[0]):
        out[i] = mix(np.uint64(values[i]) + GOLDEN)
    return out


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@serial_kernel
def hash_keys_bytes(offsets, data):
    """64-bit keys of string cluster ids (Arrow large-string buffers): FNV-1a, then ``mix``."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        h = _FNV_OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * _FNV_PRIME
        out[i] = mix(h ^ np.uint64(offsets[i + 1] - offsets[i]))
    return out


# ------------------------------------------------------------------------------------------------
# Poisson(lambda), counter-based


@serial_kernel
def _uniform(key, j):
    """The j-th uniform in [0, 1) of the stream ``key`` (53 bits)."""
    h = mix(key + (np.uint64(j) + _ONE) * GOLDEN)
    return np.float64(h >> _S11) * (1.0 / 9007199254740992.0)


@serial_kernel
def poisson_draw(key, lam):
    """One Poisson(lam) variate from the uniform stream ``key`` (exact samplers)."""
    if lam <= 0.0:
        return np.int64(0)
    j = 0
    if lam < 10.0:
        # inversion by sequential search
        u = _uniform(key, j)
        p = math.exp(-lam)
        cdf = p
        k = 0
        while u > cdf and k < 1000:
            k += 1
            p *= lam / k
            cdf += p
            if p < 1e-300 and cdf <= u:
                break
        return np.int64(k)
    # PTRS (Hormann 1993)
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        U = _uniform(key, j) - 0.5
        V = _uniform(key, j + 1)
        j += 2
        us = 0.5 - abs(U)
        k = math.floor((2.0 * a / us + b) * U + lam + 0.43)
        if us >= 0.07 and V <= vr:
            return np.int64(k)
        if k < 0 or (us < 0.013 and V > us):
            continue
        if (math.log(V) + math.log(invalpha) - math.log(a / (us * us) + b)) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return np.int64(k)


@parallel_kernel
def poisson_cell_counts(seed, b0, n_rep, cell_keys, lam):
    """``out[r, c] ~ Poisson(lam[c])`` for replicate ``b0 + r`` and cell key ``cell_keys[c]``."""
    n_cells = lam.shape[0]
    out = np.empty((n_rep, n_cells), dtype=np.int64)
    for r in prange(n_rep):
        sb = stream_key(seed, b0 + r)
        for c in range(n_cells):
            out[r, c] = poisson_draw(sb ^ mix(cell_keys[c] + GOLDEN), lam[c])
    return out


@serial_kernel
def poisson_cell_counts_serial(seed, b0, n_rep, cell_keys, lam):
    """Serial twin of :func:`poisson_cell_counts` (small jobs do not pay for threads)."""
    n_cells = lam.shape[0]
    out = np.empty((n_rep, n_cells), dtype=np.int64)
    for r in range(n_rep):
        sb = stream_key(seed, b0 + r)
        for c in range(n_cells):
            out[r, c] = poisson_draw(sb ^ mix(cell_keys[c] + GOLDEN), lam[c])
    return out
