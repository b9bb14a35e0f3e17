"""Modern online experiments: sequential tests that allow peeking, and power analysis.

Public names (re-exported by ``fastevals``): :func:`power`, :func:`sample_size`,
:func:`group_sequential_bounds`, :func:`sequential_test`, :class:`SequentialState`,
:func:`simulate_peeking` and their results. docs/experiments.md has the formulas.
"""

from .bounds import GroupSequentialBounds, group_sequential_bounds
from .peeking import PeekingResult, simulate_peeking
from .power import PowerResult, SampleSizeResult, power, sample_size
from .sequential import SequentialResult, SequentialState, sequential_test

__all__ = ["power", "sample_size", "PowerResult", "SampleSizeResult", "group_sequential_bounds",
           "GroupSequentialBounds", "sequential_test", "SequentialState", "SequentialResult", "simulate_peeking",
           "PeekingResult"]


def warmup(parallel: bool = True) -> None:
    """Compile (or load from numba's cache) the sequential tests' and the peeking simulation's kernels.

    Parameters
    ----------
    parallel : bool
        Also the parallel twin of the peeking simulation.
    """
    import numpy as np

    day = np.repeat(np.arange(2), 20)
    sequential_test({"day": day, "g": np.array(["a", "b"] * 20), "y": np.linspace(0.0, 1.0, 40)},
                    group="g", value="y", control="a")
    simulate_peeking(n_experiments=4, n_looks=2, n_per_look=4, seed=0)
