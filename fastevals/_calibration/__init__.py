"""Calibration: reliability curves, ECE and the Brier score from one streaming pass.

Is a score of 0.8 right 80% of the time?  :func:`calibration` bins predicted
probabilities exactly as :func:`sklearn.calibration.calibration_curve` does and
reports, per bin, the count, weight, mean prediction and observed frequency of
positives with a Wilson interval (and a Poisson-bootstrap band), plus the
expected calibration error (ECE, L1), the RMS and maximum calibration errors,
the debiased squared L2 error of Kumar et al. (2019), and the Brier score with
its Murphy decomposition and the two within-bin terms of Stephenson et al.
(2008), so that the parts add up to the Brier score.

The work is done by a :class:`CalibrationState` (a :class:`fastevals._protocol.State`):
a fixed-size table per (class curve, segment, bin) of count, weight, weighted
means of p and y, centred second moments and the Brier sum.  States update
batch by batch and merge exactly (Chan et al.), so shards, threads, streams and
Dask partitions give the one-shot answer; :func:`fastevals._fold.fold` drives
them over any input.
"""

from .api import calibration, warmup
from .result import BrierDecomposition, CalibrationCurve, CalibrationResult
from .state import ROW_SUM_TOL, CalibrationState

__all__ = [
    "BrierDecomposition",
    "CalibrationCurve",
    "CalibrationResult",
    "CalibrationState",
    "ROW_SUM_TOL",
    "calibration",
    "warmup",
]
