"""A/B tests: the G-test and the z-test (with CUPED and ratio metrics), on the protocol.

``state`` holds :class:`ABTestState` (the mergeable cells), ``_math`` the finalize math
(G-test tables, Monte Carlo, sample-ratio check), ``result`` the results, ``api`` the
functions :func:`g_test`, :func:`z_test`, :func:`abtest` and :func:`g_test_counts`.
"""

from .api import abtest, g_test, g_test_counts, warmup, z_test
from .result import ABTable, ABTestReport, GTestResult, SampleRatioMismatchWarning, SRMResult, ZTestResult
from .state import ABTestState

__all__ = ["ABTestState", "abtest", "g_test", "g_test_counts", "z_test", "warmup", "ABTable", "ABTestReport",
           "GTestResult", "SRMResult", "SampleRatioMismatchWarning", "ZTestResult"]
