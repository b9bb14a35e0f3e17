"""Counter-based Poisson weights: the random numbers of the Poisson bootstrap.

Replicate ``b`` gives the row with key ``c`` the weight::

    w(seed, b, c) = Poisson1(R(h(c) ^ k(b)))

computed from nothing but those three integers, so the weight is the same on
any thread count, batch size, file split or device; nothing is stored.  The
row's hash ``h(c)`` does not depend on the replicate, so a kernel computes it
once per row and pays one 32-bit round per weight (scheme v3; v2 paid two).

The scheme (v3), bit for bit
----------------------------
All arithmetic is unsigned and wraps (mod 2**64 for u64, mod 2**32 for u32);
``>>`` is a logical shift, ``lo32(z) = z & 0xFFFFFFFF``, ``hi32(z) = z >> 32``.

1. ``mix64`` is the splitmix64 finalizer (Steele, Lea & Flood 2014; Stafford's
   "Mix13" constants)::

       z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
       z = (z ^ (z >> 27)) * 0x94D049BB133111EB
       mix64(z) = z ^ (z >> 31)

2. ``R`` is a 32-bit multiply-xorshift round, a bijection of u32 (constants
   from Wellons' hash-prospector search, low avalanche bias)::

       x = x ^ (x >> 16);  x = x * 0x21F0AAAD   (u32 product, low 32 bits)
       x = x ^ (x >> 15);  x = x * 0x735A2D97
       R(x) = x ^ (x >> 15)

3. ``U(K, c)``, 32 bits from a 64-bit key ``K`` and a 64-bit counter ``c``::

       U(K, c) = R( R(lo32(c) ^ lo32(K)) ^ R(hi32(c) ^ hi32(K)) )

   For a fixed ``K`` and counters below 2**32 it is a bijection (the second
   round is a per-key constant, ``R(hi32(K))``).

4. Two 64-bit keys per seed (``seed`` a u64)::

       rk = mix64(mix64(seed))      the row key
       qk = mix64(rk)               the replicate key

5. The row hash ``h(c) = U(rk, c)`` and the replicate word ``k(b) = U(qk, b)``.
   Row keys come in two kinds:

   * ``row``: ``c`` is the global index of the row (distinct rows below 2**32
     have distinct hashes);
   * ``key``: a 64-bit key (a hashed cluster / unit id, see
     :func:`hash_keys_int`, :func:`hash_keys_bytes`), both halves used.  Two
     keys whose 32-bit hashes coincide (probability 2**-32 a pair) share their
     weights in every replicate.

   Replicates ``0 .. 2**32 - 1`` have distinct words: no two replicates
   repeat each other.

6. Poisson(1) from ``u = R(h(c) ^ k(b))``: with the integer thresholds
   ``T[k] = round(2**32 * P(X <= k))``, ``k = 0..11`` (:data:`THRESHOLDS`),
   the weight is the number of thresholds ``u`` reaches (unsigned compare),
   ``w = #{k : u >= T[k]}``.  Each probability is then exact to within
   ``2**-32`` (2.3e-10); weights above 12 (true probability 6e-11) are not
   drawn.  The CPU kernels compare with ``T[0..5]`` only and redo, with all
   twelve, the rare 256-row blocks where some ``u >= T[6]`` (probability
   8.3e-5 a row): the result is always the full count.

Cost: per weight one round (two 32-bit multiplies, eight rows to an AVX2
instruction) and six compares; per row and block of replicates, the row
hash (two rounds).  Scheme v2 hashed ``(b, c)`` together, ``R(R(lo32(c) ^
k0(b)) ^ K1(b))``: two rounds a weight; measured against it, v3's weight loop
is ~1.4x and the bootstrap kernel 1.2-1.3x faster (docs/bootstrap.md).
The round's first step, ``x ^ (x >> 16)``, distributes over xor, so the
kernels keep row hashes and replicate words premixed (:func:`premix`) and pay
only the rest of the round a weight (:func:`round32_tail`): 23 AVX2
instructions per 8 weights instead of 25, the weight loop 1.06-1.08x faster,
the same weights.

Poisson(lambda) for the sufficient-statistics shortcut
------------------------------------------------------
The sum of ``n`` independent Poisson(1) weights is Poisson(n): a categorical
metric needs one draw per (replicate, cell) instead of one per row.  Those
draws are counter-based too: with the replicate's stream key
``sb = stream_key(seed, b) = mix64(mix64(seed) + (b + 1) * GOLDEN)`` (a
splitmix64 sequence seeded by ``mix64(seed)``) and
``s = sb ^ mix64(cell_key + GOLDEN)``, the
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
    """The 64-bit stream key of replicate ``b`` under ``seed`` (the Poisson(lambda) draws' key)."""
    return mix(mix(np.uint64(seed)) + (np.uint64(b) + _ONE) * GOLDEN)


@serial_kernel
def premix(x):
    """``x ^ (x >> 16)``, the first step of ``R``.  It distributes over xor, so
    ``R(h ^ k) = round32_tail(premix(h) ^ premix(k))``: the weight loops take rows' hashes and
    replicate words premixed once, and pay the rest of the round per weight."""
    x = np.uint32(x)
    return np.uint32(x ^ (x >> _R16))


@serial_kernel
def round32_tail(x):
    """``R`` after its first step: ``round32(x) == round32_tail(premix(x))``.

    Every step is cut back to 32 bits: numba widens integer arithmetic to 64
    bits, and the truncations let LLVM use 32-bit vector multiplies.
    """
    x = np.uint32(x)
    x = np.uint32(x * _R1)
    x = np.uint32(x ^ (x >> _R15))
    x = np.uint32(x * _R2)
    return np.uint32(x ^ (x >> _R15))


@serial_kernel
def round32(x):
    """The 32-bit multiply-xorshift round ``R`` (a bijection of uint32)."""
    return round32_tail(premix(x))


@serial_kernel
def stream_words(sb):
    """``(k0, k1)``: the low and high 32 bits of a 64-bit key."""
    sb = np.uint64(sb)
    return np.uint32(sb & _LOW32), np.uint32(sb >> _S32)


@serial_kernel
def high_key(k1, hi):
    """``R(hi ^ k1)``: the constant half of ``U`` for counters whose high 32 bits are ``hi``."""
    return round32(np.uint32(np.uint32(hi) ^ k1))


@serial_kernel
def uniform32(k0, kh, lo):
    """``R(R(lo ^ k0) ^ kh)``: ``U`` of a counter with low word ``lo`` (``kh`` from :func:`high_key`)."""
    return round32(np.uint32(round32(np.uint32(np.uint32(lo) ^ k0)) ^ kh))


@serial_kernel
def counter_uniform(key, c):
    """``U(key, c)`` for a 64-bit key and a 64-bit counter ``c`` (step 3 of the scheme)."""
    k0, k1 = stream_words(key)
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
def scheme_keys(seed):
    """``(rk, qk)``: the row key and the replicate key of ``seed`` (step 4 of the scheme)."""
    rk = mix(mix(np.uint64(seed)))
    return rk, mix(rk)


@serial_kernel
def replicate_word(qk, b):
    """``k(b) = U(qk, b)``: the 32-bit word of replicate ``b`` (``qk`` from :func:`scheme_keys`)."""
    return counter_uniform(qk, np.uint64(b))


@serial_kernel
def weight_key(qk, b):
    """``premix(k(b))``: replicate ``b``'s word as :func:`hashed_weights_into` takes it."""
    return premix(replicate_word(qk, b))


@serial_kernel
def _hash_run(k0, kh, c0, out):
    # out[i] = premix(R(R((c0 + i) ^ k0) ^ kh)) for u32 counters that do not wrap (the caller
    # splits at 2**32)
    for i in range(out.shape[0]):
        out[i] = premix(uniform32(k0, kh, np.uint32(c0 + np.uint32(i))))


@serial_kernel
def row_hashes_into(rk, g0, n, out):
    """``out[i] = premix(h(g0 + i))``: the premixed hashes of rows ``g0 .. g0 + n - 1`` into the
    uint32 ``out[:n]`` (what :func:`hashed_weights_into` takes)."""
    if n <= 0:
        return
    k0, k1 = stream_words(rk)
    i = 0
    while i < n:
        g = np.uint64(g0) + np.uint64(i)
        hi = g >> _S32
        lo = g & _LOW32
        # the counters' low words must not wrap inside one run
        seg = min(np.int64(n - i), np.int64(np.uint64(4294967296) - lo))
        _hash_run(k0, high_key(k1, np.uint32(hi)), np.uint32(lo), out[i:i + seg])
        i += seg


@serial_kernel
def key_hashes_into(rk, keys, lo, hi, out):
    """``out[i] = premix(h(keys[lo + i]))`` for ``i < hi - lo``: premixed hashes of 64-bit keys
    (any integer dtype, read as uint64; a row index is a key too, so the hashes of row indices
    are those of :func:`row_hashes_into`)."""
    k0, k1 = stream_words(rk)
    for i in range(hi - lo):
        c = np.uint64(keys[lo + i])
        out[i] = premix(uniform32(k0, round32(np.uint32(np.uint32(c >> _S32) ^ k1)), np.uint32(c & _LOW32)))


@serial_kernel
def _hashed_head(kb, h, out):
    # weights of (premixed) hashes h with six compares; returns the largest flipped u (does the
    # block need the full count?) and the weights' sum. 32-bit lanes throughout: 8 rows an AVX2
    # instruction.
    flip = sign_flip(out)
    top = np.int32(-2147483648)
    tot = np.int32(0)
    for i in range(out.shape[0]):
        sv = np.int32(round32_tail(np.uint32(h[i] ^ kb)) ^ flip)
        w = poisson1_head(sv)
        out[i] = w
        tot = np.int32(tot + w)
        top = max(top, sv)
    return top, tot


@serial_kernel
def _hashed_full(kb, h, out):
    tot = np.int32(0)
    for i in range(out.shape[0]):
        w = poisson1_u32(round32_tail(np.uint32(h[i] ^ kb)))
        out[i] = w
        tot = np.int32(tot + w)
    return tot


@serial_kernel
def hashed_weights_into(kb, h, out):
    """Weights of the rows with premixed hashes ``h`` (:func:`row_hashes_into`,
    :func:`key_hashes_into`) in the replicate with premixed word ``kb`` (:func:`weight_key`), into
    ``out[:len(h)]``: ``Poisson1(R(h(c) ^ k(b)))``, one :func:`round32_tail` a weight.

    Returns their sum.  ``out`` may be int32 or float64.
    """
    m = h.shape[0]
    total = 0
    for s in range(0, m, WEIGHT_BLOCK):
        e = min(m, s + WEIGHT_BLOCK)
        hb = h[s:e]
        blk = out[s:e]
        top, tot = _hashed_head(kb, hb, blk)
        if top >= _F6:
            tot = _hashed_full(kb, hb, blk)
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
    rk, qk = scheme_keys(seed)
    h = np.empty(m, dtype=np.uint32)
    if use_keys:
        key_hashes_into(rk, keys, 0, m, h)
    else:
        row_hashes_into(rk, g0, m, h)
    out = np.empty((n_rep, m), dtype=np.uint8)
    for r in prange(n_rep):
        buf = np.empty(m, dtype=np.int32)
        hashed_weights_into(weight_key(qk, b0 + r), h, buf)
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
