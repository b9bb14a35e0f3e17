"""Power and sample size of a two-group experiment (normal approximation).

Closed-form helpers: no data, no state. The test is the two-sample z-test of
``H0: difference == margin`` (one-sided: ``<=`` / ``>=``), with the treatment group
``ratio`` times the control group.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import optimize

from .._protocol import Result, fmt, result_dataclass
from .._validation import check_choice, check_probability
from . import _math

_METRICS = ("mean", "proportion", "ratio")
_ALTERNATIVES = ("two-sided", "larger", "smaller")


def _real(name: str, value, *, low=None, low_open=False, high=None, high_open=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"`{name}` must be {'>' if low_open else '>='} {low}; got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"`{name}` must be {'<' if high_open else '<='} {high}; got {value!r}")
    return value


class _Design:
    """The validated design: per-unit variances of both groups and the test's settings."""

    def __init__(self, *, effect, baseline, lift, relative, metric, sd, variance, alpha, alternative, margin,
                 ratio, variance_reduction, design_effect, pooled):
        self.metric = check_choice("metric", metric, _METRICS)
        self.alternative = check_choice("alternative", alternative, _ALTERNATIVES)
        self.alpha = check_probability("alpha", alpha)
        self.margin = _real("margin", margin)
        self.ratio = _real("ratio", ratio, low=0.0, low_open=True)
        self.variance_reduction = _real("variance_reduction", variance_reduction, low=0.0, high=1.0, high_open=True)
        self.design_effect = _real("design_effect", design_effect, low=1.0)
        baseline = _real("baseline", baseline, allow_none=True)
        lift = _real("lift", lift, allow_none=True)
        effect = _real("effect", effect, allow_none=True)
        if not isinstance(relative, (bool, np.bool_)):
            raise TypeError(f"`relative` must be True or False; got {relative!r}")
        if (effect is None) == (lift is None):
            raise ValueError("give the difference to detect as `effect` (absolute) or as `lift` "
                             "(absolute, or relative to `baseline` with relative=True), not both and not neither")
        if effect is None:
            if relative:
                if baseline is None:
                    raise ValueError("`lift` with relative=True needs `baseline` (the control mean or rate)")
                effect = baseline * lift
            else:
                effect = lift
        elif relative:
            raise ValueError("relative=True applies to `lift`; `effect` is always the absolute difference")
        self.effect = effect
        self.baseline = baseline
        if self.metric == "proportion":
            if baseline is None:
                raise ValueError("metric='proportion' needs `baseline`, the control conversion rate in (0, 1)")
            check_probability("baseline", baseline)
            if sd is not None or variance is not None:
                raise ValueError("metric='proportion' takes its variance from `baseline`; do not give `sd` or "
                                 "`variance`")
            p_t = baseline + effect
            if not 0.0 < p_t < 1.0:
                raise ValueError(f"baseline + effect must be a rate in (0, 1); got {baseline} + {effect} = {p_t}")
            self.var_c = baseline * (1.0 - baseline)
            self.var_t = p_t * (1.0 - p_t)
            if pooled is None:
                pooled = self.margin == 0.0
            elif pooled and self.margin != 0.0:
                raise ValueError("pooled=True is the test of equal rates; with a `margin` the variance is unpooled")
            self.pooled = bool(pooled)
        else:
            if pooled:
                raise ValueError("`pooled` applies to metric='proportion' only")
            self.pooled = False
            if (sd is None) == (variance is None):
                what = "the delta-method variance of the ratio per unit" if self.metric == "ratio" else \
                    "the standard deviation per unit"
                raise ValueError(f"metric={self.metric!r} needs `sd` or `variance` ({what}), one of the two")
            var = _real("sd", sd, low=0.0, low_open=True) ** 2 if sd is not None else \
                _real("variance", variance, low=0.0, low_open=True)
            self.var_c = self.var_t = var
        self.inflation = self.design_effect * (1.0 - self.variance_reduction)
        shift = self.effect - self.margin
        if self.alternative == "two-sided" and shift == 0.0:
            raise ValueError("the effect equals the null value (`margin`): a two-sided test has no power to gain")
        if self.alternative == "larger" and shift <= 0.0:
            raise ValueError(f"alternative='larger' tests difference > margin; the effect {self.effect} is not above "
                             f"the margin {self.margin}, so power stays at or below alpha")
        if self.alternative == "smaller" and shift >= 0.0:
            raise ValueError(f"alternative='smaller' tests difference < margin; the effect {self.effect} is not below "
                             f"the margin {self.margin}, so power stays at or below alpha")

    def standard_errors(self, n_c, n_t):
        f = self.inflation
        se1 = np.sqrt(f * (self.var_c / n_c + self.var_t / n_t))
        if self.pooled:
            p = (self.baseline * n_c + (self.baseline + self.effect) * n_t) / (n_c + n_t)
            se0 = np.sqrt(f * p * (1.0 - p) * (1.0 / n_c + 1.0 / n_t))
        else:
            se0 = se1
        return se0, se1

    def power(self, n_c):
        se0, se1 = self.standard_errors(n_c, self.ratio * n_c)
        return _math.power_two_sample(self.effect, se0, se1, self.alpha, self.alternative, self.margin)

    def settings(self) -> dict:
        return dict(effect=self.effect, metric=self.metric, alpha=self.alpha, alternative=self.alternative,
                    margin=self.margin, ratio=self.ratio, variance_reduction=self.variance_reduction,
                    design_effect=self.design_effect, pooled=self.pooled)

    def notes(self) -> list[str]:
        out = []
        if self.metric == "proportion":
            out.append("normal approximation; variance under H0 " + (
                "pooled (the z-test of equal rates)" if self.pooled else "unpooled (Wald)"))
        if self.alternative == "two-sided":
            out.append("two-sided power counts both rejection tails (as statsmodels)")
        if self.variance_reduction:
            out.append(f"variance times (1 - {self.variance_reduction:g}) for covariate adjustment (CUPED)")
        if self.design_effect != 1.0:
            out.append(f"variance times the design effect {self.design_effect:g} (clustered units)")
        return out


def _plot_power_curve(ax, design: _Design, n_mark: float, target: float | None = None) -> None:
    ns = np.geomspace(max(n_mark / 20.0, 2.0), n_mark * 4.0, 200)
    ax.plot(ns, design.power(ns), color="C0")
    ax.axvline(n_mark, color="C1", linestyle="--", label=f"n per group = {fmt(n_mark)}")
    if target is not None:
        ax.axhline(target, color="grey", linestyle=":", label=f"power = {target:g}")
    ax.set_xscale("log")
    ax.set_xlabel("units in the control group")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")


@result_dataclass
class PowerResult(Result):
    """The power of a two-group z-test at a given size.

    Attributes
    ----------
    power : float
        Probability of rejecting H0 when the difference is ``effect``.
    n_per_group, n_treatment : float
        Units in the control group and in the treatment group (``ratio`` times the control).
    effect : float
        The absolute difference (treatment minus control) the power is computed at.
    standard_error : float
        Standard error of the difference at that size (with variance reduction and design effect).
    alpha, alternative, margin, ratio, metric, variance_reduction, design_effect, pooled
        The design.
    notes : tuple of str
        The approximations used.
    """

    power: float
    n_per_group: float
    n_treatment: float
    effect: float
    standard_error: float
    alpha: float
    alternative: str
    margin: float
    ratio: float
    metric: str
    variance_reduction: float
    design_effect: float
    pooled: bool
    notes: tuple
    _design: _Design | None = None

    def _field_names(self):
        return [n for n in Result._field_names(self) if n != "_design"]

    def _title(self) -> str:
        return f"Power of a two-group z-test ({self.metric}, {self.alternative}, alpha={self.alpha:g})"

    def _summary_lines(self) -> list[str]:
        return [f"power: {self.power:.4f}",
                f"n per group: {fmt(self.n_per_group)} control, {fmt(self.n_treatment)} treatment",
                f"effect: {fmt(self.effect)} (standard error {fmt(self.standard_error)})"]

    def _plot(self, ax) -> None:
        assert self._design is not None  # power() always sets it
        _plot_power_curve(ax, self._design, self.n_per_group)
        ax.set_title(self._title())


@result_dataclass
class SampleSizeResult(Result):
    """Units needed for a two-group z-test to reach a power.

    Attributes
    ----------
    n_per_group : int
        Units in the control group (with ``ratio=1``: in each group), rounded up.
    n_treatment : int
        Units in the treatment group: ``ratio * n_exact`` rounded up.
    n_total : int
        ``n_per_group + n_treatment``.
    n_exact : float
        The unrounded control-group size at which the power equals ``target_power``.
    power : float
        The power at the rounded sizes (at least ``target_power``).
    target_power : float
        The power asked for.
    effect, alpha, alternative, margin, ratio, metric, variance_reduction, design_effect, pooled
        The design.
    notes : tuple of str
        The approximations used.
    """

    n_per_group: int
    n_treatment: int
    n_total: int
    n_exact: float
    power: float
    target_power: float
    effect: float
    alpha: float
    alternative: str
    margin: float
    ratio: float
    metric: str
    variance_reduction: float
    design_effect: float
    pooled: bool
    notes: tuple
    _design: _Design | None = None

    def _field_names(self):
        return [n for n in Result._field_names(self) if n != "_design"]

    def _title(self) -> str:
        return f"Sample size of a two-group z-test ({self.metric}, {self.alternative}, alpha={self.alpha:g})"

    def _summary_lines(self) -> list[str]:
        lines = [f"n per group: {fmt(self.n_per_group)}"]
        if self.ratio != 1.0:
            lines = [f"n per group: {fmt(self.n_per_group)} control, {fmt(self.n_treatment)} treatment"]
        lines += [f"n total: {fmt(self.n_total)}",
                  f"power: {self.power:.4f} (target {self.target_power:g})",
                  f"effect: {fmt(self.effect)}"]
        return lines

    def _plot(self, ax) -> None:
        assert self._design is not None  # sample_size() always sets it
        _plot_power_curve(ax, self._design, self.n_exact, self.target_power)
        ax.set_title(self._title())


_DOC_DESIGN = """
    effect : float, optional
        The difference to detect, treatment minus control, in the metric's units. Give it or ``lift``.
    baseline : float, optional
        The control group's mean (``metric="proportion"``: its conversion rate, required).
    lift : float, optional
        The difference to detect as a lift over ``baseline``: absolute, or relative with ``relative=True``
        (``lift=0.01, relative=True`` is a 1% relative lift: ``effect = baseline * lift``).
    relative : bool, default False
        Whether ``lift`` is relative to ``baseline``.
    metric : {"mean", "proportion", "ratio"}, default "mean"
        ``"mean"``: per-unit standard deviation ``sd`` (or ``variance``), the same in both groups.
        ``"proportion"``: variances ``p (1 - p)`` of the control rate ``baseline`` and the treatment rate
        ``baseline + effect``. ``"ratio"``: a ratio metric (e.g. revenue per session with users as units):
        ``variance`` is its per-unit delta-method variance.
    sd, variance : float, optional
        Per-unit standard deviation or variance (``"mean"`` / ``"ratio"``).
    alpha : float, default 0.05
        Significance level (two-sided: ``alpha / 2`` per tail).
    alternative : {"two-sided", "larger", "smaller"}, default "two-sided"
        ``"larger"``: H1 is difference > ``margin``.
    margin : float, default 0.0
        The null value of the difference, as in ``fastevals.z_test``. A non-inferiority test of a
        treatment that may be at most ``m`` worse is ``alternative="larger", margin=-m``.
    ratio : float, default 1.0
        Treatment units per control unit (an unequal split: ``ratio=2`` puts 2/3 of the traffic in
        the treatment).
    variance_reduction : float, default 0.0
        Share of the variance removed by covariate adjustment (CUPED: the squared correlation of the
        metric with its pre-period covariate); the variance is multiplied by ``1 - variance_reduction``.
    design_effect : float, default 1.0
        Variance inflation of clustered units, ``1 + (m - 1) ICC`` for clusters of ``m`` units;
        sizes are then counted in units (not clusters).
    pooled : bool, optional
        Proportions only: the variance under H0 from the pooled rate (the z-test of equal rates,
        the default when ``margin == 0``) or unpooled (Wald; the only choice with a margin).
"""


def power(n_per_group: float, *, effect: float | None = None, baseline: float | None = None, lift: float | None = None,
          relative: bool = False, metric="mean", sd: float | None = None, variance: float | None = None,
          alpha: float = 0.05, alternative: str = "two-sided", margin: float = 0.0, ratio: float = 1.0,
          variance_reduction: float = 0.0, design_effect: float = 1.0, pooled: bool | None = None) -> PowerResult:
    """Power of a two-group z-test with ``n_per_group`` control units and ``ratio * n_per_group`` treated.

    Normal approximation: the difference of means is ``N(effect, se1**2)`` with
    ``se1**2 = (var_c / n_c + var_t / n_t) * design_effect * (1 - variance_reduction)``; the test rejects
    when ``(difference - margin) / se0`` passes ``z_{1 - alpha/2}`` (one-sided: ``z_{1 - alpha}``), ``se0``
    being ``se1`` except for pooled proportions. Two-sided power adds both tails, which is what
    statsmodels' ``NormalIndPower`` computes (it equals it to 1e-12 for ``metric="mean"``,
    ``effect_size = effect / sd``).

    Parameters
    ----------
    n_per_group : float
        Units in the control group (with ``ratio=1``, in each group).
    {design}

    Returns
    -------
    PowerResult

    Raises
    ------
    ValueError
        For an inconsistent design (no effect, a rate outside (0, 1), a one-sided test whose effect
        points the other way, ``sd`` missing...).

    Examples
    --------
    >>> import fastevals
    >>> round(fastevals.power(100, effect=0.5, sd=1.0).power, 4)
    0.9424
    >>> round(fastevals.power(20_000, baseline=0.10, lift=0.1, relative=True, metric="proportion").power, 3)
    0.904
    """
    n = _real("n_per_group", n_per_group, low=1.0, low_open=True)
    design = _Design(effect=effect, baseline=baseline, lift=lift, relative=relative, metric=metric, sd=sd,
                     variance=variance, alpha=alpha, alternative=alternative, margin=margin, ratio=ratio,
                     variance_reduction=variance_reduction, design_effect=design_effect, pooled=pooled)
    _, se1 = design.standard_errors(n, design.ratio * n)
    return PowerResult(power=float(design.power(n)), n_per_group=n, n_treatment=design.ratio * n,
                       standard_error=float(se1), notes=tuple(design.notes()), _design=design,
                       **design.settings())


def sample_size(*, effect: float | None = None, baseline: float | None = None, lift: float | None = None,
                relative: bool = False, metric="mean", sd: float | None = None, variance: float | None = None,
                power: float = 0.8, alpha: float = 0.05, alternative: str = "two-sided", margin: float = 0.0,
                ratio: float = 1.0, variance_reduction: float = 0.0, design_effect: float = 1.0,
                pooled: bool | None = None) -> SampleSizeResult:
    """Units per group for a two-group z-test to reach ``power`` (the inverse of :func:`power`).

    The control-group size ``n_exact`` solves ``power(n_exact) == power`` (Brent's method to 1e-12
    relative; closed form for one-sided tests without pooling would give the same); ``n_per_group``
    rounds it up, the treatment group gets ``ceil(ratio * n_exact)``.

    Parameters
    ----------
    {design}
    power : float, default 0.8
        The power to reach.

    Returns
    -------
    SampleSizeResult
        ``n_per_group`` (control), ``n_treatment``, ``n_total`` and the achieved power.

    Raises
    ------
    ValueError
        As :func:`power`.

    Examples
    --------
    How many users per arm to see a 1% relative lift in conversion from 10% (80% power, two-sided 5%):

    >>> import fastevals
    >>> fastevals.sample_size(baseline=0.10, lift=0.01, relative=True, metric="proportion").n_per_group
    1419069
    >>> fastevals.sample_size(effect=0.2, sd=1.0, power=0.9).n_per_group
    526
    """
    target = check_probability("power", power)
    design = _Design(effect=effect, baseline=baseline, lift=lift, relative=relative, metric=metric, sd=sd,
                     variance=variance, alpha=alpha, alternative=alternative, margin=margin, ratio=ratio,
                     variance_reduction=variance_reduction, design_effect=design_effect, pooled=pooled)
    if target <= design.alpha:
        raise ValueError(f"`power` ({target}) must be above `alpha` ({design.alpha}): a test has that much "
                         "power with no data")

    def gap(log_n):
        return float(design.power(math.exp(log_n))) - target

    lo, hi = math.log(1e-6), math.log(10.0)
    while gap(hi) < 0.0:
        lo, hi = hi, hi + math.log(10.0)
        if hi > math.log(1e18):
            raise ValueError("the effect is too small to detect with any sample size below 1e18 units")
    if gap(lo) > 0.0:
        n_exact = math.exp(lo)
    else:
        n_exact = math.exp(optimize.brentq(gap, lo, hi, xtol=1e-14, rtol=1e-13, maxiter=500))
    n_c = max(2, math.ceil(n_exact - 1e-9 * n_exact))
    n_t = max(2, math.ceil(design.ratio * n_exact - 1e-9 * n_exact))
    se0, se1 = design.standard_errors(n_c, n_t)
    achieved = float(_math.power_two_sample(design.effect, se0, se1, design.alpha, design.alternative,
                                            design.margin))
    return SampleSizeResult(n_per_group=int(n_c), n_treatment=int(n_t), n_total=int(n_c + n_t), n_exact=n_exact,
                            power=achieved, target_power=target, notes=tuple(design.notes()), _design=design,
                            **design.settings())


# the shared design parameters, written once (docstrings are None under python -OO)
if power.__doc__ and sample_size.__doc__:
    power.__doc__ = power.__doc__.replace("    {design}\n", _DOC_DESIGN.lstrip("\n"))
    sample_size.__doc__ = sample_size.__doc__.replace("    {design}\n", _DOC_DESIGN.lstrip("\n"))
