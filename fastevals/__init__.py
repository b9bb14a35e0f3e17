"""fastevals: compiled statistics for evaluating ML models.

A/B tests (G-test, Z-test), bootstrap confidence intervals, calibration and
bandits, computed by numba kernels straight from Arrow tables and Parquet.

``import fastevals`` is cheap: numba and the kernels load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "g_test": "fastevals._abtest",
    "g_test_counts": "fastevals._abtest",
    "z_test": "fastevals._abtest",
    "abtest": "fastevals._abtest",
    "ABTestState": "fastevals._abtest",
    "GTestResult": "fastevals._abtest",
    "ZTestResult": "fastevals._abtest",
    "ABTable": "fastevals._abtest",
    "SRMResult": "fastevals._abtest",
    "SampleRatioMismatchWarning": "fastevals._abtest",
    "fold_on_dask": "fastevals._dask",
    "bootstrap": "fastevals._bootstrap",
    "BootstrapResult": "fastevals._bootstrap",
    "BootstrapState": "fastevals._bootstrap",
    "BootstrapTable": "fastevals._bootstrap",
    "error_rate_interval": "fastevals._bootstrap",
    "ProportionInterval": "fastevals._bootstrap",
    "poisson_weights": "fastevals._bootstrap",
    "ConfidenceInterval": "fastevals._protocol",
    "calibration": "fastevals._calibration",
    "CalibrationState": "fastevals._calibration",
    "CalibrationResult": "fastevals._calibration",
    "CalibrationCurve": "fastevals._calibration",
    "BrierDecomposition": "fastevals._calibration",
    "UCB1": "fastevals._bandits",
    "UCB1Tuned": "fastevals._bandits",
    "ThompsonSampling": "fastevals._bandits",
    "EpsilonGreedy": "fastevals._bandits",
    "ArmState": "fastevals._bandits",
    "replay": "fastevals._bandits",
    "ReplayResult": "fastevals._bandits",
    "simulate": "fastevals._bandits",
    "SimulationResult": "fastevals._bandits",
    "NonUniformLoggingWarning": "fastevals._bandits",
    "policy_from_bytes": "fastevals._bandits",
    # the protocol every analysis speaks (fastevals._protocol)
    "state_from_bytes": "fastevals._protocol",
    # modern experiments (sequential tests, power)
    "power": "fastevals._experiments",
    "sample_size": "fastevals._experiments",
    "PowerResult": "fastevals._experiments",
    "SampleSizeResult": "fastevals._experiments",
    "group_sequential_bounds": "fastevals._experiments",
    "GroupSequentialBounds": "fastevals._experiments",
    "sequential_test": "fastevals._experiments",
    "SequentialState": "fastevals._experiments",
    "SequentialResult": "fastevals._experiments",
    "simulate_peeking": "fastevals._experiments",
    "PeekingResult": "fastevals._experiments",
    # fairness and robustness
    "fairness": "fastevals._fairness",
    "FairnessState": "fastevals._fairness",
    "FairnessResult": "fastevals._fairness",
    "robustness": "fastevals._fairness",
    "RobustnessResult": "fastevals._fairness",
    # error analysis by slices
    "slices": "fastevals._slices",
    "SlicesState": "fastevals._slices",
    "SlicesResult": "fastevals._slices",
    "sliced_metrics": "fastevals._slices",
    "SlicedMetricsResult": "fastevals._slices",
    # distribution shift
    "profile": "fastevals._drift",
    "Profile": "fastevals._drift",
    "drift": "fastevals._drift",
    "DriftResult": "fastevals._drift",
    "adversarial_validation": "fastevals._drift",
    "AdversarialValidationResult": "fastevals._drift",
    # offline model comparison
    "compare_models": "fastevals._compare",
    "CompareModelsState": "fastevals._compare",
    "CompareModelsResult": "fastevals._compare",
    "mcnemar": "fastevals._compare",
    "McNemarResult": "fastevals._compare",
    "bootstrap_models": "fastevals._compare",
    "BootstrapModelsResult": "fastevals._compare",
}

#: public submodules, also loaded on first access (``fastevals.metrics.mean(...)``)
_SUBMODULES = ("metrics",)

__all__ = sorted(_LAZY) + list(_SUBMODULES) + ["__version__", "warmup"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"fastevals.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastevals' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


#: (analysis, module whose ``warmup()`` compiles its kernels), for :func:`warmup` and ``fastevals warmup``
WARMUPS = (
    ("abtest", "fastevals._abtest"),
    ("bootstrap", "fastevals._bootstrap"),
    ("calibration", "fastevals._calibration"),
    ("bandits", "fastevals._bandits"),
    ("experiments", "fastevals._experiments"),
    ("fairness", "fastevals._fairness"),
    ("slices", "fastevals._slices"),
    ("drift", "fastevals._drift"),
    ("compare", "fastevals._compare"),
)


def warmup(parallel: bool = True) -> None:
    """Compile every analysis' kernels ahead of time (or load them from numba's on-disk cache).

    A first call otherwise pays the compile: seconds per analysis on a small machine with an
    empty cache, under a second with a warm one. ``fastevals warmup`` does the same from the
    command line and times each analysis.

    Parameters
    ----------
    parallel : bool
        Also the parallel twins of the kernels (not only the serial ones small inputs use).
    """
    for _, module in WARMUPS:
        importlib.import_module(module).warmup(parallel)


def __dir__():
    return __all__
