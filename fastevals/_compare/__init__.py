"""Offline model comparison: paired and clustered intervals for eval suites, McNemar's test, power,
and bounds from models refit on bootstrap samples.

Public names (mapped in :mod:`fastevals`): :func:`compare_models`,
:class:`CompareModelsState`, :class:`CompareModelsResult`, :func:`mcnemar`,
:class:`McNemarResult`, :func:`bootstrap_models`, :class:`BootstrapModelsResult`;
:func:`demo_reviews` makes the seed's movie-review case.
"""

from .api import compare_models, mcnemar
from .demo import demo_reviews
from .models import bootstrap_models
from .result import BootstrapModelsResult, CompareModelsResult, McNemarResult
from .state import CompareModelsState

__all__ = ["compare_models", "CompareModelsState", "CompareModelsResult", "mcnemar", "McNemarResult",
           "bootstrap_models", "BootstrapModelsResult", "demo_reviews"]


def warmup(parallel: bool = True) -> None:
    """Compile (or load from numba's cache) the paired-bootstrap kernel on a tiny input.

    Parameters
    ----------
    parallel : bool
        Accepted for symmetry with the other analyses' warmups.
    """
    import numpy as np

    x = np.linspace(0.0, 1.0, 64)
    compare_models({"a": x, "b": x[::-1]}, models=["a", "b"], n_resamples=16, seed=0)
