"""A/B tests: the code now lives in :mod:`fastevals._abtest`; this module re-exports it.

:class:`ABTestState` (and its helpers) is in ``fastevals/_abtest/state.py``, the finalize math
(G-test tables, Monte Carlo, sample-ratio check) in ``fastevals/_abtest/_math.py``, the results
in ``fastevals/_abtest/result.py`` and :func:`g_test`, :func:`z_test`, :func:`abtest`,
:func:`g_test_counts` and :func:`warmup` in ``fastevals/_abtest/api.py``. The old import paths
(``fastevals.ab_tests.X``, private names included) keep working.
"""

from ._abtest._math import (  # noqa: F401
    _ADJUST,
    _SMALL_COUNTS_NOTE,
    MAX_MONTE_CARLO_CELLS,
    MAX_MONTE_CARLO_TOTAL,
    _check_monte_carlo,
    _control_index,
    _expected_shares,
    _g_columns,
    _g_iv,
    _g_segments_plain,
    _g_single,
    _interval_method,
    _label_columns,
    _mc_skipped_note,
    _monte_carlo_pvalue,
    _warn_srm,
)
from ._abtest.api import _run, abtest, g_test, g_test_counts, warmup, z_test  # noqa: F401
from ._abtest.result import (  # noqa: F401
    ABTable,
    ABTestReport,
    GTestResult,
    SampleRatioMismatchWarning,
    SRMResult,
    ZTestResult,
)
from ._abtest.state import (  # noqa: F401
    _ALTERNATIVES,
    _G_OPTIONS,
    _MAX_PARTIAL_CELLS,
    _Z_OPTIONS,
    ABTestState,
    _chan_merge,
    _check_split,
    _codes_for_kernel,
    _plain_label,
    _sort_key,
    _values_for_kernel,
    _z_options,
)

__all__ = ["ABTestState", "abtest", "g_test", "g_test_counts", "z_test"]
