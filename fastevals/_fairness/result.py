"""The fairness result, and its construction from a folded :class:`FairnessState`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._protocol import ConfidenceInterval, Result, fmt, optional_import, render_table, result_dataclass
from . import _math as fm

_PRETTY = {
    "demographic_parity_difference": "demographic parity difference",
    "demographic_parity_ratio": "demographic parity ratio",
    "equal_opportunity_difference": "equal opportunity difference",
    "equalized_odds_difference": "equalized odds difference",
}


@result_dataclass
class FairnessResult(Result):
    """Fairness of binary predictions across the groups of one or more sensitive columns.

    Attributes
    ----------
    demographic_parity_difference, demographic_parity_ratio, equal_opportunity_difference, \
equalized_odds_difference : float
        The disparities over all rows (fairlearn's definitions: max - min over groups of the
        selection rate, min / max of it, max - min of the true positive rate, the larger of the
        TPR and FPR differences).
    *_ci : ConfidenceInterval or None
        Poisson-bootstrap percentile interval of each disparity: the disparity (max - min over
        groups) is recomputed in every replicate from the replicate's weighted counts.  None
        when ``n_resamples=0``.
    *_pvalue : float
        G-test p-value: prediction x group (demographic parity, difference and ratio), the same
        among label-1 rows (equal opportunity), and the conditional G-test of prediction x group
        given the label (equalized odds: the label-0 and label-1 G statistics summed, with
        their degrees of freedom summed).
    table : pyarrow.Table
        One row per group (per segment and group with ``by``): ``n``, ``positives`` (label 1),
        then ``selection_rate``, ``true_positive_rate``, ``false_positive_rate``, ``precision``,
        ``accuracy``, each with a Wilson interval (``*_low`` / ``*_high``).  Also ``groups``.
    disparities : pyarrow.Table
        One row per disparity (per segment and disparity with ``by``): ``metric``, ``estimate``,
        ``low``, ``high``, ``pvalue``.
    curve : pyarrow.Table or None
        With ``thresholds``: one row per threshold, the overall selection rate and accuracy and
        every disparity with its interval.
    sensitive : tuple of str
        The sensitive column(s).
    threshold : float or None
        The threshold applied to ``score`` (None when a ``prediction`` column was given).
    n, n_dropped : int
        Rows used, rows dropped (nulls / NaN with ``nulls="drop"``).
    n_resamples, confidence, seed
        The bootstrap's replicates, the intervals' confidence level, the seed.
    notes : tuple of str
        Why a number is undefined, and other warnings.
    """

    demographic_parity_difference: float
    demographic_parity_difference_ci: ConfidenceInterval | None
    demographic_parity_difference_pvalue: float
    demographic_parity_ratio: float
    demographic_parity_ratio_ci: ConfidenceInterval | None
    demographic_parity_ratio_pvalue: float
    equal_opportunity_difference: float
    equal_opportunity_difference_ci: ConfidenceInterval | None
    equal_opportunity_difference_pvalue: float
    equalized_odds_difference: float
    equalized_odds_difference_ci: ConfidenceInterval | None
    equalized_odds_difference_pvalue: float
    table: pa.Table
    disparities: pa.Table
    curve: pa.Table | None
    sensitive: tuple
    threshold: float | None
    n: int
    n_dropped: int
    n_resamples: int
    confidence: float
    seed: int
    notes: tuple

    @property
    def groups(self) -> pa.Table:
        """The per-group table (the same as ``table``)."""
        return self.table

    def _title(self) -> str:
        boot = f", {self.n_resamples:,} Poisson-bootstrap replicates" if self.n_resamples else ""
        keys = zip(*(self.table.column(c).to_pylist() for c in self.sensitive))
        return f"Fairness across {', '.join(self.sensitive)} ({len(set(keys))} groups, n={self.n:,}{boot})"

    def __str__(self) -> str:
        # the one renderer (the CLI prints it): the per-group table with each rate and its
        # interval in one column, so that it fits a terminal
        names = self.table.column_names
        labels = names[: names.index("n")]
        shown = {c: self.table.column(c) for c in (*labels, "n", "positives")}
        for rate in fm.RATES:
            est, lo, hi = (self.table.column(c).to_pylist() for c in (rate, f"{rate}_low", f"{rate}_high"))
            shown[rate.replace("true_positive_rate", "tpr").replace("false_positive_rate", "fpr")] = [
                f"{fmt(e, 3)} [{fmt(a, 3)}, {fmt(b, 3)}]" for e, a, b in zip(est, lo, hi)]
        parts = [self._title(), *self._summary_lines(), render_table(src.arrow_table(shown), max_rows=50)]
        parts += [f"note: {n}" for n in self._notes()]
        return "\n".join(parts)

    def _summary_lines(self) -> list[str]:
        out = []
        if self.threshold is not None:
            out.append(f"prediction: score >= {fmt(self.threshold)}")
        width = max(len(v) for v in _PRETTY.values())
        for name, pretty in _PRETTY.items():
            ci = getattr(self, f"{name}_ci")
            ci_text = "" if ci is None else f"  {self.confidence:.0%} CI {fmt(ci)}"
            out.append(f"{pretty:<{width}}  {fmt(getattr(self, name))}{ci_text}  "
                       f"p={fmt(getattr(self, f'{name}_pvalue'))}")
        if self.disparities.num_rows > 4:
            out.append("by segment:")
            out.append(render_table(self.disparities, max_rows=40))
        return out

    def _plot(self, ax) -> None:
        names = list(_PRETTY)
        est = np.array([getattr(self, n) for n in names], dtype=float)
        y = np.arange(len(names))[::-1]
        ax.barh(y, est, color="#4C72B0", alpha=0.8)
        cis = [getattr(self, f"{n}_ci") for n in names]
        if all(ci is not None for ci in cis):
            lo = np.array([ci.low for ci in cis])
            hi = np.array([ci.high for ci in cis])
            ax.errorbar(est, y, xerr=[np.maximum(est - lo, 0), np.maximum(hi - est, 0)], fmt="none",
                        ecolor="black", capsize=4)
        ax.axvline(0.8, color="grey", ls=":", lw=1)
        ax.set_yticks(y)
        ax.set_yticklabels([_PRETTY[n] for n in names])
        ax.set_xlabel(f"disparity ({self.confidence:.0%} bootstrap interval); dotted: four-fifths ratio")
        ax.set_title(f"Fairness across {', '.join(self.sensitive)}")

    def plot_curve(self, ax=None, path=None):
        """Draw the disparities against the threshold (needs ``thresholds=``); returns the Axes."""
        if self.curve is None:
            raise ValueError("this result has no threshold sweep: pass `score=` and `thresholds=` to fairness()")
        plt = optional_import("matplotlib.pyplot", "plot_curve()")
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        t = np.asarray(self.curve.column("threshold").to_numpy())
        for name in ("demographic_parity_difference", "equal_opportunity_difference", "equalized_odds_difference"):
            line, = ax.plot(t, self.curve.column(name).to_numpy(), label=_PRETTY[name])
            if f"{name}_low" in self.curve.column_names:
                ax.fill_between(t, self.curve.column(f"{name}_low").to_numpy(),
                                self.curve.column(f"{name}_high").to_numpy(), color=line.get_color(), alpha=0.2)
        ax.set_xlabel("threshold")
        ax.set_ylabel("disparity")
        ax.legend()
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(path)
        return ax


# ------------------------------------------------------------------------------------------------
# construction


def _label_columns(names: list[str], labels: list) -> dict[str, list]:
    if len(names) == 1:
        return {names[0]: list(labels)}
    return {name: [lab[k] for lab in labels] for k, name in enumerate(names)}


def _describe(names, label) -> str:
    if len(names) == 1:
        return f"{names[0]}={label!r}"
    return ", ".join(f"{n}={v!r}" for n, v in zip(names, label))


def build_result(st) -> FairnessResult:
    notes: list[str] = []
    groups = list(st.groups.labels)
    if len(groups) < 2:
        raise ValueError(f"the sensitive column(s) {st.sensitive!r} have {len(groups)} group(s) in the data "
                         f"({groups!r}); fairness compares at least two groups")
    j = None if st.score is None else st.cuts.index(st.threshold)
    conf_seg = fm.confusion_at(st.own, j)  # (S, G, 2, 2)
    conf = conf_seg.sum(axis=0)  # (G, 2, 2)
    B = st.n_resamples
    reps_all = fm.confusion_at(st.rep, j).sum(axis=1) if B else None  # (B, G, 2, 2)

    # undefined rates
    parts = fm.rate_parts(conf)
    for rate, what, side in (("true_positive_rate", "label 1", "equal opportunity and equalized odds"),
                             ("false_positive_rate", "label 0", "equalized odds")):
        missing = [groups[i] for i in np.flatnonzero(parts[rate][1] == 0)]
        if missing:
            notes.append(f"{len(missing)} group(s) have no rows with {what} ({', '.join(map(repr, missing[:5]))}): "
                         f"their {rate.replace('_', ' ')} is undefined and left out of the {side} difference")

    est = {k: float(v) for k, v in fm.disparities(conf).items()}
    tests = fm.disparity_tests(conf)
    cis: dict[str, ConfidenceInterval | None] = dict.fromkeys(fm.DISPARITIES)
    if B:
        assert reps_all is not None  # drawn when B > 0
        rep_d = fm.disparities(reps_all)
        for name in fm.DISPARITIES:
            lo, hi, bad = fm.percentile_interval(rep_d[name], st.confidence)
            cis[name] = ConfidenceInterval(lo, hi, confidence=st.confidence, method="poisson-bootstrap percentile")
            if bad and not np.isnan(est[name]):
                notes.append(f"{int(bad)} of {B:,} bootstrap replicates left the {_PRETTY[name]} undefined "
                             "(a group lost all its rows of a kind); the interval uses the others")
    else:
        notes.append("n_resamples=0: no bootstrap intervals for the disparities")
    for name in fm.DISPARITIES:
        if np.isnan(est[name]):
            why = ("every group's selection rate is 0" if name == "demographic_parity_ratio"
                   else "no group has the rows it needs (see the notes above)")
            notes.append(f"the {_PRETTY[name]} is undefined: {why}")

    table = _groups_table(st, conf_seg, conf, groups)
    disp = _disparities_table(st, conf_seg, est, cis, tests, B, j)
    curve = _curve(st) if st.thresholds is not None else None
    return FairnessResult(
        demographic_parity_difference=est["demographic_parity_difference"],
        demographic_parity_difference_ci=cis["demographic_parity_difference"],
        demographic_parity_difference_pvalue=tests["demographic_parity_difference"],
        demographic_parity_ratio=est["demographic_parity_ratio"],
        demographic_parity_ratio_ci=cis["demographic_parity_ratio"],
        demographic_parity_ratio_pvalue=tests["demographic_parity_ratio"],
        equal_opportunity_difference=est["equal_opportunity_difference"],
        equal_opportunity_difference_ci=cis["equal_opportunity_difference"],
        equal_opportunity_difference_pvalue=tests["equal_opportunity_difference"],
        equalized_odds_difference=est["equalized_odds_difference"],
        equalized_odds_difference_ci=cis["equalized_odds_difference"],
        equalized_odds_difference_pvalue=tests["equalized_odds_difference"],
        table=table, disparities=disp, curve=curve, sensitive=tuple(st.sensitive),
        threshold=None if st.score is None else st.threshold, n=st.n, n_dropped=st.n_dropped,
        n_resamples=B, confidence=st.confidence, seed=st.seed, notes=tuple(notes),
    )


def _rate_columns(conf: np.ndarray, confidence: float) -> dict:
    cols: dict = {}
    parts = fm.rate_parts(conf)
    cols["n"] = parts["selection_rate"][1].astype(np.int64)
    cols["positives"] = (conf[..., 1, 0] + conf[..., 1, 1]).astype(np.int64)
    for rate in fm.RATES:
        k, n = parts[rate]
        lo, hi = fm.wilson(k, n, confidence)
        cols[rate] = fm.ratio(k, n)
        cols[f"{rate}_low"] = lo
        cols[f"{rate}_high"] = hi
    return cols


def _groups_table(st, conf_seg, conf, groups) -> pa.Table:
    if not st.by:
        cols = _label_columns(st.sensitive, groups)
        cols.update(_rate_columns(conf, st.confidence))
        return src.arrow_table(cols)
    S, G = conf_seg.shape[:2]
    seg_idx, grp_idx = np.nonzero(conf_seg.sum(axis=(2, 3)) > 0)
    cols = _label_columns(st.by, [st.segments.labels[s] for s in seg_idx])
    cols.update(_label_columns(st.sensitive, [groups[g] for g in grp_idx]))
    rates = _rate_columns(conf_seg[seg_idx, grp_idx], st.confidence)
    cols.update(rates)
    return src.arrow_table(cols)


def _disparities_table(st, conf_seg, est, cis, tests, B, j) -> pa.Table:
    rows: list[dict] = []

    def add(prefix: dict, e, c, t):
        for name in fm.DISPARITIES:
            ci = c[name]
            rows.append({**prefix, "metric": name, "estimate": float(e[name]),
                         "low": None if ci is None else float(ci.low),
                         "high": None if ci is None else float(ci.high), "pvalue": float(t[name])})

    if st.by:
        rep_seg = fm.confusion_at(st.rep, j) if B else None  # (B, S, G, 2, 2)
        seg_est = fm.disparities(conf_seg)
        seg_rep = fm.disparities(rep_seg) if rep_seg is not None else None
        for s, lab in enumerate(st.segments.labels):
            prefix = _label_columns(st.by, [lab])
            prefix = {k: v[0] for k, v in prefix.items()}
            e = {k: seg_est[k][s] for k in fm.DISPARITIES}
            c = dict.fromkeys(fm.DISPARITIES)
            if B:
                assert seg_rep is not None  # drawn when B > 0
                for name in fm.DISPARITIES:
                    lo, hi, _ = fm.percentile_interval(seg_rep[name][:, s], st.confidence)
                    c[name] = ConfidenceInterval(lo, hi)
            present = conf_seg[s].sum(axis=(1, 2)) > 0
            add(prefix, e, c, fm.disparity_tests(conf_seg[s][present]))
    else:
        add({}, est, cis, tests)
    names = list(rows[0])
    return src.arrow_table({k: [r[k] for r in rows] for k in names})


def _curve(st) -> pa.Table:
    cells = st.own.sum(axis=0)  # (G, 2, K)
    conf = fm.confusion_sweep(cells)  # (J, G, 2, 2)
    total = conf.sum(axis=1)  # (J, 2, 2)
    n = total.sum(axis=(1, 2))
    cols: dict = {"threshold": np.asarray(st.cuts, dtype=np.float64),
                  "selection_rate": fm.ratio(total[:, 0, 1] + total[:, 1, 1], n),
                  "accuracy": fm.ratio(total[:, 0, 0] + total[:, 1, 1], n)}
    est = fm.disparities(conf)
    reps = fm.disparities(fm.confusion_sweep(st.rep.sum(axis=1))) if st.n_resamples else None
    for name in fm.DISPARITIES:
        cols[name] = est[name]
        if reps is not None:
            lo, hi, _ = fm.percentile_interval(reps[name], st.confidence)
            cols[f"{name}_low"] = lo
            cols[f"{name}_high"] = hi
    return src.arrow_table(cols)
