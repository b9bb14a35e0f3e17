"""The A/A peeking simulation: many experiments, many looks, one pass each.

Experiment ``e`` has two arms with ``N(0, 1)`` rows (treatment: ``N(effect, 1)``); at each look ``n``
new rows per arm arrive. Every method here tests the difference of the cumulative means with a known
unit variance, which depends only on ``D_k = S_treatment - S_control``; a look's increment of ``D`` is
exactly ``N(n * effect, 2n)``, drawn as ``sqrt(2n) Z + n * effect``, so the cost depends on neither
``n`` nor the number of arms. Looks ``2j`` and ``2j + 1`` take the two normals of one Box-Muller pair
of counter-based uniforms::

    c = e * ceil(n_looks / 2) + j
    a = mix64(key + (2c + 1) * GOLDEN),  b = mix64(key + (2c + 2) * GOLDEN)    (u64, wrapping)
    u1 = ((a >> 11) + 1) * 2**-53   in (0, 1]
    u2 = (b >> 11) * 2**-53         in [0, 1)
    Z_{2j} = sqrt(-2 log u1) cos(2 pi u2),  Z_{2j+1} = sqrt(-2 log u1) sin(2 pi u2)

with ``key = mix64(seed)`` and ``mix64`` the splitmix64 finalizer, so every experiment's numbers
are the same on any thread count (tests/test_experiments.py recomputes them in NumPy).

After each look ``z_k = D_k / sqrt(2 n (k + 1))`` is compared with each method's boundary for that
look; ``stop[e, m]`` is the first look (0-based) where method ``m`` rejects, or -1.

Contract: key u64, n_experiments, n_looks, n_per_look ints, effect float, bounds (n_methods,
n_looks) float64 -> stop (n_experiments, n_methods) int32, z_last (n_experiments,) float64.
"""

import math

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel
from .._rng import mix64_array
from .poisson import GOLDEN
from .poisson import mix as mix64  # splitmix64: one jitted source (fastevals._rng)

_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
_TWO_PI = 2.0 * math.pi


@serial_kernel
def _normal_pair(key, c):
    a = mix64(key + (_TWO * c + _ONE) * GOLDEN)
    b = mix64(key + (_TWO * c + _TWO) * GOLDEN)
    u1 = (np.float64(a >> _S11) + 1.0) * _INV53
    u2 = np.float64(b >> _S11) * _INV53
    r = math.sqrt(-2.0 * math.log(u1))
    return r * math.cos(_TWO_PI * u2), r * math.sin(_TWO_PI * u2)


@serial_kernel
def _look(e, k, d, n_per_look, bounds, stop):
    z = d / math.sqrt(2.0 * n_per_look * (k + 1))
    a = abs(z)
    for m in range(bounds.shape[0]):
        if stop[e, m] < 0 and a >= bounds[m, k]:
            stop[e, m] = k
    return z


@serial_kernel
def _experiment(e, key, n_looks, n_per_look, effect, bounds, stop, z_last):
    root = math.sqrt(2.0 * n_per_look)
    shift = n_per_look * effect
    d = 0.0
    z = 0.0
    for m in range(bounds.shape[0]):
        stop[e, m] = -1
    pairs = (n_looks + 1) // 2
    base = np.uint64(e) * np.uint64(pairs)
    for j in range(pairs):
        z0, z1 = _normal_pair(key, base + np.uint64(j))
        d += root * z0 + shift
        z = _look(e, 2 * j, d, n_per_look, bounds, stop)
        if 2 * j + 1 < n_looks:
            d += root * z1 + shift
            z = _look(e, 2 * j + 1, d, n_per_look, bounds, stop)
    z_last[e] = z


@serial_kernel
def peeking_serial(key, n_experiments, n_looks, n_per_look, effect, bounds):
    stop = np.empty((n_experiments, bounds.shape[0]), dtype=np.int32)
    z_last = np.empty(n_experiments, dtype=np.float64)
    for e in range(n_experiments):
        _experiment(e, key, n_looks, n_per_look, effect, bounds, stop, z_last)
    return stop, z_last


@parallel_kernel
def peeking_parallel(key, n_experiments, n_looks, n_per_look, effect, bounds):
    stop = np.empty((n_experiments, bounds.shape[0]), dtype=np.int32)
    z_last = np.empty(n_experiments, dtype=np.float64)
    for e in prange(n_experiments):
        _experiment(e, key, n_looks, n_per_look, effect, bounds, stop, z_last)
    return stop, z_last


def simulation_key(seed: int) -> np.uint64:
    """The simulation's 64-bit key: ``mix64(seed)`` (computed in NumPy, no compile)."""
    return mix64_array(np.array([seed], dtype=np.uint64))[0]
