"""Modern online experiments: sequential tests that allow peeking, and power analysis.

Public names (re-exported by ``fastevals``): :func:`power`, :func:`sample_size`,
:func:`group_sequential_bounds`, :func:`sequential_test`, :class:`SequentialState`,
:func:`simulate_peeking` and their results. docs/experiments.md has the formulas.
"""

from .bounds import GroupSequentialBounds, group_sequential_bounds
from .peeking import PeekingResult, simulate_peeking
from .power import PowerResult, SampleSizeResult, power, sample_size
from .sequential import SequentialResult, SequentialState, sequential_test

__all__ = ["power", "sample_size", "PowerResult", "SampleSizeResult", "group_sequential_bounds",
           "GroupSequentialBounds", "sequential_test", "SequentialState", "SequentialResult", "simulate_peeking",
           "PeekingResult"]
