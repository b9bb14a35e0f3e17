"""Counter-based random numbers on the device, bit for bit those of the CPU kernels.

* splitmix64's finalizer :func:`mix64` (Steele, Lea & Flood 2014) and the
  streams built from it by :mod:`fastevals._kernels.patefield` and
  :mod:`fastevals._kernels.bandits`.
* The Poisson(1) bootstrap weights of :mod:`fastevals._kernels.poisson`
  (scheme v2, "32-bit row hash"): :func:`stream_key`, :func:`replicate_keys`,
  :func:`row_weight` and :func:`key_weight` are the only functions the
  bootstrap kernels call, so the weight scheme is swapped here and nowhere else.

Weight scheme v2.  ``sb = mix64(mix64(seed) + (b + 1) * GOLDEN)`` keys
replicate ``b``; ``k0, k1`` are its low and high 32 bits.  The 32 uniform bits
of counter ``c`` (the global row index, or a cluster's 64-bit key) are
``u = R(R(lo32(c) ^ k0) ^ R(hi32(c) ^ k1))`` with the 32-bit round ``R``
(xorshift-multiply, two multiplies); for rows below 2**32 the second half is
the per-replicate constant ``K1 = R(k1)``.  The weight is the number of the
thresholds ``T[k] = round(2**32 P(X <= k))``, k = 0..11, that ``u`` reaches.

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
_ONE = np.uint64(1)
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
def stream_key(seed, b):
    """uint64 key of replicate ``b`` (an integer) under ``seed`` (a uint64)."""
    return mix64(mix64(seed) + (np.uint64(b) + _ONE) * GOLDEN)


@device
def round32(x):
    """The 32-bit round R (a bijection of uint32): each result truncated to 32 bits."""
    x = np.uint32(x ^ (x >> _U16))
    x = np.uint32(x * _R1)
    x = np.uint32(x ^ (x >> _U15))
    x = np.uint32(x * _R2)
    return np.uint32(x ^ (x >> _U15))


@device
def replicate_keys(seed, b):
    """(k0, k1, K1 = R(k1)) of replicate ``b``: the low and high halves of its stream key."""
    sb = stream_key(seed, b)
    k0 = np.uint32(sb & _LOW32)
    k1 = np.uint32(sb >> _S32)
    return k0, k1, round32(k1)


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
def counter_bits(c, k0, k1, K1):
    """The 32 uniform bits of the uint64 counter ``c`` in the replicate keyed (k0, k1, K1 = R(k1))."""
    lo = np.uint32(c & _LOW32)
    hi = np.uint32(c >> _S32)
    h1 = K1 if hi == 0 else round32(np.uint32(hi ^ k1))
    return round32(np.uint32(round32(np.uint32(lo ^ k0)) ^ h1))


@device
def row_weight(g, k0, k1, K1):
    """Weight of the row with global index ``g`` (an integer >= 0)."""
    return poisson1_fast(counter_bits(np.uint64(g), k0, k1, K1))


@device
def key_weight(key, k0, k1, K1):
    """Weight of a row whose cluster has the 64-bit key ``key`` (a uint64)."""
    return poisson1_fast(counter_bits(key, k0, k1, K1))
