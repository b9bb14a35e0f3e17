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
