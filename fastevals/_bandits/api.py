"""Replay (sequential, through the one fold engine) and parallel simulation of bandit policies."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _source as src
from .. import _stats
from .._fold import check_backend, fold
from .._protocol import LABEL, NUMERIC, ConfidenceInterval, State
from .._validation import check_choice, check_int, check_probability, check_seed
from ._math import (
    NonUniformLoggingWarning,
    _check_uniform_arms,
    _checkpoints,
    _derive_seed,
    _ips_estimates,
    _z,
)
from .result import ReplayResult, SimulationResult
from .state import (
    _POLICY_ALIASES,
    UCB1,
    _as_float64,
    _bad_reward_text,
    _check_policy,
    _in_memory_table,
    _kernels,
    _make_policy,
    _Policy,
    _readonly,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Data, Filter, Seed

# ----------------------------------------------------------------------------------------------------
# replay


class _ArmLabels(State):
    """The sorted arm labels of a log (a policy given by name needs them first); no kind: internal."""

    def __init__(self, *, arm: str, columns: dict, nulls="raise", filter=None, batch_size=None, progress=None):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self.arm, self._reqs = arm, columns
        self.seen: set = set()

    def _params(self) -> dict:
        return {"arm": self.arm}

    def _requirements(self) -> dict:
        return self._reqs

    def _update_batch(self, batch, rows) -> None:
        col = batch.column(self.arm)
        if pa.types.is_dictionary(col.type):
            col = col.dictionary.take(pc.unique(col.indices))
        self.seen.update(src._plain(v) for v in pc.unique(col).to_pylist())

    def _merge_from(self, other) -> None:
        self.seen = self.seen | other.seen

    def finalize(self) -> list:
        self.check_not_empty()
        try:
            return sorted(self.seen)
        except TypeError:
            return sorted(self.seen, key=repr)


class _ReplayState(State):
    """Replay of a policy over a log in its order (sequential: it folds, but does not merge).

    Internal (no kind): :func:`replay` folds it with :func:`fastevals._fold.fold` in this process.
    """

    def __init__(self, policy: _Policy, *, arm: str, reward: str, propensity, update_every: int,
                 confidence: float, nulls="raise", filter=None, batch_size=None, progress=None):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self.pol = policy
        self.arm, self.reward, self.propensity = arm, reward, propensity
        self.update_every = update_every
        self.confidence = confidence
        k = policy.n_arms
        self.pend = np.zeros((3, k), dtype=np.float64)
        self.carry = np.array([0, 0, 0, -1], dtype=np.int64)
        self.logged = np.zeros(k, dtype=np.int64)
        self.kept_rewards: list = []
        self.kept_arms: list = []
        self.kept_props: list = []
        self.pmin, self.pmax = math.inf, -math.inf

    def _params(self) -> dict:
        return {"policy": self.pol.name, "arm": self.arm, "reward": self.reward, "propensity": self.propensity,
                "update_every": self.update_every}

    def _requirements(self) -> dict:
        need = {self.arm: ("arm", LABEL), self.reward: ("reward", NUMERIC)}
        if self.propensity:
            need[self.propensity] = ("propensity", NUMERIC)
        return need

    def _merge_from(self, other) -> None:
        raise ValueError("replay is sequential over the log's events: its states do not merge "
                         "(replay a log in one process; parallelize over policies or seeds instead)")

    def _update_batch(self, batch, rows) -> None:
        pol = self.pol
        kb = _kernels()
        n = batch.num_rows
        p1, p2, kseed = pol._kernel_params()
        a = batch.column(self.arm)
        codes, offset, lut = pol._lut_for(a, f"column {self.arm!r}")
        r = _as_float64(src.numeric_view(batch.column(self.reward)))
        if self.propensity:
            pcol = batch.column(self.propensity)
            mm = pc.min_max(pcol).as_py()
            if not (0 < mm["min"] and mm["max"] <= 1):
                bad = mm["min"] if not 0 < mm["min"] else mm["max"]
                raise ValueError(f"column {self.propensity!r} (given as `propensity`) has {bad!r}; "
                                 "propensities must be in (0, 1]")
            self.pmin, self.pmax = min(self.pmin, mm["min"]), max(self.pmax, mm["max"])
        kept_rows = np.empty(n, dtype=np.int64)
        karms = np.empty(n, dtype=np.int64)
        n_kept, bad_arm, bad_reward = kb.replay_batch(
            pol._kind, p1, p2, kseed, _readonly(codes), np.intp(offset), lut, _readonly(r),
            pol._counts, pol._sums, pol._sq, self.pend, self.carry, self.update_every, kept_rows, karms,
            self.logged)
        row_of = (lambda i: rows.start + i) if rows.kept is None else (lambda i: rows.start + int(rows.kept[i]))
        if bad_arm >= 0:
            raise ValueError(f"column {self.arm!r} (given as `arm`) has {a[int(bad_arm)].as_py()!r} at row "
                             f"{row_of(int(bad_arm))}; arms must be {pol._arms_allowed()}")
        if bad_reward >= 0:
            raise ValueError(_bad_reward_text(f"column {self.reward!r} (given as `reward`)", float(r[bad_reward]),
                                              row_of(int(bad_reward))))
        kept_rows = kept_rows[:n_kept]
        self.kept_rewards.append(np.asarray(r[kept_rows], dtype=np.float64))
        self.kept_arms.append(karms[:n_kept])
        if self.propensity:
            props = src.numeric_view(batch.column(self.propensity))
            self.kept_props.append(np.asarray(props[kept_rows], dtype=np.float64))

    def finalize(self) -> ReplayResult:
        self.check_not_empty()
        pol = self.pol.copy()
        # the events still pending at the end belong to the returned policy
        pol._counts = pol._counts + self.pend[0].astype(np.int64)
        pol._sums = pol._sums + self.pend[1]
        pol._sq = pol._sq + self.pend[2]
        k = pol.n_arms
        level = self.confidence
        n_events = int(self.carry[0])
        rk = np.concatenate(self.kept_rewards) if self.kept_rewards else np.zeros(0)
        ak = np.concatenate(self.kept_arms) if self.kept_arms else np.zeros(0, dtype=np.int64)
        n_kept = len(rk)
        z = _z(level)
        binary = bool(n_kept) and bool(np.all((rk == 0.0) | (rk == 1.0)))
        nan_ci = ConfidenceInterval(math.nan, math.nan, confidence=level)
        if n_kept:
            curve = np.cumsum(rk) / np.arange(1, n_kept + 1)
            est = float(curve[-1])
            if binary:
                # 0/1 rewards: Wilson's interval, which is not degenerate at 0 or 1 (a normal one is [0, 0]
                # when no kept event was rewarded)
                lo, hi = _stats.wilson_interval(est, n_kept, z)
                ci = ConfidenceInterval(lo, hi, confidence=level, method="wilson")
            elif n_kept > 1:
                half = z * float(np.std(rk, ddof=1)) / math.sqrt(n_kept)
                ci = ConfidenceInterval(est - half, est + half, confidence=level, method="normal")
            else:
                ci = nan_ci
        else:
            curve, est, ci = np.zeros(0), math.nan, nan_ci
        ips = snips = ips_ci = snips_ci = None
        if self.propensity:
            pk = np.concatenate(self.kept_props) if self.kept_props else np.zeros(0)
            ips, ips_ci, snips, snips_ci = _ips_estimates(rk, pk, n_events, z, binary)
            ips_ci = ConfidenceInterval(ips_ci.low, ips_ci.high, confidence=level, method=ips_ci.method or "normal")
            snips_ci = ConfidenceInterval(snips_ci.low, snips_ci.high, confidence=level,
                                          method=snips_ci.method or "delta")
            if self.pmax - self.pmin > 1e-9 * self.pmax:
                warnings.warn(
                    f"logging propensities range from {self.pmin:.4g} to {self.pmax:.4g}: the log is not from a "
                    "uniformly random policy, so the replay estimate may be biased; use the IPS/SNIPS estimates",
                    NonUniformLoggingWarning, stacklevel=4)
        else:
            _check_uniform_arms(self.logged, pol, self.arm)
        kept_per_arm = np.bincount(ak, minlength=k).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_kept = np.bincount(ak, weights=rk, minlength=k) / kept_per_arm
        arm_col = src.arrow_array(list(pol.arm_labels)) if pol.arm_labels is not None \
            else pa.array(np.arange(k, dtype=np.int64))
        table = pa.table({"arm": arm_col, "logged": pa.array(self.logged.copy()), "kept": pa.array(kept_per_arm),
                          "mean_reward": src.numpy_to_arrow(mean_kept, nan_is_null=True)})
        return ReplayResult(
            estimate=est, confidence_interval=ci, n_kept=n_kept, n=n_events, n_dropped=self.n_dropped, ips=ips,
            ips_ci=ips_ci, snips=snips, snips_ci=snips_ci, confidence=level, update_every=self.update_every,
            policy=pol, reward_curve=curve, kept_per_arm=kept_per_arm, logged_per_arm=self.logged.copy(),
            table=table)


def replay(data: Data, policy: State | str, *, arm: str = "arm", reward: str = "reward", propensity: str | None = None,
           update_every: int = 1, confidence: float = 0.95, seed: Seed = None, nulls: str = "raise",
           filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
           engine: str | None = None, backend: str = "auto") -> ReplayResult:
    """Evaluate a bandit policy offline on a logged stream (Li, Chu, Langford & Wang 2011).

    The log is read in its order. At each event the policy picks an arm; the
    event counts only where that is the logged arm, and its reward then
    updates the policy. Under uniformly random logging, the mean reward of
    the kept events estimates the policy's per-step reward without bias.

    Parameters
    ----------
    data : source
        Arrow table, Parquet path/glob, DataFrame, dict of arrays... with
        columns ``arm`` and ``reward`` (and ``propensity`` when given).
    policy : policy state or str
        A :class:`UCB1`, :class:`UCB1Tuned`, :class:`ThompsonSampling` or
        :class:`EpsilonGreedy` (it is copied, not changed; a trained state
        starts warm), or a name ("ucb1", "ucb1-tuned", "thompson",
        "epsilon-greedy") for a fresh policy over the sorted arm labels of the
        log (an extra pass over it).
    arm, reward : str
        Column names. Rewards must lie in [0, 1].
    propensity : str, optional
        Column with the logging policy's probability of the logged arm, in
        (0, 1]. Adds IPS and self-normalized IPS estimates; a non-constant
        propensity raises :class:`NonUniformLoggingWarning`.
    update_every : int
        The policy applies kept events in groups of ``update_every``, as a
        production system that updates periodically (default 1).
    confidence : float
        Level of the intervals.
    seed : int, optional
        Seed of a policy made from a name (Thompson, epsilon-greedy).
    nulls : {"raise", "drop"}
    filter : pyarrow.compute.Expression, optional
    batch_size : int, optional
        Rows per scanned batch (the answer does not depend on it).
    progress : bool, optional
    engine : {None, "auto", "arrow"}
        Replay is sequential over the log's events and runs in this process: a Dask
        input (or ``engine="dask"``) is refused with a ValueError saying so.
    backend : {"auto", "cpu"}
        Replay runs on the CPU; ``"cuda"`` is refused.

    Returns
    -------
    ReplayResult

    Raises
    ------
    ValueError
        Unknown columns, arms that are not the policy's, rewards outside [0, 1],
        propensities outside (0, 1], empty input, a Dask input.
    TypeError
        A ``policy`` that is not a policy state or name; columns of the wrong type.

    Notes
    -----
    Without a propensity column, a log whose arm frequencies are far from
    uniform (chi-square goodness of fit, p < 0.001) also raises
    :class:`NonUniformLoggingWarning`.

    Examples
    --------
    >>> import numpy as np
    >>> import fastevals
    >>> rng = np.random.default_rng(0)
    >>> arms = rng.integers(0, 3, 30_000)
    >>> clicks = rng.random(30_000) < np.array([0.1, 0.2, 0.3])[arms]
    >>> res = fastevals.replay({"arm": arms, "reward": clicks}, fastevals.UCB1(3))
    >>> 0.2 < res.estimate < 0.31
    True

    References
    ----------
    L. Li, W. Chu, J. Langford and X. Wang, "Unbiased Offline Evaluation of
    Contextual-bandit-based News Article Recommendation Algorithms", WSDM 2011.
    """
    from .. import _dask

    update_every = check_int("update_every", update_every, low=1)
    level = check_probability("confidence", confidence)
    check_backend(backend)
    if _dask.wants_dask(data, engine):
        raise ValueError("replay is sequential over the log's events and runs in one process, not on Dask: "
                         "read the log here (leave `engine` unset), or parallelize over policies or seeds")
    if not isinstance(arm, str) or not isinstance(reward, str):
        raise TypeError("`arm` and `reward` must be column names (str)")
    if propensity is not None and not isinstance(propensity, str):
        raise TypeError(f"`propensity` must be a column name or None; got {propensity!r}")
    columns = [arm, reward] + ([propensity] if propensity else [])
    if len(set(columns)) != len(columns):
        raise ValueError(f"`arm`, `reward` and `propensity` must be different columns; got {columns!r}")
    scan = dict(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
    data = _in_memory_table(data, filter, columns)  # converted once for both passes
    if isinstance(policy, str):
        check_choice("policy", policy, tuple(_POLICY_ALIASES))
        if not src.open_source(data, filter=filter, columns_hint=columns).rescannable:
            raise ValueError(
                "`policy` given by name needs the arms first, but this input (a record batch stream) can be read "
                "only once; pass a policy object such as fastevals.UCB1(n_arms, arm_labels=[...])")
        reqs = {arm: ("arm", LABEL), reward: ("reward", NUMERIC)}
        if propensity:
            reqs[propensity] = ("propensity", NUMERIC)
        labels = fold(_ArmLabels(arm=arm, columns=reqs, **scan), data).finalize()
        pol = _make_policy(policy, len(labels), labels, seed)
    else:
        pol = _check_policy(policy).copy()
    state = _ReplayState(pol, arm=arm, reward=reward, propensity=propensity, update_every=update_every,
                         confidence=level, **scan)
    return fold(state, data, engine=engine).finalize()


# ----------------------------------------------------------------------------------------------------
# simulation


def simulate(policy: State | str, arm_means: Sequence[float], *, n_steps: int, n_runs: int = 1000,
             seed: Seed = None, rewards: str = "bernoulli", concentration: float = 10.0,
             curve_points: int = 1000, confidence: float = 0.95, band: float = 0.9, backend: str = "auto"
             ) -> SimulationResult:
    """Simulate many independent runs of a bandit policy, in parallel.

    Parameters
    ----------
    policy : policy state or str
        A policy state (every run starts from a copy of it; a fresh state
        starts empty) or a name: "ucb1", "ucb1-tuned", "thompson",
        "epsilon-greedy" (epsilon 0.1).
    arm_means : sequence of float
        Mean reward of each arm, in [0, 1].
    n_steps, n_runs : int
        Plays per run and number of runs.
    seed : int, optional
        All random numbers (rewards and the policy's own draws) are a
        counter-based hash of (seed, run, step), so the result is the same
        on any number of threads. None draws a fresh seed (``result.seed``).
    rewards : {"bernoulli", "beta"}
        Reward distribution of an arm with mean mu: Bernoulli(mu), or
        Beta(mu * c, (1 - mu) * c) with ``c = concentration`` (means in (0, 1)).
    concentration : float
    curve_points : int
        Checkpoints of the regret curve (every step when ``n_steps`` is smaller).
    confidence : float
        Level of the normal interval of the final mean regret.
    band : float
        Level of the pointwise quantile band of the regret curve over runs.
    backend : {"auto", "cpu", "cuda"}
        Where the runs are simulated: ``"cuda"`` runs them on an NVIDIA GPU (one
        thread per run; UCB1 with Bernoulli rewards, up to 64 arms), with the same
        counter-based rewards, so the same plays as the CPU; ``"auto"`` uses the GPU
        only when one is present, the policy is supported and ``n_runs x n_steps`` is
        large (see ``fastevals._cuda.backend``). The result says which ran.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError
        Arm means outside [0, 1], invalid sizes or levels, an unsupported CUDA run.

    Examples
    --------
    >>> import fastevals
    >>> sim = fastevals.simulate("ucb1", [0.1, 0.12, 0.15], n_steps=2000, n_runs=200, seed=1)
    >>> bool(sim.final_regret < sim.regret_bound(2000))
    True
    """
    means = np.asarray(arm_means, dtype=np.float64)
    if means.ndim != 1 or means.size < 1:
        raise ValueError(f"`arm_means` must be a non-empty 1-d sequence; got {arm_means!r}")
    if not np.all((means >= 0) & (means <= 1)):
        raise ValueError(f"`arm_means` must be in [0, 1]; got {means.tolist()!r}")
    n_steps = check_int("n_steps", n_steps, low=1)
    n_runs = check_int("n_runs", n_runs, low=1)
    curve_points = check_int("curve_points", curve_points, low=2)
    confidence = check_probability("confidence", confidence)
    band = check_probability("band", band)
    dist = check_choice("rewards", rewards, ("bernoulli", "beta"))
    if dist == "beta":
        if not np.all((means > 0) & (means < 1)):
            raise ValueError("`arm_means` must be in (0, 1) for rewards='beta'")
        if not (isinstance(concentration, numbers.Real) and 0 < concentration < math.inf):
            raise ValueError(f"`concentration` must be a positive number; got {concentration!r}")
    seed = check_seed("seed", seed)
    if isinstance(policy, str):
        pol = _make_policy(policy, means.size, None, seed)
    else:
        pol = _check_policy(policy)
        if pol.n_arms != means.size:
            raise ValueError(f"`policy` has {pol.n_arms} arms but `arm_means` has {means.size}")
    # keep the stored curve at most ~50M numbers
    points = max(2, min(curve_points, 50_000_000 // n_runs))
    cp = _checkpoints(n_steps, points)
    p1, p2, _ = pol._kernel_params()
    kb = _kernels()
    on_gpu = _simulation_backend(backend, pol, dist, means.size, n_runs * n_steps) == "cuda"
    if on_gpu:
        from .._cuda import bandits as kb
    regret, pulls = kb.simulate_runs(
        pol._kind, p1, p2, _derive_seed(seed, 1), _derive_seed(seed, 2), means,
        0 if dist == "bernoulli" else 1, float(concentration), n_steps, n_runs,
        pol._counts, pol._sums, pol._sq, cp)
    mean_regret = regret.mean(axis=0)
    se = regret.std(axis=0, ddof=1) / math.sqrt(n_runs) if n_runs > 1 else np.full(cp.size, np.nan)
    q = (1.0 - band) / 2.0
    lo, hi = np.quantile(regret, [q, 1.0 - q], axis=0)
    total = pulls.sum(axis=0)
    z = _z(confidence)
    final = float(mean_regret[-1])
    fci = ConfidenceInterval(final - z * float(se[-1]), final + z * float(se[-1]), confidence=confidence,
                             method="normal")
    return SimulationResult(
        final_regret=final, final_regret_ci=fci, n_runs=n_runs, n_steps=n_steps, policy=pol.name,
        confidence=confidence, band=band, seed=seed, backend="cuda" if on_gpu else "cpu", steps=cp,
        mean_regret=mean_regret, regret_band=ConfidenceInterval(lo, hi, confidence=band, method="quantiles of runs"),
        regret_standard_error=se, arm_frequency=total / total.sum(), mean_pulls=total / n_runs, arm_means=means)


def _simulation_backend(backend, pol, dist: str, n_arms: int, work: int) -> str:
    """``resolve_backend`` plus the GPU twin's limits (UCB1, Bernoulli rewards, <= 64 arms)."""
    from .._cuda.backend import BACKENDS, resolve_backend

    backend = check_choice("backend", backend, BACKENDS)
    supported = type(pol) is UCB1 and dist == "bernoulli" and n_arms <= 64
    if not supported:
        if backend == "cuda":
            raise ValueError("backend='cuda' simulates UCB1 with Bernoulli rewards and at most 64 arms; "
                             f"got {pol.name} with {dist} rewards and {n_arms} arms (use backend='cpu')")
        return "cpu"
    return resolve_backend(backend, work)


def warmup(parallel: bool = True) -> None:
    """Compile the bandit kernels for the common input types (int64 arms, float64 rewards).

    Examples
    --------
    >>> warmup()
    """
    pol = UCB1(2)
    pol.update(np.array([0, 1], dtype=np.int64), np.array([0.0, 1.0]))
    pol.select()
    replay({"arm": np.array([0, 1, 0, 1]), "reward": np.array([0.0, 1.0, 1.0, 0.0])}, UCB1(2))
    simulate(pol, [0.2, 0.3], n_steps=10, n_runs=2, seed=0)
