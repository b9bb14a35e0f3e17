"""Calibration (the implementation lives in :mod:`fastevals._calibration`; this module re-exports it).

``fastevals.calibration`` and its state and results; see :mod:`fastevals._calibration`.
"""

from __future__ import annotations

from ._calibration import (
    ROW_SUM_TOL,
    BrierDecomposition,
    CalibrationCurve,
    CalibrationResult,
    CalibrationState,
    calibration,
    warmup,
)

__all__ = [
    "BrierDecomposition",
    "CalibrationCurve",
    "CalibrationResult",
    "CalibrationState",
    "ROW_SUM_TOL",
    "calibration",
    "warmup",
]
