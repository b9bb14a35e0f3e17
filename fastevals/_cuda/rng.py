"""Counter-based random numbers on the device, bit for bit those of the CPU kernels.

* splitmix64's finalizer :func:`mix64` (Steele, Lea & Flood 2014) and the
  streams built from it by :mod:`fastevals._kernels.patefield` and
  :mod:`fastevals._kernels.bandits`.
* The Poisson(1) bootstrap weights of :mod:`fastevals._kernels.poisson`
  (scheme v3): :func:`row_keys`, :func:`row_hash`, :func:`replicate_word` and
  :func:`weight` are the only functions the bootstrap kernels call, so the
  weight scheme is swapped here and nowhere else.

Weight scheme v3.  With ``rk = mix64(mix64(seed))`` (the row key) and
``qk = mix64(rk)`` (the replicate key), ``U(K, c) = R(R(lo32(c) ^ lo32(K)) ^
R(hi32(c) ^ hi32(K)))`` with the 32-bit round ``R`` (xorshift-multiply, two
multiplies).  A row's hash is ``h(c) = U(rk, c)`` (``c`` its global index or
its cluster's 64-bit key), replicate ``b``'s word ``k(b) = U(qk, b)``, and the
weight is the number of the thresholds ``T[k] = round(2**32 P(X <= k))``,
k = 0..11, that ``R(h(c) ^ k(b))`` reaches.  A thread that folds a row into
several replicates hashes the row once.

All arithmetic is on uint64 (or uint32) values cast explicitly: numba types a
mix of signed and unsigned 64-bit integers as float64.
"""

from __future__ import annotations

import numpy as np

from ._jit import device

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@device
def mix64(z):
    """splitmix64 finalizer of a uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@device
def to_unit(z):
    """The top 53 bits of a uint64 as a double in [0, 1)."""
    return np.float64(z >> _S11) * _INV53


# ------------------------------------------------------------------------------------------------
# Poisson(1) bootstrap weights, scheme v2

_R1 = np.uint32(0x21F0AAAD)
_R2 = np.uint32(0x735A2D97)
_U16 = np.uint32(16)
_U15 = np.uint32(15)

# round(2**32 * P(X <= k)) for X ~ Poisson(1), k = 0..11 (the tests recompute them with scipy)
_T0 = np.uint32(1580030169)
_T1 = np.uint32(3160060337)
_T2 = np.uint32(3950075422)
_T3 = np.uint32(4213413783)
_T4 = np.uint32(4279248374)
_T5 = np.uint32(4292415292)
_T6 = np.uint32(4294609778)
_T7 = np.uint32(4294923276)
_T8 = np.uint32(4294962463)
_T9 = np.uint32(4294966817)
_T10 = np.uint32(4294967253)
_T11 = np.uint32(4294967292)


@device
def round32(x):
    """The 32-bit round R (a bijection of uint32): each result truncated to 32 bits."""
    x = np.uint32(x ^ (x >> _U16))
    x = np.uint32(x * _R1)
    x = np.uint32(x ^ (x >> _U15))
    x = np.uint32(x * _R2)
    return np.uint32(x ^ (x >> _U15))


@device
def poisson1(u):
    """Poisson(1) weight of 32 uniform bits: how many thresholds ``u`` reaches (0..12)."""
    return (
        np.int32(u >= _T0) + np.int32(u >= _T1) + np.int32(u >= _T2) + np.int32(u >= _T3)
        + np.int32(u >= _T4) + np.int32(u >= _T5) + np.int32(u >= _T6) + np.int32(u >= _T7)
        + np.int32(u >= _T8) + np.int32(u >= _T9) + np.int32(u >= _T10) + np.int32(u >= _T11)
    )


@device
def poisson1_fast(u):
    """:func:`poisson1` with six compares: ``u`` reaches a threshold above the sixth with
    probability 6e-4, and only then are the other six compared (a branch rarely taken)."""
    w = (np.int32(u >= _T0) + np.int32(u >= _T1) + np.int32(u >= _T2) + np.int32(u >= _T3)
         + np.int32(u >= _T4) + np.int32(u >= _T5))
    if u >= _T5:
        w += (np.int32(u >= _T6) + np.int32(u >= _T7) + np.int32(u >= _T8) + np.int32(u >= _T9)
              + np.int32(u >= _T10) + np.int32(u >= _T11))
    return w


@device
def key_words(key):
    """(k0, k1, K1 = R(k1)) of a 64-bit key: its low and high halves, and U's constant for counters below 2**32."""
    k0 = np.uint32(key & _LOW32)
    k1 = np.uint32(key >> _S32)
    return k0, k1, round32(k1)


@device
def counter_bits(c, k0, k1, K1):
    """``U(K, c)`` for the uint64 counter ``c`` and the key words (k0, k1, K1) of :func:`key_words`."""
    lo = np.uint32(c & _LOW32)
    hi = np.uint32(c >> _S32)
    h1 = K1 if hi == 0 else round32(np.uint32(hi ^ k1))
    return round32(np.uint32(round32(np.uint32(lo ^ k0)) ^ h1))


@device
def row_keys(seed):
    """Key words (r0, r1, R1) of the row key ``rk = mix64(mix64(seed))``, for :func:`row_hash`."""
    return key_words(mix64(mix64(seed)))


@device
def replicate_word(seed, b):
    """``k(b) = U(qk, b)``, ``qk = mix64(mix64(mix64(seed)))``: the 32-bit word of replicate ``b``."""
    q0, q1, Q1 = key_words(mix64(mix64(mix64(seed))))
    return counter_bits(np.uint64(b), q0, q1, Q1)


@device
def row_hash(c, r0, r1, R1):
    """``h(c) = U(rk, c)``: the hash of a row keyed by ``c`` (its global index, or its cluster's
    uint64 key), from the words of :func:`row_keys`."""
    return counter_bits(np.uint64(c), r0, r1, R1)


@device
def weight(h, kb):
    """Poisson(1) weight of the row with hash ``h`` in the replicate with word ``kb``."""
    return poisson1_fast(round32(np.uint32(h ^ kb)))
