"""The counter-based random numbers' host side: splitmix64 and seed derivation, once.

Every random number in fastevals is a hash of integers (the seed, a replicate, a row, a run,
a step...) through the splitmix64 finalizer (Steele, Lea & Flood 2014), so results do not
depend on threads, batches, partitions or devices. One source of truth per target:

* host (Python / NumPy): this module (:func:`mix64`, :func:`mix64_array`, :func:`derive_seed`);
* CPU kernels: ``fastevals._kernels.poisson.mix`` (numba), imported by every kernel module that
  draws (bootstrap weights, Patefield tables, bandits, the peeking simulation);
* CUDA kernels: ``fastevals._cuda.rng.mix64``.

The three compute the same function bit for bit (``tests/test_rng.py`` checks it).
"""

from __future__ import annotations

import numpy as np

#: the golden-ratio Weyl increment, 2**64 / phi
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK = 0xFFFFFFFFFFFFFFFF


def mix64(z: int) -> int:
    """The splitmix64 finalizer of a 64-bit integer (Python ints; wraps mod 2**64).

    Parameters
    ----------
    z : int
        Any integer; only its low 64 bits are used.

    Returns
    -------
    int
        A 64-bit integer; a bijection of the low 64 bits of ``z`` with full avalanche.

    Examples
    --------
    >>> mix64(0)
    0
    >>> hex(mix64(1))
    '0x5692161d100b05e5'
    """
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def mix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`mix64` of every element of a uint64 array (NumPy, no compile).

    Parameters
    ----------
    z : numpy.ndarray
        Unsigned 64-bit integers.

    Returns
    -------
    numpy.ndarray
        ``mix64`` of each, uint64.

    Examples
    --------
    >>> import numpy as np
    >>> mix64_array(np.array([0, 1], dtype=np.uint64)).tolist() == [mix64(0), mix64(1)]
    True
    """
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
        return z ^ (z >> np.uint64(31))


def derive_seed(seed: int, purpose: int) -> np.uint64:
    """A 64-bit key for one use (``purpose``) of a user's seed: ``mix64(seed + GOLDEN (purpose + 1))``.

    Parameters
    ----------
    seed : int
        The user's seed (already checked, >= 0).
    purpose : int
        Which stream: 0, 1, 2... (e.g. rewards and the policy's own draws of a simulation).

    Returns
    -------
    numpy.uint64

    Examples
    --------
    >>> bool(derive_seed(7, 0) != derive_seed(7, 1))
    True
    """
    return np.uint64(mix64(seed + GOLDEN * (purpose + 1)))
