"""The bootstrap's results: :class:`BootstrapResult` (one interval), :class:`BootstrapTable`
(several), :class:`ProportionInterval` (:func:`~fastevals.error_rate_interval`) and the
:class:`DegenerateBootstrapWarning`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from .._protocol import ConfidenceInterval, Result, fmt, plain, result_dataclass

__all__ = ["BootstrapResult", "BootstrapTable", "DegenerateBootstrapWarning", "ProportionInterval"]


@result_dataclass
class BootstrapResult(Result):
    """One bootstrap interval.

    Attributes
    ----------
    estimate : the metric on the data.
    confidence_interval : ``ConfidenceInterval(low, high, confidence, method)``.
    standard_error : standard deviation of the bootstrap distribution (ddof=1).
    bootstrap_distribution : the metric on each replicate (length ``n_resamples``).
    method, n_resamples, confidence, resampling, seed : how it was computed.
    metric : the metric's name; ``segment`` / ``group`` where ``by`` / ``group`` were given.
    n : rows used (after nulls were dropped; for a comparison, both groups' rows).
    n_invalid : replicates whose metric was undefined (e.g. no positives drawn), left out of the
        interval (a ``DegenerateBootstrapWarning`` says so).
    """

    estimate: float
    confidence_interval: ConfidenceInterval
    standard_error: float
    bootstrap_distribution: np.ndarray
    method: str
    n_resamples: int
    confidence: float
    metric: str
    resampling: str
    seed: int
    n: int
    n_invalid: int = 0
    segment: object = None
    group: object = None
    acceleration: float | None = None
    comparison: str | None = None
    backend: str = "cpu"

    def to_dict(self) -> dict:
        """Plain values (the bootstrap distribution left out: it is ``n_resamples`` numbers)."""
        d = Result.to_dict(self)
        del d["bootstrap_distribution"]
        d["segment"], d["group"] = plain(self.segment), plain(self.group)
        return d

    def _title(self) -> str:
        return f"bootstrap: {self.metric}"

    def _summary_lines(self) -> list[str]:
        ci = self.confidence_interval
        lines = [f"estimate {fmt(self.estimate)}, {self.confidence:.0%} {self.method} interval {fmt(ci)}, "
                 f"standard error {fmt(self.standard_error)}",
                 f"B = {self.n_resamples:,} {self.resampling} replicates, seed {self.seed}, {self.n:,} rows"]
        if self.n_invalid:
            lines.append(f"{self.n_invalid:,} undefined replicates left out")
        return lines

    def _plot(self, ax) -> None:
        d = self.bootstrap_distribution
        ax.hist(d[np.isfinite(d)], bins=60, color="0.75")
        ax.axvline(self.estimate, color="k", label="estimate")
        for v in self.confidence_interval:
            ax.axvline(v, color="C3", linestyle="--")
        ax.set_xlabel(self.metric)
        ax.set_title(f"{self.confidence:.0%} {self.method} interval, B = {self.n_resamples:,}")


@result_dataclass
class BootstrapTable(Result):
    """Several intervals (several metrics, segments or groups): one row each in ``table``
    (``metric``, ``segment``, ``group``, ``comparison``, ``estimate``, ``low``, ``high``,
    ``standard_error``, ``n``); ``results`` holds each :class:`BootstrapResult`.
    """

    table: pa.Table
    results: tuple

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i) -> BootstrapResult:
        return self.results[i]

    def __iter__(self):
        return iter(self.results)

    def to_dict(self) -> dict:
        """``{"rows": [each result's to_dict()]}``."""
        return {"rows": [r.to_dict() for r in self.results]}

    def _title(self) -> str:
        r0 = self.results[0]
        return (f"bootstrap: {r0.confidence:.0%} {r0.method} intervals, B = {r0.n_resamples:,} "
                f"{r0.resampling} replicates, seed {r0.seed}")

    def _plot(self, ax) -> None:
        est = np.array([r.estimate for r in self.results])
        lo = np.array([r.confidence_interval.low for r in self.results])
        hi = np.array([r.confidence_interval.high for r in self.results])
        y = np.arange(len(self.results))[::-1]
        ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color="k", capsize=3)
        labels = [r.metric + ("" if r.segment is None else f" | {r.segment}") +
                  ("" if r.group is None else f" | {r.group}") for r in self.results]
        ax.set_yticks(y, labels)
        ax.set_xlabel("estimate with interval")


class ProportionInterval(NamedTuple):
    """An interval ``(low, high)`` for a proportion (see :func:`error_rate_interval`)."""

    low: float
    high: float


class DegenerateBootstrapWarning(UserWarning):
    """The metric was undefined on the data or on some replicates (one class for AUC, a zero
    denominator, constant data for BCa): the interval is missing or built from fewer replicates.
    """
