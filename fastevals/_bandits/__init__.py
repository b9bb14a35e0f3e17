"""Multi-armed bandits: policy states, replay of logs, parallel simulation.

Streaming, mergeable policy states (UCB1, UCB1-Tuned, Thompson sampling,
epsilon-greedy), replay evaluation of a policy on a logged stream (Li, Chu,
Langford & Wang 2011) and many simulated runs in parallel.

A policy is a :class:`fastevals._protocol.State`: its sufficient statistics are
per-arm pulls, reward sums and squared reward sums. ``update`` folds a logged
(arm, reward) table (or arrays) into it with a compiled, chunked kernel,
``merge`` returns a new state with another's statistics added,
``to_bytes``/``from_bytes`` round-trip it exactly (the protocol's one format),
``finalize`` gives its :class:`ArmState`, and ``select`` picks the arm to play now.
:func:`replay` drives a copy of a policy through a log in order (sequential: one
process), :func:`simulate` runs many independent simulations in parallel.

References
----------
.. [1] P. Auer, N. Cesa-Bianchi and P. Fischer, "Finite-time Analysis of the
   Multiarmed Bandit Problem", Machine Learning 47, 235-256 (2002).
.. [2] L. Li, W. Chu, J. Langford and X. Wang, "Unbiased Offline Evaluation of
   Contextual-bandit-based News Article Recommendation Algorithms", WSDM 2011.
.. [3] O. Chapelle and L. Li, "An Empirical Evaluation of Thompson Sampling",
   NeurIPS 2011.
.. [4] G. Marsaglia and W. W. Tsang, "A Simple Method for Generating Gamma
   Variables", ACM TOMS 26(3), 2000.
"""

from .._protocol import ConfidenceInterval
from ._math import NonUniformLoggingWarning
from .api import replay, simulate, warmup
from .result import ArmState, ReplayResult, SimulationResult
from .state import UCB1, EpsilonGreedy, ThompsonSampling, UCB1Tuned, policy_from_bytes

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
