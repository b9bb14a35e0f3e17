"""Multi-armed bandits (the implementation lives in :mod:`fastevals._bandits`; this module re-exports it)."""

from __future__ import annotations

from ._bandits import (
    UCB1,
    ArmState,
    ConfidenceInterval,
    EpsilonGreedy,
    NonUniformLoggingWarning,
    ReplayResult,
    SimulationResult,
    ThompsonSampling,
    UCB1Tuned,
    policy_from_bytes,
    replay,
    simulate,
    warmup,
)
from ._bandits._math import _derive_seed, _uniform_pvalue  # noqa: F401  (tests and benchmarks use them)
from ._bandits.state import _readonly  # noqa: F401

__all__ = [
    "UCB1",
    "UCB1Tuned",
    "ThompsonSampling",
    "EpsilonGreedy",
    "ArmState",
    "replay",
    "ReplayResult",
    "simulate",
    "SimulationResult",
    "NonUniformLoggingWarning",
    "ConfidenceInterval",
    "policy_from_bytes",
    "warmup",
]
