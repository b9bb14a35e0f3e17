"""Simulated A/A tests with many looks: what peeking does to the false positive rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from scipy import special, stats

from .._config import PARALLEL_MIN_ROWS
from .._fold import check_backend
from .._protocol import Result, result_dataclass
from .._validation import check_choice, check_int, check_probability, check_seed
from . import _math

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Seed

METHODS = ("naive", "msprt", "confidence_sequence", "group_sequential")
#: the seed used when ``seed=None`` (a simulation is reproducible by default)
DEFAULT_SEED = 0


def peeking_boundaries(methods, n_looks: int, n_per_look: int, alpha: float, tau2, tuning: float,
                       spending: str) -> np.ndarray:
    """The z boundaries (n_methods, n_looks) of each method at each look of the simulation (unit variance,
    ``n_per_look`` new rows per arm per look).
    """
    k = np.arange(1, n_looks + 1, dtype=np.float64)
    n_arm = k * n_per_look
    var = 2.0 / n_arm
    out = np.empty((len(methods), n_looks))
    for i, m in enumerate(methods):
        if m == "naive":
            out[i] = stats.norm.isf(alpha / 2.0)
        elif m == "msprt":
            out[i] = _math.mixture_z_boundary(var, _math.msprt_tau2(var, n_arm, n_arm, tau2), alpha)
        elif m == "confidence_sequence":
            out[i] = _math.mixture_z_boundary(var, _math.cs_tau2(var, 2.0 * n_arm, alpha, tuning), alpha)
        else:
            out[i] = _math.group_sequential_z(k / n_looks, alpha, spending, 2)[0]
    return out


@result_dataclass
class PeekingResult(Result):
    """False positive rate (or power, with an effect) of each method in simulated experiments.

    Attributes
    ----------
    table : pyarrow.Table
        One row per method: ``method``, ``estimate`` (share of experiments that rejected at some
        look), ``low``/``high`` (Clopper-Pearson interval), ``n`` (experiments), ``rejections``,
        ``mean_stop_look`` (mean 1-based look of the rejections).
    rejection_curve : numpy.ndarray
        (n_methods, n_looks): share of experiments rejected by each look.
    methods : tuple of str
    n_experiments, n_looks, n_per_look : int
    alpha, effect : float
    seed : int
    confidence : float
        Confidence level of the ``low``/``high`` intervals.
    notes : tuple of str
    """

    table: pa.Table
    rejection_curve: np.ndarray
    methods: tuple
    n_experiments: int
    n_looks: int
    n_per_look: int
    alpha: float
    effect: float
    seed: int
    confidence: float
    notes: tuple

    def rate(self, method: str) -> float:
        """The rejection rate of ``method``."""
        return float(self.rejection_curve[self.methods.index(method), -1])

    def _title(self) -> str:
        what = "A/A experiments" if self.effect == 0 else f"experiments with effect {self.effect:g} sd"
        return (f"Peeking: {self.n_experiments:,} simulated {what}, {self.n_looks} looks of {self.n_per_look:,} "
                f"rows per arm, alpha={self.alpha:g}")

    def _plot(self, ax) -> None:
        looks = np.arange(1, self.n_looks + 1)
        for i, m in enumerate(self.methods):
            ax.plot(looks, self.rejection_curve[i], label=m, color=f"C{i}")
        ax.axhline(self.alpha, color="grey", linestyle="--", label=f"alpha = {self.alpha:g}")
        ax.set_xlabel("look")
        ax.set_ylabel("share of experiments rejected so far" + (" (false positives)" if self.effect == 0 else ""))
        ax.set_ylim(0, None)
        ax.set_title(self._title(), fontsize=9)
        ax.legend()


def simulate_peeking(n_experiments: int = 10_000, n_looks: int = 100, n_per_look: int = 100, *, alpha: float = 0.05,
                     effect: float = 0.0, methods: Sequence[str] = METHODS, tau2: float | None = None,
                     tuning: float = 5000.0, spending: str = "obrien_fleming", seed: Seed = None,
                     confidence: float = 0.95, backend: str = "auto") -> PeekingResult:
    """Simulate experiments that are looked at after every batch of rows; count each method's rejections.

    Each experiment has two arms with ``N(0, 1)`` rows (the treatment: ``N(effect, 1)``); after each
    of ``n_looks`` looks, ``n_per_look`` new rows per arm have arrived, and each method compares the z
    statistic of the difference of the cumulative means (known unit variance) with its boundary:

    * ``"naive"``: the fixed-sample two-sided z-test at every look (what peeking at a dashboard does);
    * ``"msprt"``: the mixture SPRT (``tau2`` as in :func:`sequential_test`: default 0.01, a tenth
      of a standard deviation);
    * ``"confidence_sequence"``: the asymptotic confidence sequence, tightest at ``tuning`` rows;
    * ``"group_sequential"``: Lan-DeMets boundaries (``spending``) for ``n_looks`` equal looks.

    With ``effect=0`` (A/A) the rejection rate is the false positive rate: the naive test's is far above
    ``alpha``, the others' at or under it. Compiled (numba, ``prange`` over experiments), with
    counter-based normal draws: the same numbers on any thread count.

    Parameters
    ----------
    n_experiments : int, default 10_000
    n_looks : int, default 100
    n_per_look : int, default 100
        New rows per arm per look.
    alpha : float, default 0.05
    effect : float, default 0.0
        Mean difference of the treatment, in standard deviations (non-zero: the rates are powers).
    methods : sequence of str, default all four
    tau2 : float, optional
        mSPRT mixing variance (rows have unit variance; None: 0.01).
    tuning : float, default 5000
        Rows (both arms) where the confidence sequence is tightest.
    spending : {"obrien_fleming", "pocock"}, default "obrien_fleming"
    seed : int, optional
        None: the fixed seed 0, so a default run is reproducible.
    confidence : float, default 0.95
        Level of the Clopper-Pearson interval of each rate.
    backend : {"auto", "cpu"}, default "auto"

    Returns
    -------
    PeekingResult
        ``table`` with one rate per method, ``rejection_curve``, ``plot()``.

    Raises
    ------
    ValueError
        For an unknown method or non-positive sizes.

    Examples
    --------
    >>> import fastevals
    >>> r = fastevals.simulate_peeking(2_000, 20, 50, seed=1)
    >>> r.rate("naive") > 0.1 > 0.05 >= r.rate("msprt")
    True
    """
    check_backend(backend)
    n_experiments = check_int("n_experiments", n_experiments, low=1, high=2**31 - 1)
    n_looks = check_int("n_looks", n_looks, low=1, high=100_000)
    n_per_look = check_int("n_per_look", n_per_look, low=1)
    alpha = check_probability("alpha", alpha)
    confidence = check_probability("confidence", confidence)
    effect = float(effect)
    if not np.isfinite(effect):
        raise ValueError(f"`effect` must be finite; got {effect!r}")
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(check_choice("methods", m, METHODS) for m in methods)
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f"`methods` must name distinct methods among {METHODS}; got {methods!r}")
    if tau2 is not None and not (float(tau2) > 0):
        raise ValueError(f"`tau2` must be positive; got {tau2!r}")
    if not float(tuning) > 0:
        raise ValueError(f"`tuning` must be positive; got {tuning!r}")
    spending = check_choice("spending", spending, _math.SPENDINGS)
    seed = DEFAULT_SEED if seed is None else check_seed("seed", seed)
    if "group_sequential" in methods and n_looks > 1000:
        raise ValueError("group_sequential boundaries are computed for at most 1000 looks")
    bounds = np.ascontiguousarray(peeking_boundaries(methods, n_looks, n_per_look, alpha, tau2, float(tuning),
                                                     spending))
    from .._kernels import experiments as kern

    key = kern.simulation_key(seed)
    kernel = kern.peeking_parallel if n_experiments * n_looks >= PARALLEL_MIN_ROWS else kern.peeking_serial
    stop, _ = kernel(key, n_experiments, n_looks, n_per_look, effect, bounds)
    return _peeking_result(stop, methods, n_experiments, n_looks, n_per_look, alpha, effect, seed, confidence)


def _peeking_result(stop, methods, n_experiments, n_looks, n_per_look, alpha, effect, seed, confidence):
    curve = np.empty((len(methods), n_looks))
    rows = {"method": [], "estimate": [], "low": [], "high": [], "n": [], "rejections": [], "mean_stop_look": []}
    for i, m in enumerate(methods):
        s = stop[:, i]
        hit = s[s >= 0]
        counts = np.bincount(hit, minlength=n_looks)
        curve[i] = np.cumsum(counts) / n_experiments
        k = int(hit.size)
        tail = (1.0 - confidence) / 2.0  # Clopper-Pearson, from the beta quantiles
        low = special.betaincinv(k, n_experiments - k + 1, tail) if k > 0 else 0.0
        high = special.betaincinv(k + 1, n_experiments - k, 1.0 - tail) if k < n_experiments else 1.0
        rows["method"].append(m)
        rows["estimate"].append(k / n_experiments)
        rows["low"].append(float(low))
        rows["high"].append(float(high))
        rows["n"].append(n_experiments)
        rows["rejections"].append(k)
        rows["mean_stop_look"].append(float(hit.mean() + 1.0) if k else None)
    table = pa.table({k: pa.array(v, pa.float64() if k == "mean_stop_look" else None) for k, v in rows.items()})
    notes = ("rows N(0, 1) with known variance; a look's z uses the cumulative means of both arms",)
    return PeekingResult(table=table, rejection_curve=curve, methods=methods, n_experiments=n_experiments,
                         n_looks=n_looks, n_per_look=n_per_look, alpha=alpha, effect=effect, seed=seed,
                         confidence=confidence, notes=notes)

