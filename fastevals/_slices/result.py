"""Results of :func:`fastevals.slices` and :func:`fastevals.sliced_metrics`."""

from __future__ import annotations

import pyarrow as pa

from .._protocol import Result, fmt, plain, render_table, result_dataclass

_SHOWN = ("slice", "size", "metric_inside", "metric_outside", "difference", "low", "high", "pvalue_adjusted",
          "score")


@result_dataclass
class SlicesResult(Result):
    """The slices where the model is significantly worse than on the rest of the data.

    Attributes
    ----------
    table : one row per reported slice, most harmful first: ``slice`` (text), ``order`` (number of
        conditions), ``columns`` and ``values`` (lists), ``size``, ``metric_inside``,
        ``metric_outside``, ``difference`` (inside - outside) with its interval ``low`` / ``high``,
        ``pvalue``, ``pvalue_adjusted``, ``score`` (SliceLine's) and ``excess`` (size x difference:
        the errors, or loss, above what the rest's rate would give).
    metric : ``"error_rate"`` or ``"mean_loss"``.
    estimate : the metric over all rows used.
    n, n_dropped : rows used, rows dropped (nulls / NaN with ``nulls="drop"``).
    n_tested : slices tested (at least ``min_size`` rows inside and outside);
        ``n_untested``: non-empty slices too small to test.
    n_significant : tested slices worse than the rest with ``pvalue_adjusted <= alpha``.
    n_reported : rows of ``table``; ``n_pruned``: significant slices left out by the parent rule.
    n_untested, n_pruned : as above.
    alpha, adjust, confidence : the significance level, the p-value adjustment, the intervals' confidence.
    min_size, max_order, score_alpha : the search's options (see :func:`fastevals.slices`).
    columns : the columns sliced by.
    tested : every tested slice (the columns of ``table`` plus ``significant`` and ``reported``);
        left out of :meth:`to_dict`.
    notes : why a number is undefined or a slice left out.
    """

    table: pa.Table
    metric: str
    estimate: float
    n: int
    n_dropped: int
    n_tested: int
    n_untested: int
    n_significant: int
    n_reported: int
    n_pruned: int
    alpha: float
    adjust: str
    confidence: float
    min_size: int
    max_order: int
    score_alpha: float
    columns: list
    tested: pa.Table
    notes: list

    def to_dict(self) -> dict:
        """Plain Python values; ``tested`` (every slice tested) is left out, read it from the result."""
        return {name: plain(getattr(self, name)) for name in self._field_names() if name != "tested"}

    def _title(self) -> str:
        what = "error rate" if self.metric == "error_rate" else "mean loss"
        return f"Slices where the {what} is significantly higher than on the rest"

    def _summary_lines(self) -> list[str]:
        return [
            f"{self.metric}: {fmt(self.estimate)} over n = {fmt(self.n)} rows ({fmt(self.n_dropped)} dropped); "
            f"columns: {', '.join(self.columns)}",
            f"{fmt(self.n_tested)} slices tested (order <= {self.max_order}, >= {self.min_size} rows inside and "
            f"outside), {fmt(self.n_significant)} significant at {self.adjust}-adjusted alpha = {self.alpha:g}, "
            f"{fmt(self.n_reported)} reported ({fmt(self.n_pruned)} explained by a reported parent)",
        ]

    def __str__(self) -> str:
        parts = [self._title(), *self._summary_lines()]
        if self.table.num_rows:
            parts.append(render_table(self.table, columns=_SHOWN))
        else:
            parts.append("no slice is significantly worse than the rest")
        parts += [f"note: {n}" for n in self._notes()]
        return "\n".join(parts)

    def _plot(self, ax) -> None:
        t = self.table.slice(0, 15)
        k = t.num_rows
        if k == 0:
            ax.text(0.5, 0.5, "no slice is significantly worse than the rest", ha="center", va="center")
            ax.set_axis_off()
            return
        d = t.column("difference").to_pylist()
        lo = t.column("low").to_pylist()
        hi = t.column("high").to_pylist()
        ys = list(range(k))[::-1]
        ax.errorbar(d, ys, xerr=[[x - a for x, a in zip(d, lo)], [b - x for x, b in zip(d, hi)]], fmt="o",
                    color="C3", capsize=3)
        ax.axvline(0.0, color="0.5", linewidth=1)
        ax.set_yticks(ys)
        ax.set_yticklabels([s if len(s) <= 40 else s[:37] + "..." for s in t.column("slice").to_pylist()])
        ax.set_xlabel(f"{self.metric}: inside - outside ({self.confidence:.0%} interval)")
        ax.set_title(f"top {k} slices of {self.n_reported}")


@result_dataclass
class SlicedMetricsResult(Result):
    """Every metric on every segment with its bootstrap interval, and whether it differs from the rest.

    Attributes
    ----------
    table : one row per (metric, segment): ``metric``, ``segment``, ``n`` (rows), ``estimate``, ``low``,
        ``high``, ``standard_error``, ``estimate_rest`` (the metric on the other rows), ``difference``
        (segment - rest) with ``difference_low`` / ``difference_high`` (percentile interval of the
        replicate differences), ``pvalue`` (bootstrap, two-sided), ``pvalue_adjusted`` and ``differs``
        (``pvalue_adjusted <= alpha``).
    n : rows used (summed over the segments).
    n_resamples, confidence, seed, alpha, adjust : how it was computed.
    by : the segment column(s).
    notes : remarks (undefined replicates, segments without rest).
    """

    table: pa.Table
    n: int
    n_resamples: int
    confidence: float
    seed: int
    alpha: float
    adjust: str
    by: list
    notes: list

    def _title(self) -> str:
        return f"Metrics by {', '.join(self.by)} (bootstrap, B = {self.n_resamples:,})"

    def _summary_lines(self) -> list[str]:
        k = sum(bool(x) for x in self.table.column("differs").to_pylist())
        return [f"n = {fmt(self.n)} rows; {self.confidence:.0%} percentile intervals; seed {self.seed}; "
                f"{k} (metric, segment) pair(s) differ from the rest at {self.adjust}-adjusted alpha = "
                f"{self.alpha:g}"]

    def __str__(self) -> str:
        cols = ("metric", "segment", "n", "estimate", "low", "high", "estimate_rest", "difference",
                "pvalue_adjusted", "differs")
        return "\n".join([self._title(), *self._summary_lines(), render_table(self.table, columns=cols),
                          *[f"note: {n}" for n in self._notes()]])

    def _plot(self, ax) -> None:
        t = self.table
        labels = [f"{m} | {s}" for m, s in zip(t.column("metric").to_pylist(), t.column("segment").to_pylist())]
        est = t.column("estimate").to_pylist()
        lo, hi = t.column("low").to_pylist(), t.column("high").to_pylist()
        differs = t.column("differs").to_pylist()
        ys = list(range(len(labels)))[::-1]
        for y, e, a, b, flag in zip(ys, est, lo, hi, differs):
            ax.errorbar([e], [y], xerr=[[e - a], [b - e]], fmt="o", capsize=3, color="C3" if flag else "C0")
        ax.set_yticks(ys)
        ax.set_yticklabels(labels)
        ax.set_xlabel(f"estimate ({self.confidence:.0%} interval; red: differs from the rest)")
