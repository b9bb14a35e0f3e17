"""Results of model comparison: :class:`CompareModelsResult`, :class:`McNemarResult`,
:class:`BootstrapModelsResult`.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from scipy import special

from .._protocol import ConfidenceInterval, Result, fmt, render_table, result_dataclass
from .._validation import check_probability

_DIRECTION = {True: "higher is better", False: "lower is better"}


@result_dataclass
class CompareModelsResult(Result):
    """K models compared on the same items (see :func:`compare_models`).

    One model: ``estimate`` is its metric.  Two models: ``estimate`` is the paired
    difference ``metric(models[0]) - metric(models[1])`` with its
    ``confidence_interval``, ``pvalue`` and ``mdd``.  More: ``table`` has one row per
    pair (``model_a``, ``model_b``, ``estimate`` = a - b, ``standard_error``
    (analytic, paired), ``low``/``high`` (the bootstrap percentile interval, or the
    analytic one when ``n_resamples=0``), ``analytic_low``/``analytic_high``,
    ``bootstrap_se``, ``pvalue``, ``pvalue_adjusted``, ``mdd``, and for accuracy
    ``n_a_only``/``n_b_only``, McNemar's discordant counts).  ``models_table`` has
    one row per model: its metric, interval and rank (``rank``, ``mean_rank``,
    ``rank_low``/``rank_high``, ``p_best`` over the bootstrap replicates).

    Attributes
    ----------
    metric, models, estimate, standard_error, confidence_interval, pvalue, mdd
        See above (``mdd``: the minimum detectable difference at 80% power).
    test, adjust : str
        The pairwise test and the p-value adjustment across pairs.
    n, n_dropped, n_clusters, n_resamples, seed, keyed_by
        Rows used and dropped, clusters (None without ``cluster=``), bootstrap
        replicates, their seed, and what their weights are keyed by.
    higher_is_better : bool
        Direction of the ranking.
    table, models_table : pyarrow.Table
    notes : tuple of str

    Examples
    --------
    >>> import fastevals
    >>> from fastevals._compare import demo_reviews
    >>> res = fastevals.compare_models(demo_reviews(n=400, seed=1), models=["llama3.1_8b", "llama3.2_3b"],
    ...                                label="rating", metric="rmse", n_resamples=200, seed=0)
    >>> round(res.estimate, 3) < 0
    True
    """

    metric: str
    models: tuple
    estimate: float | None
    standard_error: float | None
    confidence_interval: ConfidenceInterval | None
    pvalue: float | None
    mdd: float | None
    test: str
    adjust: str
    n: int
    n_dropped: int
    n_clusters: int | None
    n_resamples: int
    seed: int
    keyed_by: str
    higher_is_better: bool
    table: pa.Table
    models_table: pa.Table
    notes: tuple

    @classmethod
    def build(cls, *, ci, confidence, method, estimate, standard_error, pvalue, mdd, **kw):
        def f(x):
            return None if x is None else float(x)

        interval = None if ci is None else ConfidenceInterval(ci[0], ci[1], confidence=confidence, method=method)
        return cls(estimate=f(estimate), standard_error=f(standard_error), confidence_interval=interval,
                   pvalue=f(pvalue), mdd=f(mdd), **kw)

    @property
    def pairs(self) -> pa.Table:
        """One row per pair of models (also ``table`` when there are two or more models)."""
        return self.table if len(self.models) > 1 else self.table.slice(0, 0)

    def sample_size(self, difference: float, *, power: float = 0.8, confidence: float | None = None):
        """Items needed to detect ``difference`` between each pair (Miller 2024, eq. 8).

        ``n ((z_{1-alpha/2} + z_power) se / difference)^2`` with ``se`` the pair's
        observed paired standard error on ``n`` items (clustering included): one number
        for two models, an array in ``table`` order for more.

        Parameters
        ----------
        difference : float
            The true difference in the metric to detect (non-zero).
        power : float, default 0.8
        confidence : float, optional
            Defaults to the interval's confidence.

        Returns
        -------
        float or numpy.ndarray
        """
        power = check_probability("power", power)
        conf = check_probability("confidence", confidence if confidence is not None else
                                 (self.confidence_interval.confidence if self.confidence_interval else 0.95))
        if not isinstance(difference, (int, float)) or difference == 0 or not math.isfinite(difference):
            raise ValueError(f"`difference` must be a non-zero finite number; got {difference!r}")
        se = self.pairs.column("standard_error").to_numpy()
        z = special.ndtri(0.5 + conf / 2.0) + special.ndtri(power)
        n_needed = np.ceil(self.n * (z * se / difference) ** 2)
        return float(n_needed[0]) if len(self.models) == 2 else n_needed

    def _title(self) -> str:
        k = len(self.models)
        what = "model" if k == 1 else "models"
        return (f"Model comparison: {self.metric} of {k} {what} ({_DIRECTION[self.higher_is_better]}), "
                f"{self.n:,} rows")

    def _summary_lines(self) -> list[str]:
        lines = []
        keyed = {"row": "rows", "item": "items", "cluster": "clusters"}[self.keyed_by]
        boot = (f"paired Poisson bootstrap, {self.n_resamples:,} replicates keyed by {keyed}, seed {self.seed}"
                if self.n_resamples else "no bootstrap (analytic intervals)")
        se = "cluster-robust (CR1) SE over " + f"{self.n_clusters:,} clusters" if self.n_clusters else "paired SE"
        lines.append(f"{boot}; {se}; test: {self.test}; adjust: {self.adjust}")
        if self.n_dropped:
            lines.append(f"rows dropped (nulls/NaN): {self.n_dropped:,}")
        k = len(self.models)
        if k == 2:
            a, b = self.models
            ci = self.confidence_interval
            assert ci is not None  # set whenever there are one or two models
            lines.append(f"{self.metric}({a}) - {self.metric}({b}) = {fmt(self.estimate)}  "
                         f"{ci.confidence:.0%} CI {fmt(ci)}  SE {fmt(self.standard_error)}  "
                         f"p = {fmt(self.pvalue)}  (minimum detectable difference {fmt(self.mdd)})")
            lines.append(self.verdict())
        if k > 1:
            lines.append(render_table(self.models_table, columns=["model", "estimate", "standard_error", "low",
                                                                  "high", "rank", "rank_low", "rank_high",
                                                                  "p_best"]))
        else:
            ci = self.confidence_interval
            assert ci is not None  # set whenever there are one or two models
            lines.append(f"{self.metric}({self.models[0]}) = {fmt(self.estimate)}  "
                         f"{ci.confidence:.0%} CI {fmt(ci)}  SE {fmt(self.standard_error)}")
        return lines

    def __str__(self) -> str:
        parts = [self._title(), *self._summary_lines()]
        if len(self.models) > 1:
            parts.append(render_table(self.table, columns=["model_a", "model_b", "estimate", "standard_error",
                                                           "low", "high", "pvalue", "pvalue_adjusted", "mdd"]))
        parts += [f"note: {n}" for n in self._notes()]
        return "\n".join(parts)

    def verdict(self) -> str:
        """The two-model answer in words."""
        if len(self.models) != 2:
            raise ValueError("verdict() speaks of two models; read `table` for more")
        a, b = self.models
        ci = self.confidence_interval
        if ci is None or math.isnan(ci.low) or math.isnan(ci.high):
            return "no conclusion: the interval is undefined"
        if ci.low > 0 or ci.high < 0:
            a_better = (ci.low > 0) == self.higher_is_better
            best, other = (a, b) if a_better else (b, a)
            return (f"{best} is better than {other} on {self.metric}: the {ci.confidence:.0%} interval of the "
                    f"difference excludes 0")
        return (f"no significant difference in {self.metric} between {a} and {b}: the "
                f"{ci.confidence:.0%} interval of the difference contains 0")

    def _plot(self, ax) -> None:
        """Forest plot of the pairwise differences (or the models' metrics for one model)."""
        t = self.table if len(self.models) > 1 else self.models_table
        est = t.column("estimate").to_numpy()
        lo = t.column("low").to_numpy()
        hi = t.column("high").to_numpy()
        if len(self.models) > 1:
            labels = [f"{a} - {b}" for a, b in zip(t.column("model_a").to_pylist(), t.column("model_b").to_pylist())]
        else:
            labels = t.column("model").to_pylist()
        y = np.arange(len(est))[::-1]
        ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color="C0", capsize=3)
        ax.axvline(0.0, color="0.5", lw=1, ls="--")
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.set_xlabel(f"difference in {self.metric}" if len(self.models) > 1 else self.metric)
        ax.set_title(self._title())


@result_dataclass
class McNemarResult(Result):
    """McNemar's test of two models' correct/incorrect outcomes on the same items (see :func:`mcnemar`).

    Attributes
    ----------
    statistic : float
        ``min(n_a_only, n_b_only)`` for the exact and mid-p tests (as statsmodels),
        the chi-square statistic for ``method="chi2"``.
    pvalue : float
        The p-value of ``method``.
    method : str
        ``"exact"`` (binomial), ``"midp"``, ``"chi2"`` (continuity corrected) or
        ``"chi2-uncorrected"``.
    pvalue_exact, pvalue_midp, pvalue_chi2 : float
        All three (``pvalue_chi2`` with the continuity correction).
    estimate : float
        The difference in accuracy ``acc(a) - acc(b) = (n_a_only - n_b_only) / n``.
    n_a_only, n_b_only : int
        Items only model a / only model b got right (the discordant pairs).
    n_both, n_neither : int
    models : tuple
    n, n_dropped : int

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> y = np.array([1, 0, 1, 1, 0, 1, 0, 1])
    >>> r = fastevals.mcnemar({"y": y, "a": y, "b": np.array([0, 0, 1, 0, 0, 1, 1, 1])}, models=["a", "b"],
    ...                       label="y")
    >>> (r.n_a_only, r.n_b_only, round(r.pvalue, 4))
    (3, 0, 0.25)
    """

    statistic: float
    pvalue: float
    method: str
    pvalue_exact: float
    pvalue_midp: float
    pvalue_chi2: float
    estimate: float
    n_a_only: int
    n_b_only: int
    n_both: int
    n_neither: int
    models: tuple
    n: int
    n_dropped: int

    def _title(self) -> str:
        a, b = self.models
        return f"McNemar's test: {a} vs {b} ({self.method}), {self.n:,} items"

    def _summary_lines(self) -> list[str]:
        a, b = self.models
        return [
            f"only {a} right: {self.n_a_only:,}   only {b} right: {self.n_b_only:,}   both: {self.n_both:,}   "
            f"neither: {self.n_neither:,}",
            f"accuracy({a}) - accuracy({b}) = {fmt(self.estimate)}",
            f"statistic {fmt(self.statistic)}   p = {fmt(self.pvalue)}   (exact {fmt(self.pvalue_exact)}, "
            f"mid-p {fmt(self.pvalue_midp)}, chi2 {fmt(self.pvalue_chi2)})",
        ]

    def _plot(self, ax) -> None:
        a, b = self.models
        m = np.array([[self.n_both, self.n_a_only], [self.n_b_only, self.n_neither]])
        ax.imshow(m, cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center")
        ax.set_xticks([0, 1])
        ax.set_xticklabels([f"{b} right", f"{b} wrong"])
        ax.set_yticks([0, 1])
        ax.set_yticklabels([f"{a} right", f"{a} wrong"])
        ax.set_title(self._title())


@result_dataclass
class BootstrapModelsResult(Result):
    """Models refit on bootstrap samples: the metric's interval and prediction intervals (see :func:`bootstrap_models`).

    Attributes
    ----------
    estimate : float
        The metric of the estimator fit on all the data (on ``X_eval``/``y_eval``,
        or in-sample when none is given), or the mean out-of-bag metric.
    standard_error : float
        Standard deviation of the replicates' metrics.
    confidence_interval : ConfidenceInterval
        Percentile interval of the replicates' metrics (out-of-bag or on the eval set).
    metric, evaluated_on : str
    replicates : numpy.ndarray
        The metric of each refit model (NaN where it could not be computed).
    table : pyarrow.Table or None
        With ``X_predict``: per feature vector ``prediction`` (the full model's),
        ``low``/``high`` (percentile of the refit models' predictions: where the
        regression function lies) and ``pi_low``/``pi_high`` (residual-augmented:
        where a new observation lies).
    n, n_resamples, seed, fit_with : int, int, int, str
        ``fit_with``: ``"sample_weight"`` or ``"resampled rows"``.
    notes : tuple of str
    """

    estimate: float
    standard_error: float
    confidence_interval: ConfidenceInterval
    metric: str
    evaluated_on: str
    replicates: np.ndarray
    table: pa.Table | None
    n: int
    n_resamples: int
    seed: int
    fit_with: str
    notes: tuple

    def _title(self) -> str:
        return (f"Bootstrap of refit models: {self.metric} ({self.evaluated_on}), {self.n_resamples} refits on "
                f"{self.n:,} rows ({self.fit_with})")

    def _summary_lines(self) -> list[str]:
        ci = self.confidence_interval
        return [f"{self.metric} = {fmt(self.estimate)}  {ci.confidence:.0%} CI {fmt(ci)}  "
                f"SE {fmt(self.standard_error)}"]

    def _plot(self, ax) -> None:
        r = self.replicates[np.isfinite(self.replicates)]
        ax.hist(r, bins=min(40, max(5, r.size // 3)), color="C0", alpha=0.7)
        ci = self.confidence_interval
        for v in (ci.low, ci.high):
            ax.axvline(v, color="C3", ls="--")
        ax.axvline(self.estimate, color="k")
        ax.set_xlabel(self.metric)
        ax.set_title(self._title())
