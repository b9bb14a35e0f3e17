"""Error analysis by slices: :func:`slices` finds where a model is significantly worse,
:func:`sliced_metrics` gives every metric per segment with intervals (see docs/slices.md).
"""

from .api import sliced_metrics, slices
from .result import SlicedMetricsResult, SlicesResult
from .state import SlicesState

__all__ = ["slices", "SlicesState", "SlicesResult", "sliced_metrics", "SlicedMetricsResult"]
