"""The A/B tests' finalize math: the G-test of a table (and of every segment's table at once),
its Monte Carlo p-value (Patefield's tables), the sample-ratio check's expected shares and
warning, and the pieces the z-test's result is assembled from (control, interval method,
table columns). Plain functions of arrays; the closed-form statistics are in
:mod:`fastevals._stats` and :mod:`fastevals._cuped`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _stats
from .._fold import check_backend
from .._validation import check_choice, check_int, check_seed
from .result import SampleRatioMismatchWarning, SRMResult

_ADJUST = ("holm", "bh")
#: Monte Carlo work is refused beyond this many table cells drawn (tables x cells, all segments):
#: about 0.1 microsecond a cell on one core, so the limit is a few minutes on a laptop
MAX_MONTE_CARLO_CELLS = 10**9
#: tables holding more counts than this get no Monte Carlo p-value (Patefield's draws walk the
#: counts, and at such sizes the chi-square p-value is as good): a note says so
MAX_MONTE_CARLO_TOTAL = 10**9


def _label_columns(names: list[str], labels: list) -> dict[str, list]:
    if len(names) == 1:
        return {names[0]: list(labels)}
    return {name: [lab[k] for lab in labels] for k, name in enumerate(names)}


def _check_monte_carlo(monte_carlo, cells: int = 4):
    monte_carlo = check_int("monte_carlo", monte_carlo, low=1, allow_none=True)
    if monte_carlo is not None and monte_carlo * cells > MAX_MONTE_CARLO_CELLS:
        most = max(1, MAX_MONTE_CARLO_CELLS // cells)
        raise ValueError(
            f"monte_carlo={monte_carlo} would draw {monte_carlo:,} random tables of {cells:,} cells in all "
            f"({monte_carlo * cells:.3g} cells, about {monte_carlo * cells * 1e-7 / 60:,.0f} CPU-minutes or more), "
            f"over the limit of {MAX_MONTE_CARLO_CELLS:.0e} cells: pass at most monte_carlo={most} "
            "(10,000 to 100,000 tables give the p-value to within about 0.005 to 0.0015)")
    return monte_carlo


def _expected_shares(expected_split, labels) -> np.ndarray:
    if expected_split is None:
        return np.ones(len(labels))
    if isinstance(expected_split, dict):
        missing = [g for g in labels if g not in expected_split and str(g) not in expected_split]
        if missing:
            raise ValueError(f"`expected_split` has no share for group(s) {missing!r}")
        shares = np.array([expected_split.get(g, expected_split.get(str(g))) for g in labels], dtype=float)
    else:
        shares = np.asarray(expected_split, dtype=float)
        if shares.shape != (len(labels),):
            raise ValueError(f"`expected_split` needs {len(labels)} shares (groups in sorted order "
                             f"{labels!r}); got {list(shares)!r}")
    if not np.all(np.isfinite(shares)) or np.any(shares <= 0):
        raise ValueError(f"`expected_split` shares must be positive and finite; got {shares.tolist()!r}")
    return shares


def _warn_srm(srm: SRMResult, stacklevel: int = 4) -> None:
    if srm.mismatch:
        warnings.warn(srm.message(), SampleRatioMismatchWarning, stacklevel=stacklevel)


def _interval_method(kind: str, adjusted: bool, ratio: bool, variance: str) -> str:
    if ratio:
        return "delta method (ratio of sums)"
    if adjusted:
        return "regression adjustment, " + ("HC1 robust" if variance == "hc1" else "Welch") + " standard error"
    return "wald, unpooled" if kind == "proportion" else "wald, Welch standard error"


def _control_index(control, groups: list, column: str) -> tuple[int, str]:
    """The control's index among the sorted groups, and how it was chosen (in words)."""
    if control is None:
        if "control" in groups:
            return groups.index("control"), "the group named 'control'"
        return 0, "the first group in sorted order"
    if control in groups:
        return groups.index(control), "given"
    as_text = [str(g) for g in groups]
    if str(control) in as_text:
        return as_text.index(str(control)), "given"
    raise ValueError(f"`control`={control!r} is not a group of column {column!r}; groups: {groups!r}")


def _g_iv(correction, monte_carlo, seed, adjust, backend="auto"):
    correction = check_choice("correction", correction, ("williams", "yates"), allow_none=True)
    monte_carlo = _check_monte_carlo(monte_carlo)
    seed_key = check_seed("seed", seed)
    adjust = check_choice("adjust", adjust, _ADJUST, allow_none=True)
    backend = check_backend(backend, supported=("auto", "cpu", "cuda"))
    return correction, monte_carlo, seed_key, adjust, backend


_SMALL_COUNTS_NOTE = ("small counts (a cell under 100 or an expected count under 5): the chi-square p-value is "
                      "unreliable; read pvalue_mc")


def _g_single(observed, correction, monte_carlo, seed_key, backend="auto") -> dict:
    """G-test of one R x C table without empty rows or columns."""
    obs = np.asarray(observed, dtype=np.float64)
    r, c = obs.shape
    expected = _stats.expected_counts(obs)
    dof = (r - 1) * (c - 1)
    if correction == "yates":
        if (r, c) != (2, 2):
            raise ValueError(f"correction='yates' applies to 2 x 2 tables only; this table is {r} x {c}")
        g = float(_stats.g_statistic(_stats.yates_adjust(obs, expected), expected))
    else:
        g = float(_stats.g_statistic(obs, expected))
        if correction == "williams":
            g /= float(_stats.williams_q(obs))
    pvalue = float(_stats.chi2_sf(g, dof))
    small = bool(obs.min() < 100 or expected.min() < 5)
    pvalue_mc = None
    note = ""
    used = "cpu"
    total = float(obs.sum())
    skipped = bool(monte_carlo) and total > MAX_MONTE_CARLO_TOTAL
    if monte_carlo and not skipped:
        pvalue_mc, used = _monte_carlo_pvalue(obs, expected, monte_carlo, seed_key, backend)
    if skipped:
        note = _mc_skipped_note(total, float(expected.min()))
        warnings.warn(note, RuntimeWarning, stacklevel=4)
    elif small:
        note = _SMALL_COUNTS_NOTE + ("" if monte_carlo else " (pass monte_carlo=N)")
    return dict(statistic=g, pvalue=pvalue, dof=dof, expected_freq=expected, observed=observed,
                correction=correction, pvalue_mc=pvalue_mc, n_monte_carlo=0 if skipped else (monte_carlo or 0),
                small_counts=small, note=note, backend=used)


def _mc_skipped_note(total: float, min_expected: float) -> str:
    """Why a table of more than MAX_MONTE_CARLO_TOTAL counts gets no Monte Carlo p-value."""
    why = (f"Monte Carlo p-value not computed: the table holds {total:.3g} counts, over "
           f"{MAX_MONTE_CARLO_TOTAL:.0e} (Patefield's draws walk the counts and would take hours)")
    if min_expected >= 5:
        return why + (f"; with every expected count at least {min_expected:.3g} the chi-square p-value is "
                      "exact enough there (read pvalue)")
    return why + (f"; the smallest expected count is {min_expected:.3g}, under 5: the chi-square p-value "
                  "may be off; drop or pool the sparse rows/columns and test them apart")


def _g_columns(rows: list[dict]) -> dict:
    """Per-segment results (dicts of :func:`_g_single`) as the sliced table's columns."""
    return dict(
        statistic=np.array([r["statistic"] for r in rows], dtype=np.float64),
        dof=np.array([r["dof"] for r in rows], dtype=np.int64),
        pvalue=np.array([r["pvalue"] for r in rows], dtype=np.float64),
        pvalue_mc=np.array([np.nan if r["pvalue_mc"] is None else r["pvalue_mc"] for r in rows],
                           dtype=np.float64),
        backend=[r.get("backend", "cpu") for r in rows],
        small_counts=np.array([r["small_counts"] for r in rows], dtype=np.bool_),
        note=[r.get("note", "") for r in rows],
    )


def _g_segments_plain(counts: np.ndarray) -> dict:
    """The uncorrected G-test of every segment's (group x outcome) table at once, as the
    sliced table's columns (those of :func:`_g_columns`).

    Equal to :func:`_g_single` on each table with its empty rows and columns dropped
    (they add nothing to G and are left out of the dof and the small-count check);
    one vectorized pass instead of a Python call per segment.
    """
    obs = counts.astype(np.float64)
    keep_r = obs.sum(axis=2) > 0
    keep_c = obs.sum(axis=1) > 0
    n_r, n_c = keep_r.sum(axis=1), keep_c.sum(axis=1)
    expected = _stats.expected_counts(obs)
    g = _stats.g_statistic(obs, expected)  # the accurate form, as the single-table test uses
    dof = (n_r - 1) * (n_c - 1)
    valid = (n_r >= 2) & (n_c >= 2)
    p = np.full(g.shape, np.nan)
    p[valid] = _stats.chi2_sf(g[valid], dof[valid])
    kept = keep_r[:, :, None] & keep_c[:, None, :]
    small = (np.where(kept, obs, np.inf).min(axis=(1, 2)) < 100) | (
        np.where(kept, expected, np.inf).min(axis=(1, 2)) < 5)
    small |= ~valid
    note = _SMALL_COUNTS_NOTE + " (pass monte_carlo=N)"
    return dict(
        statistic=np.where(valid, g, np.nan),
        dof=np.where(valid, dof, 0).astype(np.int64),
        pvalue=p,
        pvalue_mc=np.full(g.shape, np.nan),
        backend=["cpu"] * g.shape[0],
        small_counts=small,
        note=[(note if small[k] else "") if valid[k] else "fewer than two groups or outcome levels"
              for k in range(g.shape[0])],
    )


def _monte_carlo_pvalue(obs: np.ndarray, expected: np.ndarray, n_tables: int, seed_key: int,
                        backend: str = "auto") -> tuple[float, str]:
    """(1 + #{G_sim >= G_obs}) / (N + 1) over N tables with the observed margins (uncorrected G),
    and the backend that drew them.
    """
    from .._cuda.backend import resolve_backend
    from .._kernels import patefield

    used = resolve_backend(backend, n_tables * obs.size)
    if used == "cuda":
        from .._cuda import patefield  # type: ignore[no-redef]  # the CUDA twin: same functions

    if not np.all(obs == np.round(obs)):
        raise ValueError("monte_carlo needs integer counts in `observed`")
    rows = obs.sum(axis=1).astype(np.int64)
    cols = obs.sum(axis=0).astype(np.int64)
    total = int(rows.sum())
    g_obs = float(_stats.g_statistic(obs, expected))
    if total <= 4_000_000:
        x = np.arange(total + 1, dtype=np.float64)
        xlogx = np.zeros(total + 1)
        xlogx[1:] = x[1:] * np.log(x[1:])
    else:
        xlogx = np.zeros(0)
    # G of an equal table is recomputed with other rounding: compare with a relative tolerance
    threshold = g_obs - 1e-7 * max(1.0, abs(g_obs))
    hits = patefield.monte_carlo_g_hits(rows, cols, np.log(expected), xlogx, threshold, n_tables,
                                        np.uint64(seed_key), 1024)
    return (1.0 + int(hits)) / (n_tables + 1.0), used

