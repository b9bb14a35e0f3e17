"""Result objects of the A/B analyses: frozen, slotted dataclasses whose first
fields are ``statistic`` and ``pvalue``; sliced analyses return an
:class:`ABTable` that wraps one Arrow table with a row per segment."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa

from ._protocol import ConfidenceInterval  # noqa: F401  (one interval type for every analysis)


class SampleRatioMismatchWarning(UserWarning):
    """The group sizes do not match the expected split: the experiment's
    assignment or logging is probably broken, and its results are suspect."""


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return tuple(_plain(v) for v in value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


class _DictMixin:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, floats, str), ready for JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class SRMResult(_DictMixin):
    """Sample-ratio-mismatch check: chi-square goodness of fit of the observed
    group sizes to the expected split."""

    statistic: float
    pvalue: float
    groups: tuple
    observed: tuple
    expected_share: tuple
    threshold: float

    @property
    def mismatch(self) -> bool:
        return bool(self.pvalue < self.threshold)

    def message(self) -> str:
        obs = ", ".join(f"{g}={n:,}" for g, n in zip(self.groups, self.observed))
        exp = ", ".join(f"{g}={s:.4g}" for g, s in zip(self.groups, self.expected_share))
        if self.mismatch:
            return (f"SAMPLE RATIO MISMATCH: group sizes ({obs}) do not fit the expected split ({exp}); "
                    f"p = {self.pvalue:.3g} < {self.threshold}. Check assignment and logging before "
                    "trusting any result of this experiment.")
        return f"sample ratio check passed: sizes {obs}, expected split {exp}, p = {self.pvalue:.3g}"


@dataclass(frozen=True, slots=True)
class GTestResult(_DictMixin):
    """Result of a G-test of independence on an R x C table (or a stack of them).

    Unpacks like scipy's ``Chi2ContingencyResult``:
    ``statistic, pvalue, dof, expected_freq = result``.
    """

    statistic: Any
    pvalue: Any
    dof: Any
    expected_freq: np.ndarray
    observed: np.ndarray
    correction: str | None = None
    pvalue_mc: Any = None
    n_monte_carlo: int = 0
    small_counts: Any = False
    groups: tuple = ()
    outcomes: tuple = ()
    srm: SRMResult | None = None
    rows_dropped: int = 0
    note: str = ""
    backend: str = "cpu"

    def __iter__(self):
        return iter((self.statistic, self.pvalue, self.dof, self.expected_freq))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return (self.statistic, self.pvalue, self.dof, self.expected_freq)[i]


@dataclass(frozen=True, slots=True)
class ZTestResult(_DictMixin):
    """Result of a two-sample z-test of ``treatment`` against ``control``.

    ``difference`` is treatment minus control, ``relative_difference`` the lift
    (treatment / control - 1) with a delta-method interval.

    With covariates (regression adjustment, CUPED) ``difference`` is the adjusted
    difference, ``variance_reduction`` is ``1 - adjusted variance / plain variance``
    of the difference, and ``extra_sample_size`` the rows that a plain test would
    need in addition to ``n_control + n_treatment`` for the same standard error.
    With a ``denominator`` the means are ratios of sums (``sum(value) / sum(denominator)``
    per group). ``std_error`` is a read-only alias of ``standard_error``.
    """

    statistic: float
    pvalue: float
    difference: float
    confidence_interval: ConfidenceInterval
    relative_difference: float
    relative_confidence_interval: ConfidenceInterval
    standard_error: float
    control: Any
    treatment: Any
    mean_control: float
    mean_treatment: float
    n_control: int
    n_treatment: int
    kind: str
    alternative: str
    margin: float
    confidence: float
    srm: SRMResult | None = None
    rows_dropped: int = 0
    covariates: tuple = ()
    denominator: str | None = None
    variance: str = "welch"
    variance_reduction: float = 0.0
    extra_sample_size: float = 0.0
    standard_error_unadjusted: float = math.nan
    theta: tuple = ()
    adjusted_mean_control: float = math.nan
    adjusted_mean_treatment: float = math.nan
    note: str = ""

    @property
    def std_error(self) -> float:
        """Alias of ``standard_error`` (the field's former name)."""
        return self.standard_error

    def __iter__(self):
        return iter((self.statistic, self.pvalue))


@dataclass(frozen=True, slots=True)
class ABTable(_DictMixin):
    """A sliced (or multi-arm) analysis: one Arrow table row per segment and
    treatment, with p-values adjusted across rows (``pvalue_adjusted``)."""

    table: pa.Table
    test: str
    adjust: str | None
    srm: SRMResult | None = None
    rows_dropped: int = 0

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self):
        return self.table.to_pandas()

    def to_pylist(self) -> list[dict]:
        return self.table.to_pylist()

    def column(self, name: str) -> np.ndarray:
        return self.table.column(name).to_numpy(zero_copy_only=False)

    def __len__(self) -> int:
        return self.table.num_rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "adjust": self.adjust,
            "rows": self.table.to_pylist(),
            "srm": None if self.srm is None else self.srm.to_dict(),
            "rows_dropped": self.rows_dropped,
        }


def fmt(x, digits: int = 4) -> str:
    """Short human formatting for tables printed by the CLI."""
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    return str(x)
