"""Calibration results: the reliability curve, the Brier decomposition and the whole result."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._protocol import ConfidenceInterval, Result, fmt, optional_import, render_table
from .._validation import check_choice

if TYPE_CHECKING:  # mypy sees the fields (the protocol's decorator is an untyped function)
    from dataclasses import dataclass as result_dataclass
else:
    from .._protocol import result_dataclass

# ----------------------------------------------------------------------------------------------------
# results


@result_dataclass
class BrierDecomposition(Result):
    """Brier score = reliability - resolution + uncertainty + within_bin_variance - within_bin_covariance.

    ``reliability``, ``resolution`` and ``uncertainty`` are Murphy's (1973)
    terms on the binned forecasts; the within-bin variance of the predictions
    and the within-bin covariance (times two) of predictions and outcomes are
    Stephenson et al.'s (2008) extra terms, which make the sum exact.

    Attributes
    ----------
    brier, reliability, resolution, uncertainty, within_bin_variance, within_bin_covariance : float
        The score and its parts.

    Examples
    --------
    >>> d = BrierDecomposition(0.2, 0.01, 0.05, 0.24, 0.002, 0.002)
    >>> round(d.reliability - d.resolution + d.uncertainty + d.within_bin_variance - d.within_bin_covariance, 12)
    0.2
    """

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float

    def _title(self) -> str:
        return "Brier decomposition (Murphy 1973; Stephenson et al. 2008)"

    def _summary_lines(self) -> list[str]:
        return [f"Brier {fmt(self.brier, 6)} = REL {fmt(self.reliability, 6)} - RES {fmt(self.resolution, 6)} "
                f"+ UNC {fmt(self.uncertainty, 6)} + WBV {fmt(self.within_bin_variance, 6)} "
                f"- WBC {fmt(self.within_bin_covariance, 6)}"]


def _bins_table(curves, multiclass, segment=None, with_segment=False) -> pa.Table:
    """One row per (class, bin) of ``curves``; NaN (an empty bin's mean) becomes null."""
    parts = []
    for c in curves:
        nb = len(c.count)
        cols = {}
        if with_segment:
            cols["segment"] = src.arrow_array([segment] * nb)
        if multiclass == "classwise":
            cols["class"] = src.arrow_array([c.label] * nb)
        band = c.band or ConfidenceInterval(np.full(nb, np.nan), np.full(nb, np.nan))
        plain = {"bin": np.arange(nb, dtype=np.int64), "lower": c.edges[:-1], "upper": c.edges[1:],
                 "count": c.count, "weight": c.weight}
        nullable = {"mean_predicted": c.mean_predicted, "observed_frequency": c.observed_frequency,
                    "low": c.observed_frequency_ci.low, "high": c.observed_frequency_ci.high,
                    "band_low": band.low, "band_high": band.high}
        cols.update({k: src.numpy_to_arrow(np.asarray(v)) for k, v in plain.items()})
        cols.update({k: src.numpy_to_arrow(np.asarray(v, dtype=np.float64), nan_is_null=True)
                     for k, v in nullable.items()})
        parts.append(src.arrow_table(cols))
    return pa.concat_tables(parts)


@result_dataclass
class CalibrationCurve(Result):
    """One reliability curve: per-bin arrays (length ``n_bins``) and its scalars.

    Empty bins have ``count == 0`` and NaN means/frequencies (sklearn drops
    them: :meth:`sklearn_curve` gives its ``(prob_true, prob_pred)``).
    ``observed_frequency_ci`` holds each bin's Wilson interval (arrays),
    ``band`` the Poisson-bootstrap percentile band (arrays; None without
    ``n_resamples``). ``to_arrow()`` gives one row per bin.

    Attributes
    ----------
    label
        The class of a classwise curve (None for binary and top-label input).
    edges, count, weight, mean_predicted, observed_frequency : numpy.ndarray
        Bin edges (``n_bins + 1``) and the per-bin statistics.
    observed_frequency_ci, band : ConfidenceInterval
        Per-bin intervals of the observed frequency (Wilson; bootstrap band).
    ece, rms, mce, debiased_l2_sq : float
        Calibration errors of the curve.
    brier : BrierDecomposition
    ece_ci : ConfidenceInterval or None
        Bootstrap interval of the ECE.
    n : int
        Rows in the curve.
    weight_total : float

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(1000)
    >>> curve = fastevals.calibration({"p": p, "y": rng.random(1000) < p}, prob="p", label="y", n_bins=4).curve
    >>> curve.count.tolist()
    [231, 242, 260, 267]
    """

    label: object
    n: int
    ece: float
    ece_ci: ConfidenceInterval | None
    rms: float
    mce: float
    debiased_l2_sq: float
    weight_total: float
    brier: BrierDecomposition
    edges: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    mean_predicted: np.ndarray
    observed_frequency: np.ndarray
    observed_frequency_ci: ConfidenceInterval
    band: ConfidenceInterval | None

    def sklearn_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(prob_true, prob_pred)`` over non-empty bins, as ``calibration_curve`` returns them."""
        keep = self.count > 0
        return self.observed_frequency[keep], self.mean_predicted[keep]

    @property
    def debiased_l2(self) -> float:
        """Square root of the debiased squared L2 error, clipped at 0 (Kumar et al.'s ``unbiased_l2_ce``)."""
        return math.sqrt(max(self.debiased_l2_sq, 0.0))

    def to_arrow(self) -> pa.Table:
        """One row per bin (``low`` / ``high``: the Wilson interval; ``band_low`` / ``band_high``)."""
        return _bins_table([self], None)

    def _title(self) -> str:
        return "reliability curve" + ("" if self.label is None else f" of class {self.label}")

    def _summary_lines(self) -> list[str]:
        ci = "" if self.ece_ci is None else f" {fmt(self.ece_ci)}"
        return [f"n: {self.n:,}", f"ECE: {fmt(self.ece, 6)}{ci}   RMS: {fmt(self.rms, 6)}   MCE: {fmt(self.mce, 6)}"]

    def __str__(self) -> str:
        return "\n".join([self._title(), *self._summary_lines(), render_table(self.to_arrow())])

    def _plot(self, ax) -> None:
        _draw_curves(ax, [self], kind="points")


@result_dataclass
class CalibrationResult(Result):
    """Result of :func:`calibration`.

    ``ece`` etc. describe the whole curve set: for binary and top-label input
    they are the single curve's.  With ``multiclass="classwise"`` they follow
    Kumar et al.'s marginal calibration error: ECE and the debiased squared
    error are averaged over classes, RMS is the root of the mean squared
    error, MCE is the largest; the Brier score and its parts are summed over
    classes (the multiclass Brier score).  ``segments`` maps each ``by``
    value to its own result (same edges).  ``edges`` is 1-D, or one row per
    class for classwise quantile bins.  ``to_arrow()`` gives one row per
    (segment, class, bin); ``str(result)`` is the report the CLI prints.

    Attributes
    ----------
    ece, rms, mce, debiased_l2_sq, brier : float
        Calibration errors and the Brier score.
    ece_ci : ConfidenceInterval or None
        Poisson-bootstrap percentile interval of the ECE (with ``n_resamples``).
    brier_decomposition : BrierDecomposition
    curves : tuple of CalibrationCurve
    segments : dict or None
        ``{by value: CalibrationResult}``.
    edges : numpy.ndarray
    n_bins : int
    strategy : str
        "uniform", "quantile" or "custom".
    multiclass : str or None
    n, n_dropped : int
        Rows used, and rows dropped (nulls, NaN, inf with ``nulls="drop"``).
    collapsed_bins : tuple of int
        Bins of zero width (tied quantile edges).
    confidence : float
    n_resamples : int
    backend : str
        Where the binning ran ("cpu" or "cuda").

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(2000)
    >>> res = fastevals.calibration({"p": p, "y": rng.random(2000) < p}, prob="p", label="y", n_bins=5)
    >>> res.n, res.n_dropped, res.to_arrow().num_rows
    (2000, 0, 5)
    """

    ece: float
    ece_ci: ConfidenceInterval | None
    rms: float
    mce: float
    debiased_l2_sq: float
    brier: float
    n: int
    n_dropped: int
    brier_decomposition: BrierDecomposition
    curves: tuple
    segments: dict | None
    edges: np.ndarray
    n_bins: int
    strategy: str
    multiclass: str | None
    collapsed_bins: tuple
    confidence: float
    n_resamples: int
    backend: str = "cpu"

    @property
    def curve(self) -> CalibrationCurve:
        """The only curve (binary or top-label input)."""
        if len(self.curves) != 1:
            raise AttributeError("this result has one curve per class; use `curves`")
        return self.curves[0]

    def to_arrow(self) -> pa.Table:
        """Return one row per (segment, class, bin).

        ``low`` / ``high`` are the Wilson interval of the observed frequency,
        ``band_low`` / ``band_high`` the bootstrap band (null without it).
        """
        if self.segments is None:
            return _bins_table(self.curves, self.multiclass)
        return pa.concat_tables([_bins_table(r.curves, self.multiclass, seg, True)
                                 for seg, r in self.segments.items()])

    def _title(self) -> str:
        mc = "" if self.multiclass is None else f", {self.multiclass}"
        return f"calibration ({self.strategy} bins: {self.n_bins}{mc})"

    def _summary_lines(self) -> list[str]:
        d = self.brier_decomposition
        ci = "" if self.ece_ci is None else f"  {fmt(self.ece_ci, 6)} ({self.confidence:.0%} bootstrap)"
        lines = [
            f"rows            {self.n:,} (dropped {self.n_dropped:,})",
            f"ECE             {self.ece:.6f}{ci}",
            f"RMS CE          {self.rms:.6f}",
            f"MCE             {fmt(self.mce, 6)}",
            f"debiased L2^2   {self.debiased_l2_sq:.6g}",
            f"Brier           {d.brier:.6f} = REL {d.reliability:.6f} - RES {d.resolution:.6f} "
            f"+ UNC {d.uncertainty:.6f} + WBV {d.within_bin_variance:.6f} - WBC {d.within_bin_covariance:.6f}",
        ]
        if self.collapsed_bins:
            lines.append(f"collapsed bins (tied quantile edges): {list(self.collapsed_bins)}")
        if self.segments:
            items = sorted(self.segments.items(), key=lambda kv: -kv[1].ece)
            lines.append(f"segment ECE ({len(items):,} segments, worst first)")
            for k, v in items[:10]:
                lines.append(f"  {k!s:>20}  {v.ece:.6f}  (n={v.n:,})")
            if len(items) > 10:
                lines.append(f"  ... {len(items) - 10:,} more segment(s)")
        return lines

    def __str__(self) -> str:
        parts = [self._title(), *self._summary_lines(), ""]
        for c in self.curves:
            if c.label is not None:
                parts.append(f"class {c.label}")
            parts.append(render_table(_bins_table([c], None).drop_columns(["band_low", "band_high"])
                                      if c.band is None else _bins_table([c], None), max_rows=50))
        return "\n".join(parts)

    def plot(self, ax=None, path=None, *, kind: str = "points"):
        """Reliability diagram: observed frequency against mean prediction per bin.

        With Wilson intervals (and the bootstrap band when computed), the
        diagonal and a histogram of the predictions under it.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw into it (the histogram on a twin axis); otherwise a new figure
            with two panels is made.
        path : str or path, optional
            Save the figure there.
        kind : {"points", "bars"}

        Returns
        -------
        matplotlib.axes.Axes
            The reliability panel.

        Raises
        ------
        ImportError
            Without matplotlib (the ``plot`` extra).
        """
        kind = check_choice("kind", kind, ("points", "bars"))
        plt = optional_import("matplotlib.pyplot", "plot()")
        if ax is None:
            fig, (ax_rel, ax_hist) = plt.subplots(
                2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
            )
            own = True
        else:
            fig, ax_rel, ax_hist, own = ax.figure, ax, ax.twinx(), False
        _draw_curves(ax_rel, self.curves, kind=kind, ax_hist=ax_hist, own=own)
        title = f"reliability ({self.strategy}, {self.n_bins} bins, n={self.n:,})"
        if self.ece_ci is not None:
            title += f"\nECE {self.ece:.4f} [{self.ece_ci.low:.4f}, {self.ece_ci.high:.4f}]"
        ax_rel.set_title(title, fontsize=10)
        if path is not None:
            fig.savefig(path, dpi=110, bbox_inches="tight")
        return ax_rel

    def _plot(self, ax) -> None:
        self.plot(ax)


def _draw_curves(ax_rel, curves, *, kind="points", ax_hist=None, own=False) -> None:
    ax_rel.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
    for c in curves:
        keep = c.count > 0
        name = "model" if c.label is None else f"class {c.label}"
        x = c.mean_predicted[keep]
        yv = c.observed_frequency[keep]
        ci = c.observed_frequency_ci
        err = np.vstack([yv - ci.low[keep], ci.high[keep] - yv])
        if kind == "bars" and len(curves) == 1:
            lo = c.edges[:-1][keep]
            ax_rel.bar(lo, yv, width=np.diff(c.edges)[keep], align="edge", alpha=0.6,
                       edgecolor="k", label=f"{name} (ECE {c.ece:.4f})")
            ax_rel.errorbar((c.edges[:-1] + c.edges[1:])[keep] / 2, yv, yerr=err, fmt="none", ecolor="k")
        else:
            line = ax_rel.errorbar(x, yv, yerr=err, marker="o", ms=4, capsize=2, label=f"{name} (ECE {c.ece:.4f})")
            if c.band is not None:
                ax_rel.fill_between(x, c.band.low[keep], c.band.high[keep], alpha=0.2,
                                    color=line[0].get_color(), lw=0)
        if ax_hist is not None:
            ax_hist.hist(c.edges[:-1], bins=c.edges, weights=c.weight, alpha=0.35 if own else 0.15,
                         histtype="stepfilled")
    ax_rel.set_xlim(0, 1)
    ax_rel.set_ylim(0, 1)
    ax_rel.set_ylabel("observed frequency")
    ax_rel.legend(loc="upper left", fontsize=8)
    if ax_hist is not None and own:
        ax_hist.set_xlabel("mean predicted probability")
        ax_hist.set_ylabel("weight")
    else:
        if ax_hist is not None:
            ax_hist.set_yticks([])
        ax_rel.set_xlabel("mean predicted probability")
