"""splitmix64 is written once per target: the host's fastevals._rng and the CPU kernels'
fastevals._kernels.poisson.mix compute the same function (the CUDA twin, fastevals._cuda.rng, is
checked against the CPU kernels' draws in tests/test_cuda.py)."""

import numpy as np

from fastevals import _rng
from fastevals._kernels import poisson as kp


def _reference(z: int) -> int:
    """splitmix64's finalizer from its published constants (Steele, Lea & Flood 2014), in Python ints."""
    m = (1 << 64) - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def test_host_kernel_and_reference_agree():
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.integers(0, 2**63, 200, dtype=np.uint64) * np.uint64(2) + np.uint64(1),
                             np.array([0, 1, 2**64 - 1, 2**63], dtype=np.uint64)])
    host = _rng.mix64_array(values)
    for v, h in zip(values.tolist(), host.tolist()):
        assert _rng.mix64(v) == _reference(v) == h == int(kp.mix(np.uint64(v)))


def test_derive_seed_is_distinct_per_purpose_and_matches_its_formula():
    keys = [int(_rng.derive_seed(123, p)) for p in range(50)]
    assert len(set(keys)) == 50
    assert keys[2] == _reference((123 + _rng.GOLDEN * 3) & ((1 << 64) - 1))
