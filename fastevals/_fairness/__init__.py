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


def warmup() -> None:
    """Compile (or load from numba's cache) this package's kernels, serial and parallel twins.

    Every kernel has one signature (labels, predictions and cells are int64, features
    float64 whatever the input's types), so a tiny input compiles all of them.

    Examples
    --------
    >>> warmup()
    """
    import numpy as np

    from .._kernels import fairness as kf

    cells = np.zeros(4, dtype=np.int64)
    for kernel in (kf.replicate_counts_serial, kf.replicate_counts_parallel):
        kernel(np.uint64(0), 0, np.empty(0, np.int64), cells, 1, np.zeros((2, 1), np.int64))
    X = np.ones((2, 3))
    for kernel in (kf.perturb_serial, kf.perturb_parallel):
        kernel(X, 0, 1, np.uint64(0), 0, 1.0, np.empty((2, 3)))
