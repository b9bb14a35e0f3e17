"""Fairness with uncertainty, and robustness to perturbed inputs (the seed's model properties).

``fairness``: group rates and disparities (demographic parity, equal opportunity, equalized
odds) with Poisson-bootstrap intervals and G-tests, one compiled pass, mergeable.
``robustness``: epsilon-robustness of a model to delta-perturbations of its inputs.
"""

from .api import fairness
from .result import FairnessResult
from .robustness import RobustnessResult, robustness
from .state import FairnessState

__all__ = ["fairness", "FairnessState", "FairnessResult", "robustness", "RobustnessResult"]


def warmup(parallel: bool = True) -> None:
    """Compile (or load from numba's cache) this package's kernels, serial and parallel twins.

    Every kernel has one signature (the replicates' Poisson draws take float64 counts, the
    perturbations float64 features whatever the input's types), so a tiny input compiles all.

    Examples
    --------
    >>> warmup()
    """
    import numpy as np

    from .._kernels import fairness as kf
    from .._kernels import poisson as kp

    for draw in (kp.poisson_cell_counts_serial, kp.poisson_cell_counts):
        draw(np.uint64(0), 0, 2, np.zeros(1, np.uint64), np.ones(1))
    X = np.ones((2, 3))
    for kernel in (kf.perturb_serial, kf.perturb_parallel):
        kernel(X, 0, 1, np.uint64(0), 0, 1.0, np.empty((2, 3)))
