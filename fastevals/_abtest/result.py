"""Results of the A/B analyses, on the protocol's :class:`~fastevals._protocol.Result` base.

:class:`GTestResult` and :class:`ZTestResult` are one comparison; a sliced or
multi-arm analysis gives an :class:`ABTable` (one Arrow row per segment and
treatment, with adjusted p-values); :func:`fastevals.abtest` gives an
:class:`ABTestReport` holding both tests and the :class:`SRMResult`. ``str(result)``
is the readable report that ``fastevals abtest`` prints.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from .._protocol import ConfidenceInterval, Result, fmt, render_table, result_dataclass

__all__ = ["ABTable", "ABTestReport", "GTestResult", "SRMResult", "SampleRatioMismatchWarning", "ZTestResult"]

#: groups named one by one in a sample-ratio-mismatch message; the others are counted
SRM_SHOWN_GROUPS = 5


class SampleRatioMismatchWarning(UserWarning):
    """The group sizes do not match the expected split: the experiment's
    assignment or logging is probably broken, and its results are suspect.
    """


def _label(x) -> str:
    return "-" if x is None else str(x)


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "nan"
    text = f"{x:+.3%}"
    return "0.000%" if float(text[:-1]) == 0 else text  # never "-0.000%" for a tiny negative


@result_dataclass
class SRMResult(Result):
    """Sample-ratio-mismatch check: chi-square goodness of fit of the observed group sizes
    to the expected split.

    Attributes
    ----------
    statistic, pvalue : float
        The chi-square statistic and its p-value (``len(groups) - 1`` degrees of freedom).
    groups, observed, expected_share : tuple
        Group labels (sorted), their row counts, and the expected share of each.
    threshold : float
        ``mismatch`` is ``pvalue < threshold``.
    n : int
        Rows counted (all groups).

    Examples
    --------
    >>> from fastevals.results import SRMResult
    >>> r = SRMResult(0.4, 0.53, ("a", "b"), (510, 490), (0.5, 0.5), 0.001, 1000)
    >>> r.mismatch
    False
    """

    statistic: float
    pvalue: float
    groups: tuple
    observed: tuple
    expected_share: tuple
    threshold: float
    n: int = 0

    @property
    def mismatch(self) -> bool:
        """True when the sizes do not fit the expected split (``pvalue < threshold``)."""
        return bool(self.pvalue < self.threshold)

    def _deviations(self) -> list[tuple[Any, int, float, float]]:
        """(group, observed, expected, standardized residual), worst first."""
        total = sum(self.observed)
        out = []
        for g, o, s in zip(self.groups, self.observed, self.expected_share):
            e = total * s
            out.append((g, int(o), e, (o - e) / math.sqrt(e) if e > 0 else math.inf))
        return sorted(out, key=lambda t: -abs(t[3]))

    def message(self) -> str:
        """One readable line; over many groups it names the groups furthest from the split and counts the rest."""
        k = len(self.groups)
        if k <= SRM_SHOWN_GROUPS + 1:
            obs = ", ".join(f"{_label(g)}={n:,}" for g, n in zip(self.groups, self.observed))
            exp = ", ".join(f"{_label(g)}={s:.4g}" for g, s in zip(self.groups, self.expected_share))
            sizes = f"group sizes ({obs})"
            split = f"the expected split ({exp})"
        else:
            worst = self._deviations()[:SRM_SHOWN_GROUPS]
            shown = ", ".join(f"{_label(g)}={o:,} (expected {e:,.0f}, {o / e - 1:+.1%})" for g, o, e, _ in worst)
            sizes = f"the sizes of {k} groups (furthest from the split: {shown}; and {k - len(worst)} more groups)"
            split = "the expected split"
        if self.mismatch:
            return (f"SAMPLE RATIO MISMATCH: {sizes} do not fit {split}; p = {self.pvalue:.3g} < "
                    f"{self.threshold:g}. Check assignment and logging before trusting any result of this "
                    "experiment.")
        return f"sample ratio check passed: {sizes} fit {split}, p = {fmt(self.pvalue)}"

    def _title(self) -> str:
        return "Sample ratio check"

    def _summary_lines(self) -> list[str]:
        return [self.message()]

    def to_arrow(self) -> pa.Table:
        """One row per group: observed rows, expected share and rows, the standardized residual."""
        total = sum(self.observed)
        expected = [total * s for s in self.expected_share]
        return pa.table({
            "group": pa.array([_label(g) for g in self.groups]),
            "observed": pa.array(list(self.observed), pa.int64()),
            "expected_share": pa.array(list(self.expected_share), pa.float64()),
            "expected": pa.array(expected, pa.float64()),
            "residual": pa.array([(o - e) / math.sqrt(e) if e > 0 else math.nan
                                  for o, e in zip(self.observed, expected)], pa.float64()),
        })

    def _plot(self, ax) -> None:
        t = self.to_arrow()
        x = np.arange(t.num_rows)
        ax.bar(x - 0.2, t.column("observed").to_numpy(), width=0.4, label="observed")
        ax.bar(x + 0.2, t.column("expected").to_numpy(), width=0.4, label="expected")
        ax.set_xticks(x, t.column("group").to_pylist(), rotation=45 if t.num_rows > 6 else 0)
        ax.set_ylabel("rows")
        ax.set_title(f"Sample ratio check (p = {fmt(self.pvalue)})")
        ax.legend()


@result_dataclass
class GTestResult(Result):
    """Result of a G-test of independence on an R x C table (or a stack of them).

    Unpacks like scipy's ``Chi2ContingencyResult``:
    ``statistic, pvalue, dof, expected_freq = result``.

    Attributes
    ----------
    statistic, pvalue, dof, expected_freq
        As scipy's ``chi2_contingency(..., lambda_="log-likelihood")``.
    observed : numpy.ndarray
        The table (rows: groups, columns: outcome levels).
    correction : {None, "williams", "yates"}
    pvalue_mc : float or None
        The Monte Carlo p-value ``(1 + hits) / (N + 1)`` over ``n_monte_carlo`` random tables
        with the observed margins (None when not asked for, or skipped: see ``note``).
    small_counts : bool
        A cell under 100 or an expected count under 5: read ``pvalue_mc``.
    groups, outcomes : tuple
        Row and column labels.
    srm : SRMResult or None
        The sample-ratio check of the groups (tests on data).
    n, n_dropped : int
        Rows used, rows dropped (``nulls="drop"``).
    note : str
        Why a p-value needs care, or why the Monte Carlo p-value was skipped.
    backend : str
        Where the Monte Carlo tables were drawn ("cpu" or "cuda").

    Examples
    --------
    >>> import fastevals
    >>> statistic, pvalue, dof, expected = fastevals.g_test_counts([[120, 880], [150, 850]])
    >>> round(statistic, 4), dof
    (3.8605, 1)
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
    n: int = 0
    n_dropped: int = 0
    note: str = ""
    backend: str = "cpu"

    def __iter__(self):
        return iter((self.statistic, self.pvalue, self.dof, self.expected_freq))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return (self.statistic, self.pvalue, self.dof, self.expected_freq)[i]

    def _title(self) -> str:
        return "G-test of independence" + (f" ({self.correction} correction)" if self.correction else "")

    def _body(self) -> list[str]:
        if np.ndim(self.statistic):
            return [f"a stack of {np.size(self.statistic):,} tables of {self.observed.shape[-2]} x "
                    f"{self.observed.shape[-1]}, dof = {self.dof}"]
        mc = (f", Monte Carlo p = {fmt(self.pvalue_mc)} ({self.n_monte_carlo:,} tables)"
              if self.pvalue_mc is not None else "")
        lines = [f"G = {fmt(self.statistic, 6)}, dof = {self.dof}, p = {fmt(self.pvalue)}{mc}"]
        obs = np.asarray(self.observed)
        if obs.ndim == 2:
            rows = [_label(g) for g in self.groups] if len(self.groups) == obs.shape[0] else \
                [str(i) for i in range(obs.shape[0])]
            cols = [_label(o) for o in self.outcomes] if len(self.outcomes) == obs.shape[1] else \
                [str(j) for j in range(obs.shape[1])]
            names = ["group", *dict.fromkeys(cols)]
            if len(names) == len(cols) + 1:
                data: dict[str, list] = {"group": rows}
                for j, c in enumerate(cols):
                    data[c] = [int(x) if float(x).is_integer() else float(x) for x in obs[:, j]]
                lines.append(render_table(pa.table(data)))
        return lines

    def _summary_lines(self) -> list[str]:
        lines = [] if self.srm is None else [self.srm.message()]
        return lines + self._body()

    def _notes(self) -> list[str]:
        return [self.note] if self.note else []

    def _plot(self, ax) -> None:
        obs = np.asarray(self.observed, dtype=float)
        if obs.ndim != 2:
            raise ValueError("plot() draws one table; this result holds a stack of tables")
        share = obs / obs.sum(axis=1, keepdims=True)
        labels = [_label(g) for g in self.groups] if len(self.groups) == obs.shape[0] else \
            [str(i) for i in range(obs.shape[0])]
        outcomes = [_label(o) for o in self.outcomes] if len(self.outcomes) == obs.shape[1] else \
            [str(j) for j in range(obs.shape[1])]
        left = np.zeros(obs.shape[0])
        for j in range(obs.shape[1]):
            ax.barh(labels, share[:, j], left=left, label=outcomes[j])
            left += share[:, j]
        ax.set_xlabel("share of rows")
        ax.set_title(f"G = {fmt(self.statistic)}, p = {fmt(self.pvalue)}")
        ax.legend(title="outcome")


@result_dataclass
class ZTestResult(Result):
    """Result of a two-sample z-test of ``treatment`` against ``control``.

    ``difference`` is treatment minus control (with its ``confidence_interval``),
    ``relative_difference`` the lift (treatment / control - 1) with a delta-method
    interval ``relative_difference_ci``.

    With covariates (regression adjustment, CUPED) ``difference`` is the adjusted
    difference, ``variance_reduction`` is ``1 - adjusted variance / plain variance``
    of the difference, and ``extra_sample_size`` the rows that a plain test would
    need in addition to ``n_control + n_treatment`` for the same standard error.
    With a ``denominator`` the means are ratios of sums (``sum(value) / sum(denominator)``
    per group). ``control_source`` says how the control was chosen (given, or picked:
    then a note says which, in words).

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> data = {"variant": np.repeat(["a", "b"], 500), "y": np.tile([0.0, 1.0, 2.0, 3.0], 250)}
    >>> res = fastevals.z_test(data, group="variant", value="y")
    >>> res.control, res.control_source
    ('a', 'the first group in sorted order')
    """

    statistic: float
    pvalue: float
    difference: float
    confidence_interval: ConfidenceInterval
    relative_difference: float
    relative_difference_ci: ConfidenceInterval
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
    control_source: str = "given"
    value: str | None = None
    srm: SRMResult | None = None
    n: int = 0
    n_dropped: int = 0
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

    def __iter__(self):
        return iter((self.statistic, self.pvalue))

    def _title(self) -> str:
        on = f" on {self.value}" if self.value else ""
        return f"z-test ({self.kind}){on}: treatment vs control"

    def _body(self) -> list[str]:
        lo, hi = self.confidence_interval
        rlo, rhi = self.relative_difference_ci
        lines = [
            f"control   ({_label(self.control)}): n = {self.n_control:,}, mean = {fmt(self.mean_control, 6)}",
            f"treatment ({_label(self.treatment)}): n = {self.n_treatment:,}, mean = {fmt(self.mean_treatment, 6)}",
            f"difference = {fmt(self.difference, 6)}  [{fmt(lo, 6)}, {fmt(hi, 6)}] ({self.confidence:.0%})",
            f"relative = {_pct(self.relative_difference)}  [{_pct(rlo)}, {_pct(rhi)}]",
            f"z = {fmt(self.statistic)}, p = {fmt(self.pvalue)} ({self.alternative}, margin {fmt(self.margin)})",
        ]
        if self.denominator is not None:
            lines.append(f"ratio metric: sum({self.value or 'value'}) / sum({self.denominator}) per group, "
                         "delta-method standard error")
        if self.covariates:
            theta = ", ".join(f"{c} {fmt(t)}" for c, t in zip(self.covariates, self.theta))
            lines.append(f"adjusted for {theta} ({self.variance} standard error {fmt(self.standard_error)}, "
                         f"unadjusted {fmt(self.standard_error_unadjusted)})")
            lines.append(f"variance reduction = {self.variance_reduction:.1%} (worth "
                         f"{self.extra_sample_size:,.0f} more rows of a plain test)")
        return lines

    def _summary_lines(self) -> list[str]:
        lines = [] if self.srm is None else [self.srm.message()]
        return lines + self._body()

    def _notes(self) -> list[str]:
        out = []
        if self.control_source != "given":
            out.append(_control_note(self.control, self.control_source))
        if self.note:
            out.append(self.note)
        return out

    def _plot(self, ax) -> None:
        lo, hi = self.confidence_interval
        d = self.difference
        ax.errorbar([d], [0], xerr=[[d - lo], [hi - d]], fmt="o", capsize=4)
        ax.axvline(self.margin, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks([0], [f"{_label(self.treatment)} - {_label(self.control)}"])
        ax.set_xlabel(f"difference in {self.kind} ({self.confidence:.0%} interval)")
        ax.set_title(f"z = {fmt(self.statistic)}, p = {fmt(self.pvalue)}")


def _control_note(control, source: str) -> str:
    return (f"no control given: the control is {_label(control)!r}, {source} "
            "(pass control= / --control to choose another)")


#: columns of a z-test table that the text report leaves out (they stay in to_arrow / --json)
_Z_HIDDEN = ("note", "standard_error_unadjusted", "relative_difference_low", "relative_difference_high",
             "adjusted_mean_control", "adjusted_mean_treatment", "extra_sample_size")


@result_dataclass
class ABTable(Result):
    """A sliced (or multi-arm) analysis: one Arrow table row per segment and treatment,
    with p-values adjusted across rows (``pvalue_adjusted``).

    ``test`` is ``"g_test"`` or ``"z_test[...]"``; ``control`` (z-tests) is the control group and
    ``control_source`` how it was chosen. ``notes`` explain rows that need care.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> data = {"variant": np.tile(["a", "b"], 500), "device": np.repeat(["ios", "web"], 500),
    ...         "y": np.arange(1000) % 7 == 0}
    >>> tab = fastevals.g_test(data, group="variant", outcome="y", by="device")
    >>> len(tab), tab.table.column_names[:2]
    (2, ['device', 'n'])
    """

    table: pa.Table
    test: str
    adjust: str | None
    n: int = 0
    n_dropped: int = 0
    control: Any = None
    control_source: str = ""
    by: tuple = ()
    srm: SRMResult | None = None
    notes: tuple = ()

    def to_pylist(self) -> list[dict]:
        """The rows as dicts."""
        return self.table.to_pylist()

    def column(self, name: str) -> np.ndarray:
        """One column of the table as a NumPy array."""
        return self.table.column(name).to_numpy(zero_copy_only=False)

    def __len__(self) -> int:
        return self.table.num_rows

    def _title(self) -> str:
        by = f" by {', '.join(self.by)}" if self.by else ""
        what = "G-test" if self.test == "g_test" else self.test.replace("z_test", "z-test")
        return f"{what}{by}: {self.table.num_rows:,} row(s), p-values adjusted by {self.adjust or 'nothing'}"

    def _text_columns(self) -> list[str]:
        return [c for c in self.table.column_names if c not in _Z_HIDDEN and not c.startswith("theta[")]

    def _body(self) -> list[str]:
        return [render_table(self.table, columns=self._text_columns())]

    def _summary_lines(self) -> list[str]:
        return [] if self.srm is None else [self.srm.message()]

    def _notes(self) -> list[str]:
        out = []
        if self.control is not None and self.control_source not in ("", "given"):
            out.append(_control_note(self.control, self.control_source))
        out.extend(self.notes)
        return out

    def __str__(self) -> str:
        return "\n".join([self._title(), *self._summary_lines(), *self._body(),
                          *(f"note: {n}" for n in self._notes())])

    def _row_labels(self) -> list[str]:
        names = list(self.by) + (["treatment"] if "treatment" in self.table.column_names else [])
        rows = self.table.select(names).to_pylist() if names else [{}] * self.table.num_rows
        return [" / ".join(_label(r[c]) for c in names) or str(i) for i, r in enumerate(rows)]

    def _plot(self, ax) -> None:
        labels = self._row_labels()
        y = np.arange(len(labels))
        if self.test == "g_test":
            p = np.clip(self.column("pvalue_adjusted").astype(float), 1e-300, 1)
            ax.barh(y, -np.log10(p))
            ax.axvline(-math.log10(0.05), color="grey", linestyle="--", linewidth=1, label="p = 0.05")
            ax.set_xlabel("-log10 adjusted p-value")
            ax.legend()
        else:
            d = self.column("difference").astype(float)
            lo, hi = self.column("low").astype(float), self.column("high").astype(float)
            ax.errorbar(d, y, xerr=[d - lo, hi - d], fmt="o", capsize=3)
            ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
            ax.set_xlabel("difference (treatment - control) with its interval")
        ax.set_yticks(y, labels)
        ax.set_title(self._title().split(":")[0])


@result_dataclass
class ABTestReport(Result):
    """What :func:`fastevals.abtest` found in one pass: the G-test on ``outcome``, the z-test
    on ``value`` and the sample-ratio check.

    ``str(report)`` is the report ``fastevals abtest`` prints; ``to_arrow()`` gives one row per
    test (for a sliced test, its smallest adjusted p-value). ``control`` is the z-test's control
    (None without a z-test); ``sample_ratio_mismatch`` is ``srm.mismatch``.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(2)
    >>> data = {"variant": rng.choice(["control", "new"], 2000), "converted": rng.random(2000) < 0.1}
    >>> rep = fastevals.abtest(data, group="variant", outcome="converted")
    >>> rep.g_test.dof, rep.z_test is None, rep.n
    (1, True, 2000)
    """

    n: int
    n_dropped: int
    group: str
    outcome: str | None
    value: str | None
    by: tuple
    control: Any
    sample_ratio_mismatch: bool
    g_test: GTestResult | ABTable | None
    z_test: ZTestResult | ABTable | None
    srm: SRMResult

    def _title(self) -> str:
        return f"A/B test of {self.group}"

    def _summary_lines(self) -> list[str]:
        rows = f"rows used: {self.n:,}" + (f", dropped (nulls, NaN, inf): {self.n_dropped:,}"
                                           if self.n_dropped else "")
        lines = [rows]
        if self.srm.mismatch:
            bar = "!" * 78
            lines += [bar, self.srm.message(), bar]
        else:
            lines.append(self.srm.message())
        by = f" by {', '.join(self.by)}" if self.by else ""
        g = self.g_test
        if g is not None:
            lines += ["", f"G-test: {self.group} x {self.outcome}{by}"]
            lines += (g._body() if isinstance(g, ABTable) else ["  " + x for x in g._body()[:1]] + g._body()[1:])
            lines += [f"note: {n}" for n in dict.fromkeys(g._notes())]
        z = self.z_test
        if z is not None:
            kind = z.kind if isinstance(z, ZTestResult) else z.test.split("[", 1)[-1].rstrip("]")
            lines += ["", f"z-test ({kind}) on {self.value}{by}: treatment vs control"]
            lines += (z._body() if isinstance(z, ABTable) else ["  " + x for x in z._body()])
            lines += [f"note: {n}" for n in dict.fromkeys(z._notes())]
        return lines

    def to_arrow(self) -> pa.Table:
        """One row per part: the sample-ratio check, the G-test, the z-test."""
        parts, stats, pvals, rows = ["srm"], [self.srm.statistic], [self.srm.pvalue], [1]
        for name, r in (("g_test", self.g_test), ("z_test", self.z_test)):
            if r is None:
                continue
            parts.append(name)
            if isinstance(r, ABTable):
                p = r.column("pvalue_adjusted").astype(float)
                stats.append(math.nan)
                pvals.append(float(np.nanmin(p)) if np.isfinite(p).any() else math.nan)
                rows.append(len(r))
            else:
                stats.append(float(r.statistic))
                pvals.append(float(r.pvalue))
                rows.append(1)
        return pa.table({"test": parts, "statistic": pa.array(stats, pa.float64()),
                         "pvalue": pa.array(pvals, pa.float64()), "rows": pa.array(rows, pa.int64())})

    def _plot(self, ax) -> None:
        part = self.z_test if self.z_test is not None else self.g_test
        if part is None:  # pragma: no cover - abtest always has one
            raise ValueError("nothing to plot")
        part._plot(ax)
