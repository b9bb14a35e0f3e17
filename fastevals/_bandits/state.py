"""Bandit policies as protocol states: UCB1, UCB1-Tuned, Thompson sampling, epsilon-greedy."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _source as src
from .._config import CHUNK_ROWS, PARALLEL_MIN_ROWS
from .._protocol import LABEL, NUMERIC, State, state_from_bytes
from .._validation import check_choice, check_int, check_probability, check_seed
from ._math import _derive_seed
from .result import ArmState

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from .._typing import Filter, Seed


def _kernels():
    from .._kernels import bandits as kb

    return kb


def _check_labels(n_arms: int, arm_labels):
    if arm_labels is None:
        return None
    if isinstance(arm_labels, (str, bytes)) or not hasattr(arm_labels, "__iter__"):
        raise TypeError(f"`arm_labels` must be a sequence of {n_arms} labels; got {arm_labels!r}")
    labels = tuple(src._plain(x) for x in arm_labels)
    if len(labels) != n_arms:
        raise ValueError(f"`arm_labels` has {len(labels)} labels but n_arms={n_arms}")
    for lab in labels:
        if not isinstance(lab, (str, int, float, bool)):
            raise TypeError(f"`arm_labels` must hold strings or numbers; got {type(lab).__name__} {lab!r}")
    if len(set(labels)) != n_arms:
        raise ValueError(f"`arm_labels` has duplicate labels: {list(labels)!r}")
    return labels


# ----------------------------------------------------------------------------------------------------
# policies: protocol states


def _in_memory_table(data, filter, columns):
    """Turn a dict or DataFrame input into an Arrow table once (the scans that follow reuse it).

    Only ``columns`` are converted, or every column when a ``filter`` is given: it may
    name a column the analysis does not read (the base scan's column hint would drop
    it). Other inputs are returned as they are.
    """
    if isinstance(data, dict) or type(data).__module__.split(".")[0] in ("pandas", "polars"):
        source = src.open_source(data, columns_hint=None if filter is not None else list(columns))
        return pa.Table.from_batches(list(source.batches(source.schema.names)), schema=source.schema)
    return data


class _Policy(State):
    """Common state and interface of the bandit policies (not public).

    A protocol state: ``update(data)`` folds a logged (arm, reward) table (columns
    ``arm`` / ``reward``; or ``update(arms, rewards)`` with two arrays),
    ``merge`` returns a new state, ``finalize()`` the :class:`ArmState`.
    """

    name = ""
    _kind = -1

    def __init__(self, n_arms: int, *, arm_labels=None, arm: str = "arm", reward: str = "reward",
                 nulls: str = "raise", filter=None, batch_size: int | None = None, progress=None):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self.n_arms = check_int("n_arms", n_arms, low=1)
        self.arm_labels = _check_labels(self.n_arms, arm_labels)
        if not isinstance(arm, str) or not isinstance(reward, str):
            raise TypeError(f"`arm` and `reward` must be column names (str); got {arm!r} and {reward!r}")
        if arm == reward:
            raise ValueError(f"`arm` and `reward` must be different columns; got {arm!r} for both")
        self.arm, self.reward = arm, reward
        self._label_index = (
            None if self.arm_labels is None else {lab: j for j, lab in enumerate(self.arm_labels)}
        )
        self._counts = np.zeros(self.n_arms, dtype=np.int64)
        self._sums = np.zeros(self.n_arms, dtype=np.float64)
        self._sq = np.zeros(self.n_arms, dtype=np.float64)

    # -- parameters ------------------------------------------------------------------------------
    def _policy_params(self) -> dict:
        return {}

    def _params(self) -> dict:
        return {"n_arms": self.n_arms, "arm_labels": None if self.arm_labels is None else list(self.arm_labels),
                "arm": self.arm, "reward": self.reward, **self._policy_params()}

    def _kernel_params(self) -> tuple[float, float, np.uint64]:
        return 0.0, 0.0, np.uint64(0)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._policy_params().items())
        labels = "" if self.arm_labels is None else f", arm_labels={list(self.arm_labels)!r}"
        return f"{type(self).__name__}({self.n_arms}{extra}{labels}; total_plays={self.total_plays})"

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(7)
        arms = rng.integers(0, 3, 40)
        rewards = (rng.random(40) < np.array([0.2, 0.5, 0.7])[arms]).astype(np.float64)
        kwargs = {"n_arms": 3}
        if cls in (ThompsonSampling, EpsilonGreedy):
            kwargs["seed"] = 3
        return kwargs, {"arm": arms, "reward": rewards}

    # -- protocol ----------------------------------------------------------------------------------
    def _requirements(self) -> dict:
        return {self.arm: ("arm", LABEL), self.reward: ("reward", NUMERIC)}

    def _arrays(self) -> dict:
        return {"pulls": self._counts, "reward_sums": self._sums, "squared_reward_sums": self._sq}

    def _set_arrays(self, arrays) -> None:
        self._counts = arrays["pulls"].astype(np.int64)
        self._sums = arrays["reward_sums"].astype(np.float64)
        self._sq = arrays["squared_reward_sums"].astype(np.float64)

    def _check_mergeable(self, other) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        if other.n_arms != self.n_arms:
            raise ValueError(f"cannot merge states with {other.n_arms} and {self.n_arms} arms")
        if other.arm_labels != self.arm_labels:
            raise ValueError(f"cannot merge states with different arm labels: "
                             f"{other.arm_labels!r} vs {self.arm_labels!r}")
        if other._policy_params() != self._policy_params():
            raise ValueError(f"cannot merge states with different parameters: "
                             f"{other._policy_params()!r} vs {self._policy_params()!r}")
        super()._check_mergeable(other)

    def _merge_from(self, other) -> None:
        self._counts = self._counts + other._counts
        self._sums = self._sums + other._sums
        self._sq = self._sq + other._sq

    def finalize(self) -> ArmState:
        """Return the policy's statistics as an :class:`ArmState` (a fresh policy gives zeros).

        Returns
        -------
        ArmState
        """
        return ArmState(self.name, self.total_plays, self.n, self.n_dropped, self._counts.copy(),
                        self._sums.copy(), self._sq.copy(), self.arm_labels)

    # -- state -----------------------------------------------------------------------------------
    @property
    def total_plays(self) -> int:
        return int(self._counts.sum())

    @property
    def state(self) -> ArmState:
        """Per-arm pulls, reward sums and squared reward sums, and total plays (``finalize()``)."""
        return self.finalize()

    def _fresh(self):
        """Return a copy with the same policy, arms and parameters and no plays."""
        new = self.copy()
        new._counts = np.zeros_like(self._counts)
        new._sums = np.zeros_like(self._sums)
        new._sq = np.zeros_like(self._sq)
        new.n_read = new.n_dropped = 0
        return new

    # -- update ----------------------------------------------------------------------------------
    def _lut_for(self, arr, what: str):
        """(codes, offset, lut) mapping a label column to this policy's arm indices."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        t = arr.type
        if self.arm_labels is None:
            int_dict = pa.types.is_dictionary(t) and pa.types.is_integer(t.value_type)
            if not (pa.types.is_integer(t) or int_dict):
                raise TypeError(
                    f"{what} holds {t} values; a policy without `arm_labels` takes integer arm "
                    f"indices 0..{self.n_arms - 1}; create it with arm_labels=[...] to use labels"
                )
            if pa.types.is_dictionary(t):
                arr = arr.cast(t.value_type)
            return src.numeric_view(arr), 0, np.arange(self.n_arms, dtype=np.int64)
        assert self._label_index is not None
        lc = src.local_codes(arr)
        lut = np.full(lc.width, -1, dtype=np.int64)
        idx = np.arange(lc.width)
        for i, lab in zip(idx, lc.labels(idx), strict=True):
            lut[i] = self._label_index.get(src._plain(lab), -1)
        return lc.codes, lc.offset, lut

    def _arms_allowed(self) -> str:
        return (f"one of {list(self.arm_labels)!r}" if self.arm_labels is not None
                else f"an integer in [0, {self.n_arms - 1}]")

    def _update_batch(self, batch, rows) -> None:
        a = batch.column(self.arm)
        codes, offset, lut = self._lut_for(a, f"column {self.arm!r}")
        rewards = _as_float64(src.numeric_view(batch.column(self.reward)))
        row_of = (lambda i: rows.start + i) if rows.kept is None else (lambda i: rows.start + int(rows.kept[i]))
        self._fold_codes(codes, offset, lut, rewards, lambda i: a[i].as_py(), row_of,
                         f"column {self.arm!r} (given as `arm`)", f"column {self.reward!r} (given as `reward`)")

    def _fold_codes(self, codes, offset, lut, rewards, arm_value, row_of, what_arm: str, what_reward: str) -> None:
        """Run the update kernel on one batch of arm codes and float64 rewards; errors name the row."""
        kb = _kernels()
        fn = kb.arm_stats_parallel if len(codes) >= PARALLEL_MIN_ROWS else kb.arm_stats_serial
        counts, sums, sq, bad = fn(_readonly(codes), np.intp(offset), lut, _readonly(rewards), self.n_arms,
                                   CHUNK_ROWS)
        if bad[0] >= 0:
            i = int(bad[0])
            raise ValueError(f"{what_arm} has {arm_value(i)!r} at row {row_of(i)}; arms must be "
                             f"{self._arms_allowed()}")
        if bad[1] >= 0:
            i = int(bad[1])
            raise ValueError(_bad_reward_text(what_reward, float(rewards[i]), row_of(i)))
        self._counts = self._counts + counts
        self._sums = self._sums + sums
        self._sq = self._sq + sq

    def _update_pairs(self, arms, rewards, row_offset) -> None:
        """Fold two arrays directly: ``update(arms, rewards)``.

        One batch, with the same checks and counts as the scan of a table, without
        building one: a one-row update costs microseconds.
        """
        arm_v = _as_values(arms, "arms")
        rew_v = _as_values(rewards, "rewards")
        if len(arm_v) != len(rew_v):
            raise ValueError(f"`arms` has {len(arm_v)} values but `rewards` has {len(rew_v)}")
        n = len(arm_v)
        start = self.n_read if row_offset is None else int(row_offset)
        keep = None
        for name, v in (("arms", arm_v), ("rewards", rew_v)):
            if isinstance(v, pa.Array) and v.null_count:
                if self.nulls == "raise":
                    raise ValueError(f"`{name}` has {v.null_count:,} null value(s); pass nulls='drop' "
                                     "(CLI: --nulls drop) to leave those rows out")
                valid = np.asarray(pc.is_valid(v).to_numpy(zero_copy_only=False), dtype=bool)
                keep = valid if keep is None else keep & valid
        if isinstance(rew_v, pa.Array):
            t = rew_v.type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
                raise TypeError(f"`rewards` must be numbers or booleans; got {t}")
            rew = np.asarray(rew_v.to_numpy(zero_copy_only=False), dtype=np.float64) if rew_v.null_count \
                else _as_float64(src.numeric_view(rew_v))
        else:
            if rew_v.dtype.kind not in "iufb":
                raise TypeError(f"`rewards` must be numbers or booleans; got dtype {rew_v.dtype}")
            rew = _as_float64(rew_v)
        if rew.size and not np.isfinite(np.add.reduce(rew)):
            finite = np.isfinite(rew)
            if keep is not None:
                finite |= ~keep  # a null is counted once, as a null
            if not finite.all():
                if self.nulls == "raise":
                    raise ValueError(f"`rewards` has {int((~finite).sum()):,} NaN or infinite value(s); pass "
                                     "nulls='drop' (CLI: --nulls drop) to leave those rows out")
                keep = finite if keep is None else keep & finite
        kept = None
        if keep is not None and not keep.all():
            kept = np.flatnonzero(keep)
            arm_v = arm_v.filter(pa.array(keep)) if isinstance(arm_v, pa.Array) else arm_v[keep]
            rew = rew[keep]
        if isinstance(arm_v, np.ndarray) and arm_v.dtype.kind in "iu" and self.arm_labels is None:
            codes, offset, lut = arm_v, 0, np.arange(self.n_arms, dtype=np.int64)
            values = arm_v
        else:
            values = _as_arrow_1d(arm_v, "arms")
            codes, offset, lut = self._lut_for(values, "`arms`")

        def arm_value(i):
            v = values[i]
            return v.as_py() if isinstance(values, pa.Array) else v.item()

        row_of = (lambda i: start + i) if kept is None else (lambda i: start + int(kept[i]))
        if len(rew):
            self._fold_codes(codes, offset, lut, rew, arm_value, row_of, "`arms`", "`rewards`")
        self.n_read += n
        self.n_dropped += n - len(rew)

    def update(self, data, rewards=None, *, row_offset: int | None = None):
        """Fold observed (arm, reward) pairs into the state, in place; returns self.

        Parameters
        ----------
        data : table or source, or array-like of arms
            A logged table (Arrow table or batch, Parquet path, DataFrame, dict of
            arrays...) with the columns named by the policy's ``arm`` and ``reward``
            options; or, with ``rewards``, the played arms: integer indices
            ``0..n_arms-1``, or labels when the policy has ``arm_labels``.
        rewards : array-like, optional
            Rewards in [0, 1] (booleans allowed), one per arm of ``data``.
        row_offset : int, optional
            Global index of the first row (used in error messages).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            An arm that is not the policy's, a reward outside [0, 1], nulls or NaN
            with ``nulls="raise"``. The update is atomic: on an error the state is
            left unchanged.
        TypeError
            Columns of the wrong type.

        Notes
        -----
        A ``dask.dataframe.DataFrame`` is folded with ``fastevals._fold.fold(policy, ddf)``:
        each partition gives per-arm counts and sums, merged in a tree.
        """
        if rewards is None and isinstance(data, (np.ndarray, list, tuple, pa.Array, pa.ChunkedArray)):
            raise TypeError("`rewards` is required when the arms are an array; pass a table or source "
                            f"with {self.arm!r}/{self.reward!r} columns to update from columns")
        saved = (self._counts, self._sums, self._sq, self.n_read, self.n_dropped)
        try:
            if rewards is not None:
                self._update_pairs(data, rewards, row_offset)
            else:
                super().update(_in_memory_table(data, self.filter, [self.arm, self.reward]), row_offset=row_offset)
        except BaseException:
            self._counts, self._sums, self._sq, self.n_read, self.n_dropped = saved
            raise
        return self

    # -- choices ---------------------------------------------------------------------------------
    def scores(self) -> np.ndarray:
        """Return the policy's score per arm now (``+inf`` for an arm to be explored first).

        UCB1: mean + sqrt(2 ln n / n_j); UCB1-Tuned: its tuned index; Thompson
        sampling: the Beta draws that :meth:`select` uses; epsilon-greedy: the
        means. ``select()`` is the first argmax, except when epsilon-greedy explores.

        Returns
        -------
        numpy.ndarray
        """
        kb = _kernels()
        p1, p2, seed = self._kernel_params()
        out = np.empty(self.n_arms, dtype=np.float64)
        kb.policy_scores(self._kind, self._counts, self._sums, self._sq, np.int64(self.total_plays),
                         p1, p2, seed, np.int64(self.total_plays), np.int64(0), out)
        return out

    def select(self, size: int | None = None):
        """Return the arm to play now (its label, or index when the policy has no labels).

        Ties go to the lowest arm index; every arm is played once before any
        is played twice (an unplayed arm scores +inf) except under Thompson
        sampling. ``size=n`` gives ``n`` choices for ``n`` requests served
        before the next update: deterministic policies repeat their choice,
        random ones (Thompson, epsilon-greedy) draw afresh for each, keyed by
        (seed, total plays, request), so the same state always gives the same
        choices.

        Parameters
        ----------
        size : int, optional
            Number of choices (None: one choice, not a list).

        Returns
        -------
        label, int, list or numpy.ndarray
        """
        kb = _kernels()
        p1, p2, seed = self._kernel_params()
        t = np.int64(self.total_plays)
        buf = np.empty(self.n_arms, dtype=np.float64)
        n = 1 if size is None else check_int("size", size, low=0)
        idx = [int(kb.policy_choice(self._kind, self._counts, self._sums, self._sq, t, p1, p2, seed, t,
                                    np.int64(i), buf)) for i in range(n)]
        if self.arm_labels is not None:
            idx = [self.arm_labels[i] for i in idx]
        if size is None:
            return idx[0]
        return idx if self.arm_labels is not None else np.asarray(idx, dtype=np.int64)


# ----------------------------------------------------------------------------------------------------
# input helpers


def _bad_reward_text(what: str, value: float, row: int) -> str:
    if math.isnan(value):
        return f"{what} has NaN at row {row}; pass nulls='drop' to skip such rows"
    return f"{what} has {value!r} at row {row}; rewards must be in [0, 1] (rescale them first)"


def _as_values(values, name: str):
    """Return a 1-d NumPy array, or a pyarrow Array for Arrow input (which may hold nulls)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional; got shape {a.shape}")
    return a


def _readonly(a: np.ndarray) -> np.ndarray:
    """Return a read-only view.

    Arrow buffers are read-only, so kernels always see read-only inputs (one
    compiled signature instead of two).
    """
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _as_float64(values: np.ndarray) -> np.ndarray:
    # one reward dtype for the kernels: fewer compiled signatures (a copy only for non-float64 input)
    return np.ascontiguousarray(values, dtype=np.float64)


def _as_arrow_1d(values, name: str) -> pa.Array:
    a = _as_values(values, name)
    if isinstance(a, pa.Array):
        return a
    if a.dtype == object:
        try:
            return pa.array(a.tolist())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise TypeError(f"`{name}` cannot be converted to Arrow: {exc}") from None
    if a.dtype.kind not in "iufbUS":
        raise TypeError(f"`{name}` has unsupported dtype {a.dtype}")
    return pa.array(a)


class UCB1(_Policy, kind="bandit_ucb1"):
    """UCB1 of Auer, Cesa-Bianchi & Fischer (2002), as a mergeable state.

    Each arm is played once first (an unplayed arm scores ``+inf``); then the
    arm with the largest ``mean_j + sqrt(2 ln n / n_j)`` is played, where
    ``n`` is the total number of plays and ``n_j`` the plays of arm j. Ties go
    to the lowest arm index. Rewards must lie in [0, 1].

    Parameters
    ----------
    n_arms : int
        Number of arms.
    arm_labels : sequence, optional
        One label per arm (strings or numbers). Then ``update`` takes labels
        and ``select`` returns labels.
    arm, reward : str
        Column names of the logged tables ``update`` reads (default "arm", "reward").
    nulls, filter, batch_size, progress
        The common scan options of a state.

    Examples
    --------
    >>> import numpy as np
    >>> import fastevals
    >>> policy = fastevals.UCB1(3, arm_labels=["a", "b", "c"])
    >>> policy.select()
    'a'
    >>> _ = policy.update(["a", "b", "c", "c"], [0.0, 1.0, 1.0, 0.0])
    >>> policy.state.pulls.tolist()
    [1, 1, 2]
    >>> policy.select()
    'b'

    References
    ----------
    P. Auer, N. Cesa-Bianchi and P. Fischer, "Finite-time Analysis of the
    Multiarmed Bandit Problem", Machine Learning 47, 235-256 (2002).
    """

    name = "ucb1"
    _kind = 0


class UCB1Tuned(_Policy, kind="bandit_ucb1_tuned"):
    """UCB1-Tuned (Auer et al. 2002, section 4): UCB1 with a variance-aware bonus.

    The bonus is ``sqrt(ln n / n_j * min(1/4, V_j))`` with
    ``V_j = mean(r^2) - mean(r)^2 + sqrt(2 ln n / n_j)``. Same interface as
    :class:`UCB1`; usually less regret, no proven bound.

    Parameters
    ----------
    n_arms : int
    arm_labels : sequence, optional
    arm, reward : str
    nulls, filter, batch_size, progress
        As for :class:`UCB1`.

    Examples
    --------
    >>> import fastevals
    >>> fastevals.UCB1Tuned(2).update([0, 1, 1], [0.0, 1.0, 1.0]).select()
    1
    """

    name = "ucb1-tuned"
    _kind = 1


class ThompsonSampling(_Policy, kind="bandit_thompson"):
    """Beta-Bernoulli Thompson sampling (Chapelle & Li 2011) as a mergeable state.

    Arm j's reward rate has the posterior ``Beta(a + s_j, b + n_j - s_j)``
    (``s_j`` the reward sum, ``(a, b)`` the prior; fractional rewards in
    [0, 1] enter as fractional successes). ``select`` plays the arm with the
    largest posterior draw. Draws come from a counter-based generator keyed by
    (seed, total plays, request), so choices are reproducible.

    Parameters
    ----------
    n_arms : int
    arm_labels : sequence, optional
    prior : (float, float)
        Beta prior ``(a, b)``, both > 0. Default (1, 1), uniform.
    seed : int, optional
        Seed of the draws (a random one when None).
    arm, reward : str
    nulls, filter, batch_size, progress
        As for :class:`UCB1`.

    Examples
    --------
    >>> import fastevals
    >>> policy = fastevals.ThompsonSampling(2, seed=0).update([0, 0, 1, 1], [1.0, 1.0, 0.0, 0.0])
    >>> policy.select(size=3).tolist()
    [0, 0, 0]
    """

    name = "thompson"
    _kind = 2

    def __init__(self, n_arms: int, *, arm_labels: Sequence[Any] | None = None, prior: tuple[float, float] = (1.0, 1.0),
                 seed: Seed = None, arm: str = "arm", reward: str = "reward", nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None, progress: bool | None = None):
        super().__init__(n_arms, arm_labels=arm_labels, arm=arm, reward=reward, nulls=nulls, filter=filter,
                         batch_size=batch_size, progress=progress)
        if not (isinstance(prior, (tuple, list)) and len(prior) == 2):
            raise TypeError(f"`prior` must be a pair (a, b); got {prior!r}")
        a, b = prior
        for nm, v in (("prior[0]", a), ("prior[1]", b)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (0 < float(v) < math.inf):
                raise ValueError(f"`{nm}` must be a positive finite number; got {v!r}")
        self.prior = (float(a), float(b))
        self.seed = check_seed("seed", seed)

    def _policy_params(self) -> dict:
        return {"prior": list(self.prior), "seed": self.seed}

    def _kernel_params(self):
        return self.prior[0], self.prior[1], _derive_seed(self.seed, 0)


class EpsilonGreedy(_Policy, kind="bandit_epsilon_greedy"):
    """Epsilon-greedy: with probability ``epsilon`` a uniformly random arm, else the best mean.

    Unplayed arms first, ties -> lowest index.

    Parameters
    ----------
    n_arms : int
    epsilon : float
        Exploration probability in [0, 1].
    arm_labels : sequence, optional
    seed : int, optional
        Seed of the counter-based draws (a random one when None).
    arm, reward : str
    nulls, filter, batch_size, progress
        As for :class:`UCB1`.

    Examples
    --------
    >>> import fastevals
    >>> fastevals.EpsilonGreedy(2, epsilon=0.0, seed=0).update([0, 1], [0.2, 0.9]).select()
    1
    """

    name = "epsilon-greedy"
    _kind = 3

    def __init__(self, n_arms: int, *, epsilon: float = 0.1, arm_labels: Sequence[Any] | None = None,
                 seed: Seed = None, arm: str = "arm", reward: str = "reward", nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None, progress: bool | None = None):
        super().__init__(n_arms, arm_labels=arm_labels, arm=arm, reward=reward, nulls=nulls, filter=filter,
                         batch_size=batch_size, progress=progress)
        self.epsilon = check_probability("epsilon", epsilon, open_interval=False)
        self.seed = check_seed("seed", seed)

    def _policy_params(self) -> dict:
        return {"epsilon": self.epsilon, "seed": self.seed}

    def _kernel_params(self):
        return self.epsilon, 0.0, _derive_seed(self.seed, 0)


_POLICIES = {c.name: c for c in (UCB1, UCB1Tuned, ThompsonSampling, EpsilonGreedy)}
_POLICY_ALIASES = {
    "ucb1": "ucb1", "ucb": "ucb1", "ucb1-tuned": "ucb1-tuned", "ucb1_tuned": "ucb1-tuned",
    "thompson": "thompson", "ts": "thompson", "epsilon-greedy": "epsilon-greedy",
    "epsilon_greedy": "epsilon-greedy", "egreedy": "epsilon-greedy",
}


def policy_from_bytes(data: bytes) -> State:
    """Rebuild any bandit policy from its ``to_bytes()`` (``fastevals.state_from_bytes`` for policies).

    Parameters
    ----------
    data : bytes

    Returns
    -------
    UCB1, UCB1Tuned, ThompsonSampling or EpsilonGreedy

    Raises
    ------
    ValueError
        Bytes that are not a fastevals state, or another kind of state.

    Examples
    --------
    >>> import fastevals
    >>> policy = fastevals.UCB1(2).update([0, 1], [1.0, 0.0])
    >>> fastevals.policy_from_bytes(policy.to_bytes()) == policy
    True
    """
    state = state_from_bytes(data)
    if not isinstance(state, _Policy):
        raise ValueError(f"these bytes hold a {state.kind!r} state, not a bandit policy")
    return state


def _make_policy(name: str, n_arms: int, arm_labels, seed, **columns) -> _Policy:
    key = check_choice("policy", name, tuple(_POLICY_ALIASES))
    klass = _POLICIES[_POLICY_ALIASES[key]]
    if klass in (ThompsonSampling, EpsilonGreedy):
        return klass(n_arms, arm_labels=arm_labels, seed=seed, **columns)
    return klass(n_arms, arm_labels=arm_labels, **columns)


def _check_policy(policy) -> _Policy:
    if not isinstance(policy, _Policy):
        raise TypeError(
            "`policy` must be a UCB1, UCB1Tuned, ThompsonSampling or EpsilonGreedy state, or one of "
            f"{sorted(set(_POLICY_ALIASES.values()))!r}; got {type(policy).__name__}"
        )
    return policy
