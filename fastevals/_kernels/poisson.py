"""Counter-based Poisson weights: the random numbers of the Poisson bootstrap.

Replicate ``b`` gives the row with key ``c`` the weight::

    w(seed, b, c) = Poisson1(u(stream_key(seed, b), c))

computed from nothing but those three integers, so the weight is the same on
any thread count, batch size, file split or device; nothing is stored.

The scheme, bit for bit
-----------------------
All arithmetic is unsigned and wraps (mod 2**64 for u64, mod 2**32 for u32);
``>>`` is a logical shift, ``lo32(z) = z & 0xFFFFFFFF``, ``hi32(z) = z >> 32``.

1. ``mix64`` is the splitmix64 finalizer (Steele, Lea & Flood 2014; Stafford's
   "Mix13" constants)::

       z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
       z = (z ^ (z >> 27)) * 0x94D049BB133111EB
       mix64(z) = z ^ (z >> 31)

2. Replicate ``b`` of ``seed`` (both u64) has the 64-bit stream key, computed
   once per replicate (the only 64-bit arithmetic per replicate)::

       sb = stream_key(seed, b) = mix64(mix64(seed) + (b + 1) * 0x9E3779B97F4A7C15)
       k0 = lo32(sb),  k1 = hi32(sb)

   (a splitmix64 sequence seeded by ``mix64(seed)``: unlike a symmetric
   combination of ``seed`` and ``b``, seed ``s`` replicate ``b`` never
   repeats seed ``b + 1`` replicate ``s - 1``).

3. ``R`` is a 32-bit multiply-xorshift round, a bijection of u32 (constants
   from Wellons' hash-prospector search, low avalanche bias)::

       x = x ^ (x >> 16);  x = x * 0x21F0AAAD   (u32 product, low 32 bits)
       x = x ^ (x >> 15);  x = x * 0x735A2D97
       R(x) = x ^ (x >> 15)

4. The 32 uniform bits of a 64-bit counter ``c`` in replicate ``sb``::

       u(sb, c) = R( R(lo32(c) ^ k0) ^ R(hi32(c) ^ k1) )

   Row keys come in two kinds:

   * ``row``: ``c`` is the global index ``g`` of the row.  Below 2**32 rows
     ``R(hi32(g) ^ k1) = R(k1)`` is a per-replicate constant, so a row costs
     two rounds (four 32-bit multiplies): eight rows per AVX2 instruction,
     one thread per row on a GPU.
   * ``key``: a 64-bit key (a hashed cluster / unit id, see
     :func:`hash_keys_int`, :func:`hash_keys_bytes`), both halves used.

5. Poisson(1) from ``u``: with the integer thresholds
   ``T[k] = round(2**32 * P(X <= k))``, ``k = 0..11`` (:data:`THRESHOLDS`),
   the weight is the number of thresholds ``u`` reaches (unsigned compare),
   ``w = #{k : u >= T[k]}``.  Each probability is then exact to within
   ``2**-32`` (2.3e-10); weights above 12 (true probability 6e-11) are not
   drawn.  The CPU kernels compare with ``T[0..5]`` only and redo, with all
   twelve, the rare 256-row blocks where some ``u >= T[6]`` (probability
   8.3e-5 a row): the result is always the full count.

Poisson(lambda) for the sufficient-statistics shortcut
------------------------------------------------------
The sum of ``n`` independent Poisson(1) weights is Poisson(n): a categorical
metric needs one draw per (replicate, cell) instead of one per row.  Those
draws are counter-based too: with ``s = sb ^ mix64(cell_key + GOLDEN)`` the
uniforms ``(mix64(s + (j + 1) * GOLDEN) >> 11) * 2**-53``, ``j = 0, 1, ...``
feed inversion (lambda < 10) or Hormann's PTRS transformed rejection
(lambda >= 10), both exact samplers.

References
----------
G. L. Steele, D. Lea, C. H. Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014.
C. Wellons, "Prospecting for hash functions" (2018), and the hash-prospector
search results for two-round 32-bit multiply-xorshift functions.
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
# the 32-bit round
_R1 = np.uint32(0x21F0AAAD)
_R2 = np.uint32(0x735A2D97)
_R16 = np.uint32(16)
_R15 = np.uint32(15)

#: round(2**32 * scipy.stats.poisson.cdf(k, 1)) for k = 0..11 (tests recompute them)
THRESHOLDS = (
    1580030169, 3160060337, 3950075422, 4213413783, 4279248374, 4292415292,
    4294609778, 4294923276, 4294962463, 4294966817, 4294967253, 4294967292,
)
_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11 = (np.uint32(t) for t in THRESHOLDS)

# T[k] - 2**31: u >= T[k] exactly when the int32 ``u ^ 0x80000000`` is >= T[k] - 2**31
_F0, _F1, _F2, _F3, _F4, _F5, _F6, _F7, _F8, _F9, _F10, _F11 = (np.int32(t - 2**31) for t in THRESHOLDS)

#: the largest weight the generator draws
MAX_WEIGHT = len(THRESHOLDS)

#: rows per block of the two-step weight loops (six compares, then the rare full redo)
WEIGHT_BLOCK = 256


@serial_kernel
def mix(z):
    """splitmix64 finalizer: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@serial_kernel
def stream_key(seed, b):
    """The 64-bit key of replicate ``b`` under ``seed``."""
    return mix(mix(np.uint64(seed)) + (np.uint64(b) + _ONE) * GOLDEN)


@serial_kernel
def round32(x):
    """The 32-bit multiply-xorshift round ``R`` (a bijection of uint32).

    Every step is cut back to 32 bits: numba widens integer arithmetic to 64
    bits, and the truncations let LLVM use 32-bit vector multiplies.
    """
    x = np.uint32(x)
    x = np.uint32(x ^ (x >> _R16))
    x = np.uint32(x * _R1)
    x = np.uint32(x ^ (x >> _R15))
    x = np.uint32(x * _R2)
    return np.uint32(x ^ (x >> _R15))


@serial_kernel
def stream_words(sb):
    """``(k0, k1)``: the low and high 32 bits of the stream key ``sb``."""
    sb = np.uint64(sb)
    return np.uint32(sb & _LOW32), np.uint32(sb >> _S32)


@serial_kernel
def high_key(k1, hi):
    """``R(hi ^ k1)``: the replicate's constant for counters whose high 32 bits are ``hi``."""
    return round32(np.uint32(np.uint32(hi) ^ k1))


@serial_kernel
def uniform32(k0, kh, lo):
    """``R(R(lo ^ k0) ^ kh)``: the 32 uniform bits of a counter (``kh`` from :func:`high_key`)."""
    return round32(np.uint32(round32(np.uint32(np.uint32(lo) ^ k0)) ^ kh))


@serial_kernel
def counter_uniform(sb, c):
    """``u(sb, c)`` for a 64-bit counter ``c`` (scalar reference of the loops below)."""
    k0, k1 = stream_words(sb)
    c = np.uint64(c)
    return uniform32(k0, high_key(k1, np.uint32(c >> _S32)), np.uint32(c & _LOW32))


@serial_kernel
def poisson1_u32(u):
    """Poisson(1) variate from 32 uniform bits (``u`` a uint32), branch-free: all twelve thresholds."""
    return np.int32(
        np.int32(u >= _T0) + np.int32(u >= _T1) + np.int32(u >= _T2) + np.int32(u >= _T3)
        + np.int32(u >= _T4) + np.int32(u >= _T5) + np.int32(u >= _T6) + np.int32(u >= _T7)
        + np.int32(u >= _T8) + np.int32(u >= _T9) + np.int32(u >= _T10) + np.int32(u >= _T11)
    )


@serial_kernel
def poisson1_head(s):
    """:func:`poisson1_u32` of ``u = s ^ 0x80000000`` for ``u < T[6]`` (all but 8.3e-5 of draws).

    ``s`` is the int32 ``u ^ 0x80000000``: six signed compares, one AVX2
    instruction each (unsigned ones take two).
    """
    return np.int32(
        np.int32(s >= _F0) + np.int32(s >= _F1) + np.int32(s >= _F2) + np.int32(s >= _F3)
        + np.int32(s >= _F4) + np.int32(s >= _F5)
    )


@serial_kernel
def poisson1_flipped(s):
    """:func:`poisson1_u32` of ``u = s ^ 0x80000000``, all twelve thresholds, as signed compares."""
    return np.int32(
        np.int32(s >= _F0) + np.int32(s >= _F1) + np.int32(s >= _F2) + np.int32(s >= _F3)
        + np.int32(s >= _F4) + np.int32(s >= _F5) + np.int32(s >= _F6) + np.int32(s >= _F7)
        + np.int32(s >= _F8) + np.int32(s >= _F9) + np.int32(s >= _F10) + np.int32(s >= _F11)
    )


@serial_kernel
def sign_flip(out):
    """``0x80000000``, computed so that LLVM cannot see it is a constant.

    Given ``(u ^ 0x80000000) >= t`` with a known constant, LLVM folds the
    flip and the signed compare back into an unsigned compare, which AVX2
    lacks (it takes max + equal per threshold); an opaque flip keeps one
    shared xor and one signed compare per threshold.  The value is
    0x80000000 for any array (a length is never negative), so the weights do
    not depend on this.
    """
    return np.uint32(np.uint32(np.uint32(np.uint64(out.shape[0]) >> np.uint64(63)) ^ np.uint32(1)) << np.uint32(31))


@serial_kernel
def _rows_head(k0, kh, c0, out):
    # weights of counters c0, c0 + 1, ... (u32, no wrap: the caller splits at 2**32) with six
    # compares; returns the largest u (does the block need the full count?) and the weights' sum.
    # 32-bit lanes throughout: LLVM vectorizes this loop 8 rows to an AVX2 instruction.
    flip = sign_flip(out)
    top = np.int32(-2147483648)
    tot = np.int32(0)
    for i in range(out.shape[0]):
        u = uniform32(k0, kh, np.uint32(c0 + np.uint32(i)))
        sv = np.int32(u ^ flip)
        w = poisson1_head(sv)
        out[i] = w
        tot = np.int32(tot + w)
        top = max(top, sv)
    return top, tot


@serial_kernel
def _rows_full(k0, kh, c0, out):
    tot = np.int32(0)
    for i in range(out.shape[0]):
        w = poisson1_u32(uniform32(k0, kh, np.uint32(c0 + np.uint32(i))))
        out[i] = w
        tot = np.int32(tot + w)
    return tot


@serial_kernel
def rows_weights_u32(k0, kh, c0, out):
    """Weights of counters ``c0 .. c0 + len(out) - 1`` (low words; ``kh`` their high-word key).

    Returns their sum.  ``out`` may be int32 or float64.
    """
    m = out.shape[0]
    total = 0
    for s in range(0, m, WEIGHT_BLOCK):
        e = min(m, s + WEIGHT_BLOCK)
        blk = out[s:e]
        c = np.uint32(c0 + np.uint32(s))
        top, tot = _rows_head(k0, kh, c, blk)
        if top >= _F6:
            tot = _rows_full(k0, kh, c, blk)
        total += tot
    return total


@serial_kernel
def row_weights_into(sb, g0, n, out, hbuf):
    """Weights of rows ``g0 .. g0 + n - 1`` for the replicate keyed ``sb`` into ``out[:n]``; returns their sum.

    ``out`` is int32 (float64 works too).  ``hbuf`` is unused (kept for the
    callers: scheme v1 needed a uint64 scratch buffer).
    """
    total = 0
    if n <= 0:
        return total
    k0, k1 = stream_words(sb)
    i = 0
    while i < n:
        g = np.uint64(g0) + np.uint64(i)
        hi = g >> _S32
        lo = g & _LOW32
        # the counters' low words must not wrap inside one call of rows_weights_u32
        seg = min(np.int64(n - i), np.int64(np.uint64(4294967296) - lo))
        total += rows_weights_u32(k0, high_key(k1, np.uint32(hi)), np.uint32(lo), out[i:i + seg])
        i += seg
    return total


@serial_kernel
def _keys_head(k0, k1, keys, out):
    flip = sign_flip(out)
    top = np.int32(-2147483648)
    tot = np.int32(0)
    for i in range(out.shape[0]):
        c = np.uint64(keys[i])
        kh = round32(np.uint32(np.uint32(c >> _S32) ^ k1))
        u = uniform32(k0, kh, np.uint32(c & _LOW32))
        sv = np.int32(u ^ flip)
        w = poisson1_head(sv)
        out[i] = w
        tot = np.int32(tot + w)
        top = max(top, sv)
    return top, tot


@serial_kernel
def _keys_full(k0, k1, keys, out):
    tot = np.int32(0)
    for i in range(out.shape[0]):
        c = np.uint64(keys[i])
        kh = round32(np.uint32(np.uint32(c >> _S32) ^ k1))
        w = poisson1_u32(uniform32(k0, kh, np.uint32(c & _LOW32)))
        out[i] = w
        tot = np.int32(tot + w)
    return tot


@serial_kernel
def key_weights_into(sb, keys, lo, hi, out):
    """Weights of the rows with 64-bit keys ``keys[lo:hi]`` (cluster bootstrap), into ``out``; returns their sum.

    Any integer ``keys`` work: they are read as 64-bit counters (a row index is
    a key too: ``key_weights_into`` of row indices equals ``row_weights_into``).
    """
    k0, k1 = stream_words(sb)
    m = hi - lo
    total = 0
    for s in range(0, m, WEIGHT_BLOCK):
        e = min(m, s + WEIGHT_BLOCK)
        kk = keys[lo + s:lo + e]
        blk = out[s:e]
        top, tot = _keys_head(k0, k1, kk, blk)
        if top >= _F6:
            tot = _keys_full(k0, k1, kk, blk)
        total += tot
    return total


@serial_kernel
def _index_head(k0, kh, idx, out):
    flip = sign_flip(out)
    top = np.int32(-2147483648)
    tot = np.int32(0)
    for i in range(out.shape[0]):
        u = uniform32(k0, kh, np.uint32(idx[i]))
        sv = np.int32(u ^ flip)
        w = poisson1_head(sv)
        out[i] = w
        tot = np.int32(tot + w)
        top = max(top, sv)
    return top, tot


@serial_kernel
def _index_full(k0, kh, idx, out):
    tot = np.int32(0)
    for i in range(out.shape[0]):
        w = poisson1_u32(uniform32(k0, kh, np.uint32(idx[i])))
        out[i] = w
        tot = np.int32(tot + w)
    return tot


@serial_kernel
def index_weights_into(sb, idx, out):
    """Weights of the rows with global indices ``idx`` (each in ``0 .. 2**32 - 1``), in that order.

    The same weights as :func:`row_weights_into` (and :func:`key_weights_into`
    of the indices), in any order: sorted passes draw them in sorted order
    without a gather.  Returns their sum.
    """
    k0, k1 = stream_words(sb)
    kh = high_key(k1, np.uint32(0))
    m = out.shape[0]
    total = 0
    for s in range(0, m, WEIGHT_BLOCK):
        e = min(m, s + WEIGHT_BLOCK)
        ii = idx[s:e]
        blk = out[s:e]
        top, tot = _index_head(k0, kh, ii, blk)
        if top >= _F6:
            tot = _index_full(k0, kh, ii, blk)
        total += tot
    return total


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
            row_weights_into(sb, g0, m, buf, buf)
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
