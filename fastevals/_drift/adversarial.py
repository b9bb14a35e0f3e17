"""Adversarial validation (the seed's steps 1-8): a classifier tells training rows from test rows.

1. split the training set at random into Training Set 1 and Training Set 2 (``train_fraction``);
2.-3. the label (when given) becomes one more feature of Training Set 1 and of the test set; the
   new target is "test" (1) or "training" (0);
4. Training Set 1 + test set = the synthetic set;
5. a classifier (default scikit-learn's ``HistGradientBoostingClassifier``) is trained on it with
   ``n_splits``-fold cross-fitting: every row gets an out-of-fold score, whose ROC AUC (DeLong
   standard error) says how separable the sets are (0.5: no detectable shift); shuffling one
   feature at a time in each held-out fold gives the features that separate them most;
6. the classifier fit on the whole synthetic set scores Training Set 2: its rows most like test
   rows are proposed as validation data (``validation_rows``), and the rows of Training Set 1
   scored most surely "training" out of fold are proposed for removal (``drop_rows``).

The data are read into memory (features only): this is a model fit, not a fold.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _source as src
from .._protocol import ConfidenceInterval
from .._special import ndtr, ndtri
from .._validation import as_column_list, check_int, check_probability, check_seed
from . import _math
from .result import AdversarialValidationResult


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError("adversarial_validation needs scikit-learn, which is not installed: "
                          "pip install scikit-learn") from None
    import sklearn.base
    import sklearn.model_selection

    return sklearn


def _read(data, columns, arg) -> pa.Table:
    source = src.open_source(data, columns_hint=columns)
    names = source.schema.names
    for c in columns:
        if c not in names:
            shown = ", ".join(repr(n) for n in names[:20])
            raise ValueError(f"unknown column {c!r} in `{arg}` (given in `features` or `label`); "
                             f"it has columns: {shown}")
        t = source.schema.field(c).type
        if not (_is_label_type(t) or pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise TypeError(f"column {c!r} of `{arg}` has type {t}; expected numbers, strings, dictionary "
                            "values or booleans")
    batches = list(source.batches(columns))
    rows = sum(b.num_rows for b in batches)
    if rows == 0:
        raise ValueError(f"empty input: `{arg}` has no rows")
    return pa.Table.from_batches(batches)


def _is_label_type(t) -> bool:
    return (pa.types.is_dictionary(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_boolean(t))


def _encode(train: pa.Table, test: pa.Table, columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature matrices (float64; nulls -> NaN; categorical -> codes over both sets) and the
    categorical mask.
    """
    xs_tr, xs_te, cat = [], [], []
    for c in columns:
        a, b = train.column(c), test.column(c)
        if _is_label_type(a.type) or _is_label_type(b.type):
            a, b = a.cast(pa.string()), b.cast(pa.string())  # dictionary, large strings, booleans
            both = pa.chunked_array(a.chunks + b.chunks, pa.string())
            codes = pc.dictionary_encode(both).combine_chunks()
            idx = np.asarray(codes.indices.to_numpy(zero_copy_only=False), dtype=np.float64)
            if codes.indices.null_count:
                idx[~np.asarray(pc.is_valid(codes.indices).to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
            xs_tr.append(idx[: len(a)])
            xs_te.append(idx[len(a):])
            cat.append(True)
        else:
            for arr, out in ((a, xs_tr), (b, xs_te)):
                vals = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
                out.append(vals)
            cat.append(False)
    return np.column_stack(xs_tr), np.column_stack(xs_te), np.asarray(cat, dtype=bool)


def _scores(model, x) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x))[:, 1]
    return np.asarray(model.decision_function(x), dtype=float)


def _auc(scores, y) -> float:
    return _math.delong(scores, y)[0]


def adversarial_validation(train, test, *, features, label=None, model=None, n_splits: int = 5,
                           train_fraction: float = 0.5, n_validation: int | None = None,
                           drop_fraction: float = 0.1, confidence: float = 0.95,
                           seed=None) -> AdversarialValidationResult:
    """Adversarial validation: how well a classifier tells the training rows from the test rows.

    Follows the seed's recipe (module docstring): the training set is split in two; a classifier
    learns "training" vs "test" on Training Set 1 + the test set with out-of-fold scores (their
    ROC AUC, with DeLong's interval, measures the shift: 0.5 = none detectable); feature
    importances come from shuffling each feature in the held-out folds; the rows of Training Set
    2 that look most like test rows are proposed as validation data.

    Parameters
    ----------
    train, test : data
        Any input of the input layer (read into memory).
    features : str or list of str
        Feature columns (numeric, or categorical: strings, dictionary, booleans).
    label : str, optional
        The original label, added as one more feature (steps 2-3); both sets need it.
    model : sklearn-compatible classifier, optional
        Cloned for every fit (default ``HistGradientBoostingClassifier`` seeded with ``seed``,
        categorical features declared as such).
    n_splits : int, default 5
        Folds of the out-of-fold scores.
    train_fraction : float, default 0.5
        Share of the training rows in Training Set 1.
    n_validation : int, optional
        Validation rows to propose (default: the rows of Training Set 2 scored at least as
        test-like as the median test row out of fold, at most as many as test rows).
    drop_fraction : float, default 0.1
        Share of Training Set 1 proposed for removal.
    confidence : float, default 0.95
    seed : int, numpy Generator or None
        Seeds the split, the folds, the shuffles and the default model; None draws a fresh seed.

    Returns
    -------
    AdversarialValidationResult

    Raises
    ------
    ImportError
        scikit-learn is not installed.
    ValueError
        Unknown column, empty input, too few rows for ``n_splits`` folds.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> train = {"a": rng.normal(size=600), "b": rng.normal(size=600)}
    >>> test = {"a": rng.normal(1.5, 1.0, size=300), "b": rng.normal(size=300)}
    >>> res = fastevals.adversarial_validation(train, test, features=["a", "b"], n_splits=3, seed=0)
    >>> res.estimate > 0.7, res.table.column("feature")[0].as_py()
    (True, 'a')
    """
    sk = _sklearn()
    feats = as_column_list("features", features, allow_none=False)
    n_splits = check_int("n_splits", n_splits, low=2)
    train_fraction = check_probability("train_fraction", train_fraction)
    drop_fraction = check_probability("drop_fraction", drop_fraction, open_interval=False)
    confidence = check_probability("confidence", confidence)
    key = check_seed("seed", seed)
    rng = np.random.default_rng(key)
    cols = feats + ([label] if label is not None and label not in feats else [])
    tr = _read(train, cols, "train")
    te = _read(test, cols, "test")
    x_train, x_test, cat = _encode(tr, te, cols)
    n_train, n_test = x_train.shape[0], x_test.shape[0]
    perm = rng.permutation(n_train)
    n1 = int(round(train_fraction * n_train))
    if n1 < n_splits or n_test < n_splits:
        raise ValueError(f"too few rows for {n_splits} folds: Training Set 1 has {n1} rows and the test set "
                         f"{n_test}; give more rows or a smaller `n_splits`")
    set1, set2 = np.sort(perm[:n1]), np.sort(perm[n1:])
    x = np.vstack([x_train[set1], x_test])
    y = np.concatenate([np.zeros(n1, dtype=np.int64), np.ones(n_test, dtype=np.int64)])
    if model is None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(categorical_features=cat if cat.any() else None,
                                               random_state=int(key % (2**32)))
    folds = sk.model_selection.StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=int(key % (2**32)))
    oof = np.zeros(y.size)
    drops = np.zeros((n_splits, len(cols)))
    notes = []
    for f, (fit_idx, held) in enumerate(folds.split(x, y)):
        m = sk.base.clone(model).fit(x[fit_idx], y[fit_idx])
        oof[held] = _scores(m, x[held])
        base = _auc(oof[held], y[held])
        for j in range(len(cols)):
            xs = x[held].copy()
            xs[:, j] = xs[rng.permutation(len(held)), j]
            drops[f, j] = base - _auc(_scores(m, xs), y[held])
    auc, se = _math.delong(oof, y)
    z = float(ndtri(0.5 + confidence / 2.0))
    ci = ConfidenceInterval(max(0.0, auc - z * se), min(1.0, auc + z * se), confidence=confidence, method="delong")
    pvalue = float(ndtr(-(auc - 0.5) / se)) if se > 0 else (0.0 if auc > 0.5 else 1.0)
    final = sk.base.clone(model).fit(x, y)
    scores2 = _scores(final, x_train[set2]) if set2.size else np.zeros(0)
    train_scores = np.empty(n_train)
    train_scores[set1] = oof[:n1]
    train_scores[set2] = scores2
    if n_validation is None:
        # as test-like as a typical test row: at or above the median out-of-fold score of the test rows
        k = min(int(np.count_nonzero(scores2 >= np.median(oof[n1:]))), n_test)
    else:
        k = min(set2.size, check_int("n_validation", n_validation, low=0))
    validation_rows = set2[np.argsort(-scores2, kind="stable")[:k]]
    n_drop = int(math.floor(drop_fraction * n1))
    drop_rows = set1[np.argsort(oof[:n1], kind="stable")[:n_drop]]
    if label is not None:
        notes.append(f"the label {label!r} was used as a feature (steps 2-3 of the recipe)")
    order = np.argsort(-drops.mean(axis=0), kind="stable")
    table = src.arrow_table({"feature": [cols[j] for j in order],
                             "importance": drops.mean(axis=0)[order],
                             "std": drops.std(axis=0, ddof=1)[order] if n_splits > 1 else np.zeros(len(cols))})
    return AdversarialValidationResult(estimate=float(auc), standard_error=float(se), confidence_interval=ci,
                                       pvalue=pvalue, table=table, validation_rows=validation_rows,
                                       drop_rows=drop_rows, train_scores=train_scores, n=int(y.size),
                                       n_train=n_train, n_test=n_test, notes=tuple(notes))
