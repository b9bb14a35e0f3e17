"""Error analysis by slices: :func:`slices` finds where a model is significantly worse,
:func:`sliced_metrics` gives every metric per segment with intervals (see docs/slices.md).
"""

from .api import sliced_metrics, slices
from .result import SlicedMetricsResult, SlicesResult
from .state import SlicesState

__all__ = ["slices", "SlicesState", "SlicesResult", "sliced_metrics", "SlicedMetricsResult"]


def warmup(parallel: bool = True) -> None:
    """Compile (or load from numba's cache) the slice-counting kernel on a tiny input.

    Parameters
    ----------
    parallel : bool
        Accepted for symmetry with the other analyses' warmups.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    n = 400
    log = {"a": rng.integers(0, 3, n), "b": rng.choice(np.array(["x", "y"]), n), "y": rng.integers(0, 2, n),
           "p": rng.integers(0, 2, n)}
    slices(log, label="y", prediction="p", columns=["a", "b"], min_size=2)
