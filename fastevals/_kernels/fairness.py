"""Robustness kernels: counter-based perturbations of feature rows.

(Fairness needs no kernel of its own: its state is counts, and a replicate's count of a cell is
one Poisson draw, :func:`fastevals._kernels.poisson.poisson_cell_counts`.)

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

from .._config import parallel_kernel, serial_kernel
from .poisson import GOLDEN, mix

_S11 = np.uint64(11)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0


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
