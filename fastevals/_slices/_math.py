"""Finalize math of :func:`fastevals.slices`: tests, intervals, scores and the parent rule (NumPy only)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _source as src
from .. import _special as special
from .._stats import adjust_pvalues, chi2_sf, expected_counts, g_statistic


def g_test_2x2(e1, n1, e2, n2) -> np.ndarray:
    """P-values of the G-test of independence (no correction) of the 2 x 2 tables
    ``[[e1, n1 - e1], [e2, n2 - e2]]`` (errors / correct inside and outside); 1 where no
    difference is possible (no errors, or only errors, in both together).
    """
    e1, n1, e2, n2 = (np.asarray(a, dtype=np.float64) for a in (e1, n1, e2, n2))
    obs = np.stack([np.stack([e1, n1 - e1], -1), np.stack([e2, n2 - e2], -1)], -2)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = g_statistic(obs, expected_counts(obs))
    tot = e1 + e2
    g = np.where((tot > 0) & (tot < n1 + n2) & (n1 > 0) & (n2 > 0), np.maximum(g, 0.0), 0.0)
    return np.asarray(chi2_sf(g, 1), dtype=np.float64)


def welch_z(n1, s1, q1, n2, s2, q2):
    """Welch z of the difference of means from shifted sums (``s = sum(x - K)``, ``q = sum((x - K)**2)``).

    Returns ``(difference, standard_error, pvalue)``; where both variances are 0 the p-value is 1
    for equal means and 0 otherwise.
    """
    n1, s1, q1, n2, s2, q2 = (np.asarray(a, dtype=np.float64) for a in (n1, s1, q1, n2, s2, q2))
    with np.errstate(invalid="ignore", divide="ignore"):
        m1, m2 = s1 / n1, s2 / n2
        v1 = np.maximum(q1 - s1 * m1, 0.0) / (n1 - 1.0)
        v2 = np.maximum(q2 - s2 * m2, 0.0) / (n2 - 1.0)
        diff = m1 - m2
        se = np.sqrt(v1 / n1 + v2 / n2)
        z = diff / se
        p = 2.0 * special.ndtr(-np.abs(z))
    p = np.where(se > 0, p, np.where(diff == 0, 1.0, 0.0))
    return diff, se, p


def sliceline_score(size, mean_inside, mean_all, n_total, score_alpha):
    """SliceLine's score (Sagadeeva and Boehm 2021, eq. 1):
    ``a * (mean_inside / mean_all - 1) - (1 - a) * (n_total / size - 1)``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return score_alpha * (mean_inside / mean_all - 1.0) - (1.0 - score_alpha) * (n_total / size - 1.0)


def _cells(state):
    """Per cell of every combo: combo index, codes (padded with -1) and the stats rows."""
    combos = state.combos()
    K = max(len(cm) for cm in combos)
    m_of, codes = [], []
    for m, (cm, block) in enumerate(state.blocks()):
        dims = block.shape[:-1]
        size = math.prod(dims)
        grid = np.indices(dims).reshape(len(dims), size).T if size else np.zeros((0, len(dims)), np.int64)
        pad = np.full((size, K), -1, dtype=np.int64)
        pad[:, :len(cm)] = grid
        codes.append(pad)
        m_of.append(np.full(size, m, dtype=np.int64))
    return np.concatenate(m_of), np.concatenate(codes)


def _compare(binary, a, b, shift):
    """Tests and differences of stats rows ``a`` (inside) against ``b`` (the others): arrays (k, width)."""
    n1, n2 = a[:, 0], b[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        m1, m2 = a[:, 1] / n1 + shift, b[:, 1] / n2 + shift
    if binary:
        p = g_test_2x2(a[:, 1], n1, b[:, 1], n2)
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(m1 * (1.0 - m1) / n1 + m2 * (1.0 - m2) / n2)
        diff = m1 - m2
    else:
        diff, se, p = welch_z(n1, a[:, 1], a[:, 2], n2, b[:, 1], b[:, 2])
    return m1, m2, diff, se, p


def finalize_slices(state):
    from .result import SlicesResult

    spec = state.spec
    binary = state.binary
    shift = state.shift or 0.0
    total = state.total
    N = float(total[0])
    mean_all = total[1] / N + shift
    notes: list[str] = []
    combos = state.combos()
    m_of, codes = _cells(state)
    stats = state.stats
    size = stats[:, 0]
    outside = total[None, :] - stats
    tested = (size >= spec["min_size"]) & (outside[:, 0] >= spec["min_size"])
    idx = np.flatnonzero(tested)
    a, b = stats[idx], outside[idx]
    m1, m2, diff, se, p = _compare(binary, a, b, shift)
    zq = float(special.ndtri(0.5 + spec["confidence"] / 2.0))
    low, high = diff - zq * se, diff + zq * se
    adjust = None if spec["adjust"] == "none" else spec["adjust"]
    p_adj = adjust_pvalues(p, adjust)
    score = sliceline_score(a[:, 0], m1, mean_all, N, spec["score_alpha"])
    if mean_all == 0:
        notes.append("the overall metric is 0 (no errors): nothing to find, and SliceLine's score is undefined")
        score = np.full_like(score, np.nan)
    elif binary and mean_all == 1:
        notes.append("every row is an error: no slice can be worse than the rest")
    if not binary and mean_all < 0:
        notes.append("the mean loss is negative: SliceLine's score assumes non-negative errors")
    excess = a[:, 0] * diff
    significant = (p_adj <= spec["alpha"]) & (diff > 0)

    # the parent rule: a slice of order >= 2 is reported only if it is significantly worse than the rest of
    # every reported slice made of a subset of its conditions
    combo_index = {cm: m for m, cm in enumerate(combos)}
    blocks = [blk for _, blk in state.blocks()]
    pos_of = {int(c): k for k, c in enumerate(idx)}
    _, offsets, strides, _ = state._layout(state.levels)
    order = np.array([len(combos[m]) for m in m_of[idx]], dtype=np.int64)
    reported = np.zeros(idx.size, dtype=bool)
    pruned = 0
    for k_order in range(1, max(len(cm) for cm in combos) + 1):
        for k in np.flatnonzero(significant & (order == k_order)):
            if k_order == 1:
                reported[k] = True
                continue
            cm = combos[m_of[idx[k]]]
            lv = codes[idx[k], :len(cm)]
            keep = True
            for r in range(1, k_order):
                for sub in itertools.combinations(range(k_order), r):
                    sub_cm = tuple(cm[s] for s in sub)
                    par = blocks[combo_index[sub_cm]][tuple(int(lv[s]) for s in sub)]
                    # is the parent reported?
                    ms = combo_index[sub_cm]
                    par_cell = int(offsets[ms] + sum(int(lv[s]) * int(strides[ms, t]) for t, s in enumerate(sub)))
                    pk = pos_of.get(par_cell)
                    if pk is None or not reported[pk]:
                        continue
                    rest = (par - stats[idx[k]])[None, :]
                    if rest[0, 0] < 1 or (not binary and rest[0, 0] < 2):
                        keep = False
                        break
                    _, _, d, _, pp = _compare(binary, stats[idx[k]][None, :], rest, shift)
                    if not (d[0] > 0 and pp[0] < spec["alpha"]):
                        keep = False
                        break
                if not keep:
                    break
            if keep:
                reported[k] = True
            else:
                pruned += 1

    # slice text and values of the tested cells
    cols_list, vals_list, text = [], [], []
    names = state.slice_columns
    for c_idx in idx:
        cm = combos[m_of[c_idx]]
        cols = [names[j] for j in cm]
        vals = [state.level_label(j, codes[c_idx, t]) for t, j in enumerate(cm)]
        cols_list.append(cols)
        vals_list.append([str(v) for v in vals])
        parts = []
        for j, v in zip(cm, vals):
            c = names[j]
            parts.append(f"{c} {v}" if state.kinds[c] == "bin" else f"{c}={v}")
        text.append(" and ".join(parts))
    key = {"score": -np.nan_to_num(score, nan=-np.inf), "excess": -excess, "difference": -diff,
           "pvalue": p}[spec["sort_by"]]
    rank = np.lexsort((p, key))
    columns = {
        "slice": [text[i] for i in rank], "order": order[rank],
        "columns": [cols_list[i] for i in rank], "values": [vals_list[i] for i in rank],
        "size": a[rank, 0].astype(np.int64), "metric_inside": m1[rank], "metric_outside": m2[rank],
        "difference": diff[rank], "low": low[rank], "high": high[rank], "pvalue": p[rank],
        "pvalue_adjusted": p_adj[rank], "score": score[rank], "excess": excess[rank],
        "significant": significant[rank], "reported": reported[rank],
    }
    import pyarrow as pa

    arrays = {k: (pa.array(v, pa.list_(pa.string())) if k in ("columns", "values") else v)
              for k, v in columns.items()}
    tested_table = src.arrow_table(arrays)
    mask = pa.array(np.asarray(reported[rank]))
    table = tested_table.filter(mask).drop_columns(["significant", "reported"])
    n_untested = int(np.count_nonzero(size > 0) - idx.size)
    if idx.size == 0:
        notes.append(f"no slice has at least min_size={spec['min_size']} rows inside and outside it: "
                     "nothing was tested")
    if pruned:
        notes.append(f"{pruned} significant slice(s) of order >= 2 left out: not significantly worse "
                     f"(at alpha={spec['alpha']:g}) than the rest of a reported slice they refine")
    metric = "error_rate" if binary else "mean_loss"
    return SlicesResult(
        table=table, metric=metric, estimate=float(mean_all), n=int(state.n), n_dropped=int(state.n_dropped),
        n_tested=int(idx.size), n_untested=n_untested, n_significant=int(significant.sum()),
        n_reported=int(reported.sum()), n_pruned=int(pruned), alpha=spec["alpha"],
        adjust=spec["adjust"], confidence=spec["confidence"], min_size=spec["min_size"],
        max_order=spec["max_order"], score_alpha=spec["score_alpha"], columns=list(names),
        tested=tested_table, notes=notes,
    )

