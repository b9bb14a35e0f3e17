"""Bootstrap confidence intervals for evaluation metrics (the implementation lives in
:mod:`fastevals._bootstrap`: ``state``, ``_math``, ``result``, ``api``; this module re-exports it,
private names included, for the code, tests and benchmarks that import them from here).
"""

from __future__ import annotations

from ._bootstrap import (
    BootstrapResult,
    BootstrapState,
    BootstrapTable,
    ConfidenceInterval,
    ProportionInterval,
    bootstrap,
    error_rate_interval,
    poisson_weights,
    warmup,
)
from ._bootstrap._math import (  # noqa: F401  (private: tests and other analyses use them)
    _METHODS,
    _acceleration,
    _categorical_sums,
    _interval,
    _interval_bounds,
    _jack_moments,
    _relative_acceleration,
    _result,
    _results,
    _sort_for,
    _sorted_jackknife,
    _table,
    _unit_sums,
    _warn_degenerate,
)
from ._bootstrap.api import (  # noqa: F401
    _COMPARISONS,
    _RESAMPLING,
    MAX_REPLICATE_BYTES,
    _Args,
    _bootstrap_iv,
    _check_replicate_memory,
)
from ._bootstrap.result import DegenerateBootstrapWarning  # noqa: F401
from ._bootstrap.state import _MULTINOMIAL_BLOCK, _cat, _Cells, _cluster_keys, _grow, _JackknifeSums  # noqa: F401

__all__ = [
    "bootstrap", "BootstrapResult", "BootstrapState", "BootstrapTable", "ConfidenceInterval", "error_rate_interval",
    "ProportionInterval", "poisson_weights", "warmup",
]
