"""Results of the A/B analyses: the code now lives in ``fastevals/_abtest/result.py``
(:mod:`fastevals._abtest.result`); this module re-exports it.

:class:`GTestResult` and :class:`ZTestResult` are one comparison; a sliced or
multi-arm analysis gives an :class:`ABTable`; :func:`fastevals.abtest` gives an
:class:`ABTestReport` holding both tests and the :class:`SRMResult`. The old import
paths (``fastevals.results.X``, private names and ``ConfidenceInterval`` / ``fmt`` included)
keep working.
"""

from ._abtest.result import (  # noqa: F401
    _Z_HIDDEN,
    SRM_SHOWN_GROUPS,
    ABTable,
    ABTestReport,
    GTestResult,
    SampleRatioMismatchWarning,
    SRMResult,
    ZTestResult,
    _control_note,
    _label,
    _pct,
)
from ._protocol import ConfidenceInterval, Result, fmt, render_table, result_dataclass  # noqa: F401

__all__ = ["ABTable", "ABTestReport", "ConfidenceInterval", "GTestResult", "SRMResult",
           "SampleRatioMismatchWarning", "ZTestResult"]
