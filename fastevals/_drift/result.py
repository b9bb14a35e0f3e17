"""Results of the drift analyses: :class:`DriftResult`, :class:`AdversarialValidationResult` and
the summary of a :class:`~fastevals._drift.state.Profile`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._protocol import ConfidenceInterval, Result, fmt, optional_import, render_table, result_dataclass


def _segment_text(seg) -> str:
    return ", ".join(str(x) for x in seg) if seg else ""


@result_dataclass
class DriftResult(Result):
    """Drift of a current data set against a reference, one row per column (per segment with ``by``).

    Attributes
    ----------
    table : pyarrow.Table
        ``column``, ``type`` (numeric, categorical, label), ``test`` (ks, g or chi2),
        ``statistic``, ``pvalue``, ``pvalue_adjusted`` (across all rows), ``psi``,
        ``jensen_shannon`` (base 2), ``hellinger``, ``wasserstein`` (numeric only), ``drift``
        (the flag: ``pvalue_adjusted < alpha`` and ``psi >= psi_threshold``), the error bounds
        of profile mode (``ks_error_bound``, ``wasserstein_error_bound``: 0 in exact mode),
        ``n_reference``, ``n_current``, ``mean_reference``, ``mean_current``; segment columns first
        with ``by``.
    performance : pyarrow.Table or None
        With ``label`` and ``prediction``: per segment and metric (``error_rate``, ``auc``) the
        reference and current values, ``difference`` (current - reference), ``standard_error``,
        ``low``/``high``, ``pvalue`` (two-sided z-test of no difference with that standard error)
        and ``method`` ("normal" or "bootstrap", see ``n_resamples``).
    mode : str
        "exact" (raw reference: exact KS and Wasserstein) or "profile" (binned reference).
    alpha, psi_threshold, adjust, confidence
        The flag's rule and the multiple-testing adjustment, the intervals' confidence.
    n, n_reference, n_dropped
        Current rows used, reference rows used, current rows dropped (``nulls="drop"``).
    distributions : dict
        Per ``(segment, column)``: the coarse-bin proportions plotted by :meth:`plot_column`.
    notes : tuple of str
        Why a statistic is missing, and other warnings.
    """

    table: pa.Table
    performance: pa.Table | None
    mode: str
    alpha: float
    psi_threshold: float
    adjust: str | None
    confidence: float
    n: int
    n_reference: int
    n_dropped: int
    distributions: dict
    notes: tuple

    def _title(self) -> str:
        return f"Drift ({self.mode} mode): {self.n_reference:,} reference rows vs {self.n:,} current rows"

    @property
    def drifted(self) -> list[str]:
        """Columns flagged as drifting (in any segment)."""
        out = []
        for c, flag in zip(self.table.column("column").to_pylist(), self.table.column("drift").to_pylist()):
            if flag and c not in out:
                out.append(c)
        return out

    def _summary_lines(self) -> list[str]:
        rule = f"drift = pvalue_adjusted ({self.adjust or 'unadjusted'}) < {self.alpha:g}"
        if self.psi_threshold > 0:
            rule += f" and psi >= {self.psi_threshold:g}"
        flagged = self.drifted
        lines = [rule, f"drifting columns: {', '.join(flagged) if flagged else 'none'}"]
        return lines

    def __str__(self) -> str:
        shown = [c for c in self.table.column_names if c not in ("n_reference", "n_current", "mean_reference",
                                                                   "mean_current")]
        if self.mode == "exact":
            shown = [c for c in shown if not c.endswith("_error_bound")]
        parts = [self._title(), *self._summary_lines(), render_table(self.table, columns=shown, max_rows=60)]
        if self.performance is not None:
            parts += ["", "model performance (current - reference)", render_table(self.performance)]
        parts += [f"note: {n}" for n in self._notes()]
        return "\n".join(parts)

    def _plot(self, ax) -> None:
        """Summary: PSI per column (drifting columns highlighted), the threshold as a line."""
        t = self.table
        names = t.column("column").to_pylist()
        if "segment" in t.column_names:
            names = [f"{c} [{s}]" for c, s in zip(names, t.column("segment").to_pylist())]
        psi = np.nan_to_num(np.asarray(t.column("psi").to_pylist(), dtype=float))
        flags = t.column("drift").to_pylist()
        colors = ["tab:red" if f else "tab:blue" for f in flags]
        ax.barh(range(len(names)), psi, color=colors)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        if self.psi_threshold > 0:
            ax.axvline(self.psi_threshold, color="gray", linestyle="--", label=f"PSI {self.psi_threshold:g}")
            ax.legend(loc="lower right")
        ax.set_xlabel("PSI (red: drift)")
        ax.set_title("Drift by column")

    def plot_column(self, column: str, segment=None, ax=None, path=None):
        """The reference and current distributions of ``column`` overlaid (coarse bins)."""
        plt = optional_import("matplotlib.pyplot", "plot_column()")
        key = (_segment_text(segment) if isinstance(segment, tuple) else (segment or ""), column)
        if key not in self.distributions:
            raise ValueError(f"no distribution for column {column!r}"
                             + (f" in segment {segment!r}" if segment else "")
                             + f"; columns: {sorted({k[1] for k in self.distributions})}")
        d = self.distributions[key]
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        x = np.arange(len(d["labels"]))
        ax.bar(x - 0.2, d["reference"], width=0.4, label="reference", alpha=0.8)
        ax.bar(x + 0.2, d["current"], width=0.4, label="current", alpha=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(d["labels"], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("share of rows")
        ax.set_title(f"{column}{' [' + key[0] + ']' if key[0] else ''}")
        ax.legend()
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(path)
        return ax


@result_dataclass
class AdversarialValidationResult(Result):
    """Adversarial validation: how well a classifier tells training rows from test rows.

    Attributes
    ----------
    estimate : float
        Out-of-fold ROC AUC of the classifier (0.5: no detectable shift).
    standard_error, confidence_interval
        DeLong's standard error and the normal interval of the AUC.
    pvalue : float
        One-sided z-test of AUC > 0.5 (DeLong's standard error).
    table : pyarrow.Table
        Features by permutation importance: ``feature``, ``importance`` (mean drop of the
        held-out AUC when the feature is shuffled, over folds), ``std``.
    validation_rows : numpy.ndarray
        Row indices of the training set (in Training Set 2) that the classifier scores most like
        test rows, best first: the validation data of the seed's step 6.
    drop_rows : numpy.ndarray
        Row indices of the training set (in Training Set 1) scored most surely "training".
    train_scores : numpy.ndarray
        P(test) of every training row (out-of-fold for Training Set 1, from the model fit on the
        synthetic set for Training Set 2).
    n, n_train, n_test
        Rows of the synthetic set (Training Set 1 + test) and of the two inputs.
    notes : tuple of str
    """

    estimate: float
    standard_error: float
    confidence_interval: ConfidenceInterval
    pvalue: float
    table: pa.Table
    validation_rows: np.ndarray
    drop_rows: np.ndarray
    train_scores: np.ndarray
    n: int
    n_train: int
    n_test: int
    notes: tuple

    def _title(self) -> str:
        return "Adversarial validation (training vs test)"

    def _summary_lines(self) -> list[str]:
        verdict = ("no detectable shift" if self.confidence_interval.low <= 0.5
                   else "the sets differ: the classifier tells them apart")
        return [f"AUC {fmt(self.estimate)} {fmt(self.confidence_interval)} (SE {fmt(self.standard_error)}, "
                f"p {fmt(self.pvalue)}): {verdict}",
                f"rows: {self.n_train:,} training, {self.n_test:,} test; {len(self.validation_rows):,} training rows "
                f"proposed as validation data, {len(self.drop_rows):,} least test-like rows to drop",
                "features that separate the sets most:"]

    def _plot(self, ax) -> None:
        feats = self.table.column("feature").to_pylist()
        imp = np.asarray(self.table.column("importance").to_pylist(), dtype=float)
        std = np.asarray(self.table.column("std").to_pylist(), dtype=float)
        ax.barh(range(len(feats)), imp, xerr=std, color="tab:purple")
        ax.set_yticks(range(len(feats)))
        ax.set_yticklabels(feats)
        ax.invert_yaxis()
        ax.set_xlabel("drop in held-out AUC when shuffled")
        ax.set_title(f"Adversarial validation: AUC {self.estimate:.3f}")


@result_dataclass
class ProfileSummary(Result):
    """A profile's columns: type, rows, mean/std/min/max (numeric) or categories (categorical).

    Attributes
    ----------
    table : pyarrow.Table
        One row per profiled column.
    n, n_dropped : int
        Rows profiled, rows dropped (nulls / NaN with ``nulls="drop"``).
    """

    table: pa.Table
    n: int
    n_dropped: int

    def _title(self) -> str:
        return f"Profile of {self.n:,} rows"

    @classmethod
    def from_profile(cls, prof) -> ProfileSummary:
        rows: dict[str, list] = {k: [] for k in ("segment", "column", "type", "n", "mean", "std", "min", "max",
                                                 "categories")}
        for s, seg in enumerate(prof.segments):
            for c in prof.profiled_columns:
                t = prof.types[c]
                rows["segment"].append(_segment_text(seg))
                rows["column"].append(c)
                rows["type"].append(t)
                if t == "numeric":
                    m = prof.moments(c)[s]
                    cnt = int(m[0])
                    rows["n"].append(cnt)
                    rows["mean"].append(float(m[1]) if cnt else None)
                    rows["std"].append(float(np.sqrt(m[2] / (cnt - 1))) if cnt > 1 else None)
                    rows["min"].append(float(m[3]) if cnt else None)
                    rows["max"].append(float(m[4]) if cnt else None)
                    rows["categories"].append(None)
                else:
                    counts = prof.counts(c)[s]
                    rows["n"].append(int(counts.sum()))
                    for k in ("mean", "std", "min", "max"):
                        rows[k].append(None)
                    rows["categories"].append(int(np.count_nonzero(counts)))
        if not prof.by:
            rows.pop("segment")
        return cls(table=src.arrow_table(rows), n=prof.n, n_dropped=prof.n_dropped)

    def _plot(self, ax) -> None:
        t = self.table
        ax.barh(range(t.num_rows), t.column("n").to_pylist())
        ax.set_yticks(range(t.num_rows))
        ax.set_yticklabels(t.column("column").to_pylist())
        ax.set_xlabel("rows")
