"""Bootstrap confidence intervals for evaluation metrics, in one compiled pass.

:func:`bootstrap` is a Poisson bootstrap with counter-based weights: replicate
``b`` gives the row with key ``k`` (its global index, or its cluster id) the
weight ``Poisson1(hash(seed, b, k))``.  Only per-replicate weighted sums are
kept (memory O(B x state), never O(B x N)); the weights are the same for any
batch size, thread count or file split, so results are reproducible everywhere.
``resampling="multinomial"`` gives the classic bootstrap (scipy's) for small N.

The package: ``state`` (:class:`BootstrapState`), ``_math`` (intervals, BCa acceleration,
jackknife moments, categorical sums: the finalize math), ``result`` (the results) and ``api``
(:func:`bootstrap`, :func:`poisson_weights`, :func:`error_rate_interval`, :func:`warmup`).
:mod:`fastevals.resampling` re-exports it.

See :mod:`fastevals.metrics` for the metrics and ``docs/bootstrap.md`` for a tour.
"""

from .._protocol import ConfidenceInterval
from .api import bootstrap, error_rate_interval, poisson_weights, warmup
from .result import BootstrapResult, BootstrapTable, DegenerateBootstrapWarning, ProportionInterval
from .state import BootstrapState

__all__ = [
    "bootstrap", "BootstrapResult", "BootstrapState", "BootstrapTable", "ConfidenceInterval",
    "DegenerateBootstrapWarning", "error_rate_interval", "ProportionInterval", "poisson_weights", "warmup",
]
