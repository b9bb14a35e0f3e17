"""Public functions: :func:`profile` and :func:`drift`."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from .. import _dask
from .. import _source as src
from .._fold import check_backend, fold
from .._stats import adjust_pvalues, interval
from .._validation import as_column_list, check_choice, check_int, check_probability, check_seed
from . import _math
from .result import DriftResult, _segment_text
from .state import DEFAULT_BINS, DEFAULT_PILOT_ROWS, NUMERIC_T, Profile, resolve_layout

_PARQUET_MAGIC = b"PAR1"


def _dask_pilot(ddf, columns, pilot_rows, filter=None) -> pa.Table:
    """The first ``pilot_rows`` rows of a Dask DataFrame (partitions read in order until enough)."""
    tables, rows = [], 0
    read = list(dict.fromkeys([*columns, *(_dask._filter_columns(filter, list(ddf.columns)) if filter is not None
                                           else [])]))
    for i in range(ddf.npartitions):
        t = pa.Table.from_pandas(ddf[read].partitions[i].compute(), preserve_index=False)
        if filter is not None:
            t = t.filter(filter)
        tables.append(t.select(columns).slice(0, pilot_rows - rows))
        rows += tables[-1].num_rows
        if rows >= pilot_rows:
            break
    return pa.concat_tables(tables)


def _layout(data, state: Profile, engine) -> None:
    """Fix the state's column types and numeric edges from ``data`` before any fold."""
    common = dict(columns=state._columns, categorical=state.categorical, by=state.by, label=state.label,
                  prediction=state.prediction, n_bins=state.n_bins, pilot_rows=state.pilot_rows, edges=state.edges)
    if _dask.is_dask_collection(data):
        schema = pa.Schema.from_pandas(data._meta, preserve_index=False)
        cols_types = _resolve_types_only(schema, common)
        numeric = [c for c, t in cols_types.items() if t == NUMERIC_T and c not in (state.edges or {})]
        pilot = _dask_pilot(data, numeric, state.pilot_rows, state.filter) if numeric else pa.table({})
        types, edges = resolve_layout(None, schema=schema, pilot=pilot, **common)
    else:
        types, edges = resolve_layout(data, filter=state.filter, **common)
    state.types, state.edges = types, edges
    state._allocate()


def _resolve_types_only(schema, common):
    from .state import column_type

    by, label, prediction = common["by"], common["label"], common["prediction"]
    special = set(by) | {label, prediction} - {None}
    cols = list(common["columns"]) if common["columns"] else [c for c in schema.names if c not in special]
    out = {}
    for c in cols:
        if c in schema.names and c != label:
            out[c] = column_type(schema.field(c).type, c, common["categorical"])
    if prediction is not None and prediction in schema.names and pa.types.is_floating(schema.field(prediction).type):
        out[prediction] = NUMERIC_T
    return out


def profile(reference, *, columns=None, categorical=None, by=None, label=None, prediction=None,
            n_bins: int = DEFAULT_BINS, threshold: float = 0.5, keep_values: bool = False,
            pilot_rows: int = DEFAULT_PILOT_ROWS, nulls: str = "raise", filter=None, batch_size=None,
            progress=None, engine=None, backend="auto") -> Profile:
    """Profile a reference data set in one pass: a mergeable, serializable :class:`Profile`.

    Categorical columns get exact counts per category; numeric columns get counts on
    ``n_bins`` fine bins whose edges are the quantiles of a pilot sample (the first
    ``pilot_rows`` rows), fixed before the scan, plus two tail bins and count / mean / variance
    / min / max. Store it with ``to_bytes()`` (or ``fastevals profile DATA --out ref.profile``)
    and compare new data against it with :func:`drift` without reading the reference again.

    Parameters
    ----------
    reference : table-like, Parquet path or Dask DataFrame
        Any input of the input layer.
    columns : str or list of str, optional
        Columns to profile (default: every column but ``by``, ``label`` and ``prediction``).
    categorical : list of str, optional
        Integer columns to treat as categorical.
    by : str or list of str, optional
        Segment column(s).
    label, prediction : str, optional
        Label (prior shift) and model prediction (concept drift) columns.
    n_bins : int, default 1000
        Fine bins of the numeric columns: the binned KS statistic is off by at most the
        largest bin mass (about ``1 / n_bins`` for continuous data).
    threshold : float, default 0.5
        A score prediction at or above it predicts class 1 (error rate).
    keep_values : bool, default False
        Keep the numeric values too (exact KS / Wasserstein; 8 bytes per value).
    pilot_rows : int, default 2**20
        Rows of the pilot sample whose quantiles are the edges.
    nulls : {"raise", "drop"}
    filter : pyarrow.compute.Expression, optional
    batch_size : int, optional
    progress : bool, optional
    engine : {None, "auto", "dask"}
        "dask" folds a Parquet input on Dask (a Dask DataFrame always is).
    backend : {"auto", "cpu"}

    Returns
    -------
    Profile

    Raises
    ------
    ValueError
        Unknown column, nulls (with ``nulls="raise"``), empty input.
    TypeError
        A column of a type that cannot be profiled.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> ref = fastevals.profile({"x": rng.normal(size=10_000)}, n_bins=100)
    >>> ref.n, len(ref.edges["x"])
    (10000, 101)
    """
    state = Profile(columns=columns, categorical=categorical, by=by, label=label, prediction=prediction,
                    n_bins=n_bins, threshold=threshold, keep_values=keep_values, pilot_rows=pilot_rows,
                    backend=backend, nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
    _layout(reference, state, engine)
    state = fold(state, reference, engine=engine)
    state.check_not_empty()
    return state


def load_profile(obj) -> Profile | None:
    """A Profile from a Profile, its bytes, or the path of a file holding them; None for anything else."""
    if isinstance(obj, Profile):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return Profile.from_bytes(bytes(obj))
    if isinstance(obj, (str, os.PathLike)) and os.path.isfile(obj):
        with open(obj, "rb") as fh:
            head = fh.read(4)
            if head == _PARQUET_MAGIC:
                return None
            fh.seek(0)
            data = fh.read()
        try:
            return Profile.from_bytes(data)
        except ValueError as exc:
            raise ValueError(f"{os.fspath(obj)!r} is neither a Parquet file nor a stored profile: {exc}") from None
    return None


def _drift_iv(alpha, adjust, psi_threshold, distance_bins, categorical_test, confidence):
    alpha = check_probability("alpha", alpha)
    adjust = None if adjust is None else check_choice("adjust", adjust, ("holm", "bh", "none"))
    adjust = None if adjust == "none" else adjust
    if isinstance(psi_threshold, bool) or not isinstance(psi_threshold, (int, float)) or psi_threshold < 0:
        raise ValueError(f"`psi_threshold` must be a number >= 0 (0: flag on the test alone); got {psi_threshold!r}")
    distance_bins = check_int("distance_bins", distance_bins, low=2)
    categorical_test = check_choice("categorical_test", categorical_test, ("g", "chi2"))
    confidence = check_probability("confidence", confidence)
    return alpha, adjust, float(psi_threshold), distance_bins, categorical_test, confidence


def drift(reference, current, *, columns=None, categorical=None, by=None, label=None, prediction=None,
          alpha: float = 0.05, adjust: str | None = "holm", psi_threshold: float = 0.2, distance_bins: int = 10,
          categorical_test: str = "g", threshold: float = 0.5, n_bins: int = DEFAULT_BINS,
          pilot_rows: int = DEFAULT_PILOT_ROWS, confidence: float = 0.95, n_resamples: int = 0, seed=None,
          nulls: str = "raise", filter=None, batch_size=None, progress=None, engine=None,
          backend="auto") -> DriftResult:
    """Compare a current data set with a reference: a test and four distances per column.

    Numeric columns get the two-sample Kolmogorov-Smirnov test, categorical ones (and the
    label: prior shift) a G-test (or chi-square) of the two count vectors. Every row also has
    PSI, Jensen-Shannon (base 2) and Hellinger on ``distance_bins`` reference-quantile bins (or
    the categories) and Wasserstein-1 (numeric). p-values are adjusted across all rows. With
    ``label`` and ``prediction`` the model's error rate (and AUC for a score) on the two sets are
    compared too (concept drift), with a normal interval of the difference.

    Two modes:

    * exact (``reference`` is data): KS equals ``scipy.stats.ks_2samp`` (method "auto") and
      Wasserstein equals ``scipy.stats.wasserstein_distance``; both inputs' numeric values are
      held in memory (8 bytes per value and column, one profile per input);
    * profile (``reference`` is a :class:`Profile`, its bytes or a stored profile file): only the
      binned reference is used; the KS statistic is evaluated at the fine edges (a lower bound of
      the exact one, which is at most ``ks_error_bound`` higher) and Wasserstein on
      piecewise-linear CDFs (off by at most ``wasserstein_error_bound``).

    Parameters
    ----------
    reference : data, Profile, bytes or path
        The reference (training) data or its stored profile.
    current : data
        The current (production) data: any input of the input layer, or a Dask DataFrame.
    columns : str or list of str, optional
        Columns to compare (default: all profiled columns).
    categorical, by, label, prediction, n_bins, pilot_rows, threshold
        As in :func:`profile` (exact mode; a stored profile keeps its own).
    alpha : float, default 0.05
        Level of the drift flag.
    adjust : {"holm", "bh", None}, default "holm"
        Adjustment of the p-values across rows.
    psi_threshold : float, default 0.2
        A row is flagged when ``pvalue_adjusted < alpha`` and ``psi >= psi_threshold``
        (0: on the test alone). PSI reads: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted.
    distance_bins : int, default 10
        Coarse reference-quantile bins of the distances.
    categorical_test : {"g", "chi2"}
    confidence : float, default 0.95
        Confidence of the performance differences' intervals.
    n_resamples : int, default 0
        0: normal intervals of the performance differences (two-proportion and Hanley-McNeil
        standard errors); > 0: percentile intervals of a Poisson bootstrap with that many
        replicates (the rows' Poisson(1) weights summed per (bin, class) cell are Poisson(count)
        draws, so a replicate costs one draw per cell), and the bootstrap standard error.
    seed : int, numpy Generator or None
        Seed of the bootstrap (None: a fresh one).
    nulls, filter, batch_size, progress, engine, backend
        As everywhere; ``filter`` applies to both inputs in exact mode.

    Returns
    -------
    DriftResult

    Raises
    ------
    ValueError
        Unknown column, empty input, a ``by`` / ``label`` that the stored profile lacks.
    TypeError
        Columns of unusable types.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(1)
    >>> ref = {"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)}
    >>> cur = {"x": rng.normal(1.0, 1.0, size=1000), "c": rng.choice(["a", "b"], 1000)}
    >>> res = fastevals.drift(ref, cur)
    >>> res.drifted
    ['x']
    >>> res.table.column("test").to_pylist()
    ['ks', 'g']
    """
    check_backend(backend)
    alpha, adjust, psi_threshold, distance_bins, categorical_test, confidence = _drift_iv(
        alpha, adjust, psi_threshold, distance_bins, categorical_test, confidence)
    n_resamples = check_int("n_resamples", n_resamples, low=0)
    seed = check_seed("seed", seed) if n_resamples else None
    stored = load_profile(reference)
    if stored is None:
        ref = profile(reference, columns=None if columns is None else _with_extra(columns, label, prediction),
                      categorical=categorical, by=by, label=label, prediction=prediction, n_bins=n_bins,
                      threshold=threshold, keep_values=True, pilot_rows=pilot_rows, nulls=nulls, filter=filter,
                      batch_size=batch_size, progress=progress, engine=engine)
        mode = "exact"
    else:
        ref = stored
        for name, given, have in (("by", as_column_list("by", by), ref.by), ("label", label, ref.label),
                                  ("prediction", prediction, ref.prediction)):
            if given not in (None, []) and given != have:
                raise ValueError(f"`{name}`={given!r} differs from the stored profile's {name}={have!r}; "
                                 "profile the reference with it")
        if ref.types is None or ref.n == 0:
            raise ValueError("the reference profile is empty (no rows were profiled)")
        mode = "exact" if ref.keep_values else "profile"
    selected = ref.profiled_columns if columns is None else as_column_list("columns", columns)
    for c in selected:
        if c not in ref.types or c == ref.prediction:
            raise ValueError(f"column {c!r} (given in `columns`) is not in the reference profile; profiled: "
                             f"{ref.profiled_columns}")
    if ref.label is not None and ref.label not in selected:
        selected = [*selected, ref.label]
    cur = Profile(columns=ref._columns, categorical=ref.categorical or None, by=ref.by or None, label=ref.label,
                  prediction=ref.prediction, n_bins=ref.n_bins, threshold=ref.threshold,
                  keep_values=ref.keep_values, pilot_rows=ref.pilot_rows, edges=ref.edges, types=ref.types,
                  nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
    cur = fold(cur, current, engine=engine)
    cur.check_not_empty()
    return compare(ref, cur, selected, mode=mode, alpha=alpha, adjust=adjust, psi_threshold=psi_threshold,
                   distance_bins=distance_bins, categorical_test=categorical_test, confidence=confidence,
                   n_resamples=n_resamples, seed=seed)


def _with_extra(columns, label, prediction):
    return as_column_list("columns", columns)


def _segment_slice(seg_codes, s):
    lo = np.searchsorted(seg_codes, s, side="left")
    hi = np.searchsorted(seg_codes, s, side="right")
    return slice(lo, hi)


def compare(ref: Profile, cur: Profile, columns, *, mode, alpha, adjust, psi_threshold, distance_bins,
            categorical_test, confidence, n_resamples=0, seed=None) -> DriftResult:
    """The drift table of two profiles built on the same edges and types."""
    notes: list[str] = []
    rows: dict[str, list] = {k: [] for k in (
        "segment", "column", "type", "test", "statistic", "pvalue", "psi", "jensen_shannon", "hellinger",
        "wasserstein", "ks_error_bound", "wasserstein_error_bound", "n_reference", "n_current",
        "mean_reference", "mean_current")}
    distributions: dict = {}
    cur_index = {lab: i for i, lab in enumerate(cur.segments)}
    missing = [s for s in cur.segments if s not in set(ref.segments)]
    if missing:
        notes.append(f"{len(missing)} segment(s) of the current data are not in the reference and were not "
                     f"compared: {[_segment_text(s) for s in missing[:5]]}")
    values_cache: dict = {}
    for s_ref, seg in enumerate(ref.segments):
        s_cur = cur_index.get(seg)
        if s_cur is None:
            notes.append(f"segment {_segment_text(seg)!r} has no current rows; not compared")
            continue
        for c in columns:
            t = ref.types[c]
            row = _compare_column(ref, cur, c, t, s_ref, s_cur, mode, distance_bins, categorical_test,
                                  values_cache, notes, seg, distributions)
            rows["segment"].append(_segment_text(seg))
            for k in rows:
                if k != "segment":
                    rows[k].append(row.get(k))
    pvals = np.asarray([np.nan if p is None else p for p in rows["pvalue"]], dtype=float)
    adjusted = adjust_pvalues(pvals, adjust)
    flags = []
    for p_adj, psi in zip(adjusted, rows["psi"]):
        ok = bool(np.isfinite(p_adj) and p_adj < alpha)
        if psi_threshold > 0:
            ok = ok and psi is not None and psi >= psi_threshold
        flags.append(ok)
    table = {"segment": rows["segment"]} if ref.by else {}
    table.update({k: rows[k] for k in ("column", "type", "test", "statistic", "pvalue")})
    table["pvalue_adjusted"] = [None if np.isnan(x) else float(x) for x in adjusted]
    table.update({k: rows[k] for k in ("psi", "jensen_shannon", "hellinger", "wasserstein")})
    table["drift"] = flags
    table.update({k: rows[k] for k in ("ks_error_bound", "wasserstein_error_bound", "n_reference", "n_current",
                                       "mean_reference", "mean_current")})
    perf = _performance(ref, cur, confidence, notes, n_resamples, seed) if ref.prediction is not None else None
    return DriftResult(table=src.arrow_table(table), performance=perf, mode=mode, alpha=alpha,
                       psi_threshold=psi_threshold, adjust=adjust, confidence=confidence, n=cur.n,
                       n_reference=ref.n, n_dropped=cur.n_dropped, distributions=distributions,
                       notes=tuple(dict.fromkeys(notes)))


def _compare_column(ref, cur, c, t, s_ref, s_cur, mode, distance_bins, categorical_test, cache, notes, seg,
                    distributions) -> dict:
    row: dict = {"column": c, "type": t}
    key = (_segment_text(seg), c)
    if t == NUMERIC_T:
        cr = ref.counts(c)[s_ref]
        cc = cur.counts(c)[s_cur]
        mr, mc = ref.moments(c)[s_ref], cur.moments(c)[s_cur]
        row.update(test="ks", n_reference=int(cr.sum()), n_current=int(cc.sum()))
        if cr.sum() == 0 or cc.sum() == 0:
            notes.append(f"column {c!r}{_in(seg)}: no rows in one of the sets; not compared")
            return row
        row.update(mean_reference=float(mr[1]), mean_current=float(mc[1]))
        if mode == "exact":
            a = _segment_values(ref, c, s_ref, cache, "ref")
            b = _segment_values(cur, c, s_cur, cache, "cur")
            d, p, w, note = _math.ks_exact(a, b)
            if note:
                notes.append(f"column {c!r}{_in(seg)}: {note}")
            row.update(statistic=d, pvalue=p, wasserstein=w, ks_error_bound=0.0, wasserstein_error_bound=0.0)
        else:
            d, d_up = _math.ks_binned(cr, cc)
            w, w_err = _math.wasserstein_binned(ref.edges[c], cr, cc, (mr[3], mr[4]), (mc[3], mc[4]))
            row.update(statistic=d, pvalue=_math.ks_asymptotic_pvalue(d, int(cr.sum()), int(cc.sum())),
                       wasserstein=w, ks_error_bound=d_up - d, wasserstein_error_bound=w_err)
        groups = _math.coarse_groups(cr, distance_bins)
        gr = np.bincount(groups, weights=cr).astype(float)
        gc = np.bincount(groups, weights=cc, minlength=gr.size).astype(float)
        labels = _group_labels(ref.edges[c], groups)
    else:
        labels_r, labels_c = ref.categories(c), cur.categories(c)
        union = list(dict.fromkeys([*labels_r, *labels_c]))
        pos = {lab: i for i, lab in enumerate(union)}
        gr = np.zeros(len(union))
        gc = np.zeros(len(union))
        cr_raw, cc_raw = ref.counts(c)[s_ref], cur.counts(c)[s_cur]
        gr[[pos[x] for x in labels_r]] = cr_raw[:len(labels_r)]
        gc[[pos[x] for x in labels_c]] = cc_raw[:len(labels_c)]
        keep = (gr + gc) > 0
        gr, gc = gr[keep], gc[keep]
        labels = [str(x) for x, k in zip(union, keep) if k]
        row.update(test=categorical_test, n_reference=int(gr.sum()), n_current=int(gc.sum()))
        if gr.sum() == 0 or gc.sum() == 0:
            notes.append(f"column {c!r}{_in(seg)}: no rows in one of the sets; not compared")
            return row
        stat, p, dof = _math.g_test(gr, gc, categorical_test)
        if dof == 0:
            notes.append(f"column {c!r}{_in(seg)} has a single category in both sets: no test (p-value undefined)")
            row.update(statistic=0.0)
        else:
            row.update(statistic=stat, pvalue=p)
    psi, js, hell = _math.distances(gr, gc)
    row.update(psi=psi, jensen_shannon=js, hellinger=hell)
    distributions[key] = {"labels": labels, "reference": (gr / gr.sum()).tolist(),
                          "current": (gc / gc.sum()).tolist()}
    return row


def _in(seg) -> str:
    return f" in segment {_segment_text(seg)!r}" if seg else ""


def _segment_values(prof: Profile, c: str, s: int, cache: dict, which: str) -> np.ndarray:
    k = (which, c)
    if k not in cache:
        cache[k] = prof.values(c)
    seg_codes, vals = cache[k]
    if seg_codes is None:
        return vals
    return vals[_segment_slice(seg_codes, s)]


def _group_labels(edges, groups) -> list[str]:
    from .._protocol import fmt

    # fine bin j spans [edges[j-1], edges[j]) (bin 0 and K+1 are the tails)
    bounds = [-np.inf, *edges, np.inf]
    out = []
    for g in range(groups.max() + 1):
        idx = np.flatnonzero(groups == g)
        lo, hi = bounds[idx[0]], bounds[idx[-1] + 1]
        out.append(f"[{fmt(lo, 3)}, {fmt(hi, 3)})")
    return out


def _bootstrap_rate(e: int, n: int, rng, b: int) -> np.ndarray:
    """Poisson-bootstrap replicates of a rate e / n: the rows' Poisson(1) weights summed per cell
    (errors, correct) are Poisson(count) draws.
    """
    e_star = rng.poisson(e, b).astype(float)
    ok_star = rng.poisson(n - e, b).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return e_star / (e_star + ok_star)


def _bootstrap_auc(neg: np.ndarray, pos: np.ndarray, rng, b: int) -> np.ndarray:
    """Poisson-bootstrap replicates of the binned AUC (one Poisson draw per (bin, class) cell)."""
    neg_star = rng.poisson(np.broadcast_to(neg, (b, neg.size))).astype(float)
    pos_star = rng.poisson(np.broadcast_to(pos, (b, pos.size))).astype(float)
    below = np.cumsum(neg_star, axis=1) - neg_star
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos_star * (below + neg_star / 2.0)).sum(axis=1) / (neg_star.sum(axis=1) * pos_star.sum(axis=1))


def _performance(ref: Profile, cur: Profile, confidence: float, notes: list, n_resamples: int = 0,
                 seed=None) -> pa.Table:
    from .._special import ndtr

    cols: dict[str, list] = {k: [] for k in ("segment", "metric", "reference", "current", "difference",
                                             "standard_error", "low", "high", "pvalue", "method", "n_reference",
                                             "n_current")}
    cur_index = {lab: i for i, lab in enumerate(cur.segments)}
    rng = np.random.default_rng(seed) if n_resamples else None

    def add(seg, metric, a, b, se_a, se_b, na, nc, replicates=None):
        diff = b - a
        if replicates is None:
            se = float(np.sqrt(se_a ** 2 + se_b ** 2))
            lo, hi = interval(diff, se, confidence, "two-sided")
            method = "normal"
        else:
            reps = replicates[np.isfinite(replicates)]
            se = float(reps.std(ddof=1)) if reps.size > 1 else float("nan")
            lo, hi = np.quantile(reps, [(1 - confidence) / 2, (1 + confidence) / 2]) if reps.size else (np.nan,
                                                                                                        np.nan)
            method = "bootstrap"
        with np.errstate(divide="ignore", invalid="ignore"):
            p = float(2.0 * ndtr(-abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
        for k, v in zip(cols, (_segment_text(seg), metric, a, b, diff, se, float(lo), float(hi), p, method, na,
                               nc)):
            cols[k].append(v)

    for s_ref, seg in enumerate(ref.segments):
        s_cur = cur_index.get(seg)
        if s_cur is None:
            continue
        (nr, er), (nc, ec) = ref.performance()[s_ref], cur.performance()[s_cur]
        if nr == 0 or nc == 0:
            continue
        pr, pc_ = er / nr, ec / nc
        reps = None
        if rng is not None:
            reps = _bootstrap_rate(int(ec), int(nc), rng, n_resamples) - _bootstrap_rate(int(er), int(nr), rng,
                                                                                         n_resamples)
        add(seg, "error_rate", pr, pc_, np.sqrt(pr * (1 - pr) / nr), np.sqrt(pc_ * (1 - pc_) / nc), int(nr), int(nc),
            reps)
        sr, sc = ref.score_counts(), cur.score_counts()
        if sr is not None and sc is not None:
            auc_r, se_r = _math.auc_binned(sr[s_ref, 0], sr[s_ref, 1])
            auc_c, se_c = _math.auc_binned(sc[s_cur, 0], sc[s_cur, 1])
            if np.isnan(auc_r) or np.isnan(auc_c):
                notes.append(f"AUC{_in(seg)} is undefined: a set has a single label class")
            else:
                reps = None
                if rng is not None:
                    reps = (_bootstrap_auc(sc[s_cur, 0], sc[s_cur, 1], rng, n_resamples)
                            - _bootstrap_auc(sr[s_ref, 0], sr[s_ref, 1], rng, n_resamples))
                add(seg, "auc", auc_r, auc_c, se_r, se_c, int(nr), int(nc), reps)
    if not ref.by:
        cols.pop("segment")
    return src.arrow_table(cols)
