"""``bootstrap_models``: the seed's techniques 2 and 3 (refit models on bootstrap samples).

Replicate ``b`` refits a clone of the estimator on the training rows weighted by
the engine's counter-based Poisson weights ``w[b, i]``
(:func:`fastevals.resampling.poisson_weights`, computed per replicate, never as a
``B x N`` matrix): as ``sample_weight`` where ``fit`` takes it, else on the rows
repeated ``w`` times.  Rows of weight 0 (about 37%) are the replicate's
out-of-bag rows.
"""

from __future__ import annotations

import inspect
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .._protocol import ConfidenceInterval, optional_import
from .._validation import check_choice, check_int, check_probability, check_seed
from ._math import percentile_interval
from .result import BootstrapModelsResult
from .state import DEFAULT_SEED

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .._typing import Seed

_METRICS = ("rmse", "mse", "mae", "r2", "accuracy")


def _metric_fn(metric):
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    name = check_choice("metric", metric, _METRICS)

    def fn(y, p):
        y = np.asarray(y, dtype=float)
        p = np.asarray(p, dtype=float)
        if name == "accuracy":
            return float(np.mean(y == p))
        e = p - y
        if name == "mse":
            return float(np.mean(e * e))
        if name == "rmse":
            return float(np.sqrt(np.mean(e * e)))
        if name == "mae":
            return float(np.mean(np.abs(e)))
        ss = float(np.sum((y - y.mean()) ** 2))
        return float("nan") if ss == 0 else 1.0 - float(np.sum(e * e)) / ss

    return name, fn


def _as_2d(name: str, X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array of feature vectors; got shape {X.shape}")
    return X


def bootstrap_models(estimator: Any, X: Any, y: Any, *, n_resamples: int = 100,
                     metric: str | Callable[..., float] = "rmse", X_eval: Any | None = None, y_eval: Any | None = None,
                     X_predict: Any | None = None, confidence: float = 0.95, seed: Seed = None,
                     n_jobs: int | None = None, prefer: str = "threads") -> BootstrapModelsResult:
    """Refit a scikit-learn-compatible estimator on bootstrap samples: the metric's interval and prediction intervals.

    The seed's technique 2 (interval of a metric from models trained on
    bootstrap samples) and technique 3 (bootstrap prediction interval of a
    regression at given feature vectors).

    Parameters
    ----------
    estimator : scikit-learn estimator
        Cloned (``sklearn.base.clone``) for every replicate, so it is never changed.
    X, y : array-like
        Training data.
    n_resamples : int, default 100
        Refits (the seed's "typically 100").
    metric : {"rmse", "mse", "mae", "r2", "accuracy"} or callable
        ``metric(y_true, y_pred) -> float``.
    X_eval, y_eval : array-like, optional
        An evaluation set; without one each refit is scored on its out-of-bag rows.
    X_predict : array-like, optional
        Feature vectors to give prediction intervals for (regression).
    confidence : float, default 0.95
    seed : int, optional
        Seed of the Poisson weights; None means 0.
    n_jobs : int, optional
        Parallel refits with joblib (None: 1; -1: every core).
    prefer : {"threads", "processes"}
        joblib's backend preference: threads suit estimators that release the GIL
        (most of scikit-learn's), processes the others.

    Returns
    -------
    BootstrapModelsResult

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install scikit-learn``).
    ValueError
        Mismatched shapes, ``y_eval`` without ``X_eval``, bad options.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from fastevals import bootstrap_models
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 1)); y = 1 + 2 * X[:, 0] + rng.normal(size=200)
    >>> r = bootstrap_models(LinearRegression(), X, y, n_resamples=50, X_predict=[[0.0]], seed=1)
    >>> lo, hi = r.confidence_interval
    >>> bool(0.8 < lo < hi < 1.3)
    True
    """
    base = optional_import("sklearn.base", "bootstrap_models")
    n_resamples = check_int("n_resamples", n_resamples, low=2)
    confidence = check_probability("confidence", confidence)
    seed = DEFAULT_SEED if seed is None else check_seed("seed", seed)
    prefer = check_choice("prefer", prefer, ("threads", "processes"))
    name, fn = _metric_fn(metric)
    X = _as_2d("X", X)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"`y` must be 1-D with one value per row of `X` ({X.shape[0]}); got shape {y.shape}")
    if X.shape[0] < 2:
        raise ValueError("`X` needs at least two rows")
    if (X_eval is None) != (y_eval is None):
        raise ValueError("give both `X_eval` and `y_eval`, or neither (then out-of-bag rows are used)")
    if X_eval is not None:
        X_eval = _as_2d("X_eval", X_eval)
        y_eval = np.asarray(y_eval)
        if y_eval.shape != (X_eval.shape[0],):
            raise ValueError(f"`y_eval` must have one value per row of `X_eval` ({X_eval.shape[0]})")
    Xp = None if X_predict is None else _as_2d("X_predict", X_predict)
    if Xp is not None and Xp.shape[1] != X.shape[1]:
        raise ValueError(f"`X_predict` must have {X.shape[1]} columns (as `X`); got {Xp.shape[1]}")
    try:
        takes_weight = "sample_weight" in inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        takes_weight = False

    def one(b):
        from .._bootstrap import poisson_weights

        w = poisson_weights(X.shape[0], 1, seed, first_replicate=b)[0]
        model = base.clone(estimator)
        if takes_weight:
            model.fit(X, y, sample_weight=w.astype(np.float64))
        else:
            rows = np.repeat(np.arange(X.shape[0]), w)
            model.fit(X[rows], y[rows])
        oob = np.flatnonzero(w == 0)
        if X_eval is not None:
            score = fn(y_eval, model.predict(X_eval))
        else:
            score = fn(y[oob], model.predict(X[oob])) if oob.size else float("nan")
        pred = resid = None
        if Xp is not None:
            pred = np.asarray(model.predict(Xp), dtype=np.float64)
            resid = (y[oob] - model.predict(X[oob])).astype(np.float64) if oob.size else np.zeros(0)
        return score, pred, resid

    if n_jobs is None or n_jobs == 1:
        out = [one(b) for b in range(n_resamples)]
    else:
        joblib = optional_import("joblib", "bootstrap_models(n_jobs=...)")
        out = joblib.Parallel(n_jobs=n_jobs, prefer=prefer)(joblib.delayed(one)(b) for b in range(n_resamples))
    reps = np.array([o[0] for o in out], dtype=np.float64)
    notes = []
    if np.isnan(reps).any():
        notes.append(f"{int(np.isnan(reps).sum())} refit(s) had no metric (no out-of-bag rows or undefined): "
                     "left out of the interval")
    full = base.clone(estimator).fit(X, y)
    if X_eval is not None:
        estimate, on = fn(y_eval, full.predict(X_eval)), f"evaluation set of {X_eval.shape[0]:,} rows"
    else:
        estimate, on = float(np.nanmean(reps)), "out-of-bag rows"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = percentile_interval(reps, confidence)
        se = float(np.nanstd(reps, ddof=1))
    table = None
    if Xp is not None:
        P = np.stack([o[1] for o in out])  # (B, m)
        plow, phigh = percentile_interval(P, confidence)
        # residual-augmented: each refit's prediction plus each of its out-of-bag residuals
        pooled = [P[b][:, None] + out[b][2][None, :] for b in range(n_resamples) if out[b][2].size]
        allv = np.concatenate(pooled, axis=1)
        pilow, pihigh = percentile_interval(allv.T, confidence)
        table = pa.table({"row": np.arange(Xp.shape[0]), "prediction": np.asarray(full.predict(Xp), float),
                          "low": plow, "high": phigh, "pi_low": pilow, "pi_high": pihigh})
    return BootstrapModelsResult(
        estimate=float(estimate), standard_error=se,
        confidence_interval=ConfidenceInterval(low, high, confidence=confidence, method="percentile"),
        metric=name, evaluated_on=on, replicates=reps, table=table, n=int(X.shape[0]), n_resamples=n_resamples,
        seed=seed, fit_with="sample_weight" if takes_weight else "resampled rows", notes=tuple(notes))
