"""Multi-armed bandits: streaming, mergeable policy states (UCB1, UCB1-Tuned,
Thompson sampling, epsilon-greedy), replay evaluation of a policy on a logged
stream (Li, Chu, Langford & Wang 2011) and many simulated runs in parallel.

A policy's state is its sufficient statistics: per-arm pulls, reward sums and
squared reward sums. ``update`` folds rows into it with a compiled, chunked
kernel, ``merge`` adds another state, ``to_bytes``/``from_bytes`` round-trip it
exactly, and ``select`` picks the arm to play now.

References
----------
.. [1] P. Auer, N. Cesa-Bianchi and P. Fischer, "Finite-time Analysis of the
   Multiarmed Bandit Problem", Machine Learning 47, 235-256 (2002).
.. [2] L. Li, W. Chu, J. Langford and X. Wang, "Unbiased Offline Evaluation of
   Contextual-bandit-based News Article Recommendation Algorithms", WSDM 2011.
.. [3] O. Chapelle and L. Li, "An Empirical Evaluation of Thompson Sampling",
   NeurIPS 2011.
.. [4] G. Marsaglia and W. W. Tsang, "A Simple Method for Generating Gamma
   Variables", ACM TOMS 26(3), 2000.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _dask
from . import _source as src
from . import _stats
from ._config import CHUNK_ROWS, PARALLEL_MIN_ROWS
from ._validation import check_choice, check_int, check_nulls, check_probability, check_seed
from .results import ConfidenceInterval

__all__ = [
    "UCB1",
    "UCB1Tuned",
    "ThompsonSampling",
    "EpsilonGreedy",
    "ArmState",
    "replay",
    "ReplayResult",
    "simulate",
    "SimulationResult",
    "NonUniformLoggingWarning",
    "ConfidenceInterval",
    "policy_from_bytes",
    "warmup",
]

_FORMAT_VERSION = 1
_META_KEY = b"fastevals.bandit"


class NonUniformLoggingWarning(UserWarning):
    """The log was not collected by a uniformly random policy, so the replay
    estimate of Li et al. (2011) may be biased; prefer the IPS/SNIPS estimates."""


class Band(NamedTuple):
    """Pointwise band of a curve: arrays ``low`` and ``high``."""

    low: np.ndarray
    high: np.ndarray


def _kernels():
    from ._kernels import bandits as kb

    return kb


def _mix64(z: int) -> int:
    """splitmix64 finalizer in Python (derives per-purpose seeds from a user seed)."""
    m = 0xFFFFFFFFFFFFFFFF
    z &= m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def _derive_seed(seed: int, purpose: int) -> np.uint64:
    return np.uint64(_mix64(seed + 0x9E3779B97F4A7C15 * (purpose + 1)))


# ----------------------------------------------------------------------------------------------------
# state


@dataclass(frozen=True, slots=True)
class ArmState:
    """Sufficient statistics of a bandit policy (copies; editing them changes nothing)."""

    pulls: np.ndarray
    reward_sums: np.ndarray
    squared_reward_sums: np.ndarray
    total_plays: int
    arm_labels: tuple | None

    @property
    def means(self) -> np.ndarray:
        """Mean reward per arm (NaN for an arm never played)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.pulls > 0, self.reward_sums / np.maximum(self.pulls, 1), np.nan)

    def to_dict(self) -> dict:
        return {
            "pulls": self.pulls.tolist(),
            "reward_sums": self.reward_sums.tolist(),
            "squared_reward_sums": self.squared_reward_sums.tolist(),
            "total_plays": self.total_plays,
            "means": self.means.tolist(),
            "arm_labels": None if self.arm_labels is None else list(self.arm_labels),
        }


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


class _Policy:
    """Common state and interface of the bandit policies (not public)."""

    name = ""
    _kind = -1

    def __init__(self, n_arms: int, *, arm_labels=None):
        self.n_arms = check_int("n_arms", n_arms, low=1)
        self.arm_labels = _check_labels(self.n_arms, arm_labels)
        self._label_index = (
            None if self.arm_labels is None else {lab: j for j, lab in enumerate(self.arm_labels)}
        )
        self._counts = np.zeros(self.n_arms, dtype=np.int64)
        self._sums = np.zeros(self.n_arms, dtype=np.float64)
        self._sq = np.zeros(self.n_arms, dtype=np.float64)

    # -- parameters ------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {}

    def _kernel_params(self) -> tuple[float, float, np.uint64]:
        return 0.0, 0.0, np.uint64(0)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._params().items())
        labels = "" if self.arm_labels is None else f", arm_labels={list(self.arm_labels)!r}"
        return f"{type(self).__name__}({self.n_arms}{extra}{labels}; total_plays={self.total_plays})"

    # -- state -----------------------------------------------------------------------------------
    @property
    def total_plays(self) -> int:
        return int(self._counts.sum())

    @property
    def state(self) -> ArmState:
        """Per-arm pulls, reward sums and squared reward sums, and total plays."""
        return ArmState(self._counts.copy(), self._sums.copy(), self._sq.copy(), self.total_plays,
                        self.arm_labels)

    def copy(self):
        """An independent copy of the policy and its state."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._counts = self._counts.copy()
        new._sums = self._sums.copy()
        new._sq = self._sq.copy()
        return new

    def _fresh(self):
        """A copy with the same policy, arms and parameters and no plays."""
        new = self.copy()
        new._counts[:] = 0
        new._sums[:] = 0.0
        new._sq[:] = 0.0
        return new

    def _same_kind(self, other, what: str) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot {what} a {type(other).__name__} into a {type(self).__name__}")
        if other.n_arms != self.n_arms:
            raise ValueError(f"cannot {what} states with {other.n_arms} and {self.n_arms} arms")
        if other.arm_labels != self.arm_labels:
            raise ValueError(f"cannot {what} states with different arm labels: "
                             f"{other.arm_labels!r} vs {self.arm_labels!r}")
        if other._params() != self._params():
            raise ValueError(f"cannot {what} states with different parameters: "
                             f"{other._params()!r} vs {self._params()!r}")

    def merge(self, other):
        """Add the statistics of ``other`` (same policy, arms and parameters) in place; returns self.

        Merging the states of shards of a log equals one update over the
        whole log (pulls exactly; reward sums up to floating-point rounding).
        Use ``a.copy().merge(b)`` to keep ``a`` unchanged.
        """
        self._same_kind(other, "merge")
        self._counts += other._counts
        self._sums += other._sums
        self._sq += other._sq
        return self

    # -- update ----------------------------------------------------------------------------------
    def _lut_for(self, arr: pa.Array, what: str):
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
        lc = src.local_codes(arr)
        lut = np.full(lc.width, -1, dtype=np.int64)
        idx = np.arange(lc.width)
        for i, lab in zip(idx, lc.labels(idx), strict=True):
            lut[i] = self._label_index.get(src._plain(lab), -1)
        return lc.codes, lc.offset, lut

    def _fold(self, codes, offset, lut, rewards, what_arm: str, what_reward: str, arm_arr, row0: int = 0):
        kb = _kernels()
        fn = kb.arm_stats_parallel if len(codes) >= PARALLEL_MIN_ROWS else kb.arm_stats_serial
        counts, sums, sq, bad = fn(_readonly(codes), np.intp(offset), lut, _readonly(rewards), self.n_arms,
                                   CHUNK_ROWS)
        if bad[0] >= 0:
            i = int(bad[0])
            value = arm_arr[i].as_py() if isinstance(arm_arr, pa.Array) else src._plain(arm_arr[i])
            allowed = (f"one of {list(self.arm_labels)!r}" if self.arm_labels is not None
                       else f"an integer in [0, {self.n_arms - 1}]")
            raise ValueError(f"{what_arm} has {value!r} at row {row0 + i}; arms must be {allowed}")
        if bad[1] >= 0:
            i = int(bad[1])
            raise ValueError(_bad_reward_text(what_reward, float(rewards[i]), row0 + i))
        return counts, sums, sq

    def update(self, arms, rewards=None, *, arm: str = "arm", reward: str = "reward", nulls: str = "raise",
               filter=None, engine=None):
        """Fold observed (arm, reward) pairs into the state, in place; returns self.

        Parameters
        ----------
        arms : array-like, pyarrow Array, or a table/source
            Played arms: integer indices ``0..n_arms-1``, or labels when the
            policy has ``arm_labels``. With ``rewards=None``, ``arms`` is a
            source (Arrow table or batch, Parquet path, DataFrame, dict of
            arrays...) with columns ``arm`` and ``reward``.
        rewards : array-like, optional
            Rewards in [0, 1] (booleans allowed), one per arm.
        arm, reward : str
            Column names when ``arms`` is a source.
        nulls : {"raise", "drop"}
            Rows with a null arm/reward (or NaN reward) raise or are skipped.
        filter : pyarrow.compute.Expression, optional
            Row filter pushed into the scan of a source.
        engine : {None, "auto", "arrow", "dask"}
            A ``dask.dataframe.DataFrame`` (or, with ``engine="dask"``, a Parquet path
            read by Dask) is folded on the current ``distributed.Client``: each
            partition gives per-arm counts and sums, merged in a tree; the result
            equals the in-process update (counts exactly). Replay and simulation are
            sequential and run in one process; on Dask, parallelize them over
            policies or seeds instead.

        The update is atomic: on an error (an arm that is not the policy's, a
        reward outside [0, 1]) the state is left unchanged.
        """
        nulls = check_nulls(nulls)
        if rewards is not None and _dask.check_engine(engine) == "dask":
            raise ValueError("engine='dask' reads a Dask DataFrame or Parquet path with `arm`/`reward` columns; "
                             "arrays of arms and rewards are folded in this process (leave `engine` unset)")
        if rewards is None and _dask.wants_dask(arms, engine):
            folded, _ = _dask.update_state(self._fresh(), arms, engine=engine, columns=[arm, reward], arm=arm,
                                           reward=reward, nulls=nulls, filter=filter)
            return self.merge(folded)
        if rewards is None:
            if isinstance(arms, (np.ndarray, list, tuple, pa.Array, pa.ChunkedArray)):
                raise TypeError("`rewards` is required when `arms` is an array; pass a table or source "
                                "with `arm`/`reward` columns to update from columns")
            return self._update_source(arms, arm=arm, reward=reward, nulls=nulls, filter=filter)
        arm_v = _as_values(arms, "arms")
        rew_v = _as_values(rewards, "rewards")
        if len(arm_v) != len(rew_v):
            raise ValueError(f"`arms` has {len(arm_v)} values but `rewards` has {len(rew_v)}")
        if len(arm_v) == 0:
            return self
        if isinstance(arm_v, pa.Array) or isinstance(rew_v, pa.Array):
            arm_v, rew_v = _drop_missing(arm_v, rew_v, nulls)
        rew = _reward_view(rew_v, "rewards")
        if nulls == "drop" and rew.dtype.kind == "f":
            keep = ~np.isnan(rew)
            if not keep.all():
                arm_v = arm_v.filter(pa.array(keep)) if isinstance(arm_v, pa.Array) else arm_v[keep]
                rew = rew[keep]
        if isinstance(arm_v, np.ndarray) and arm_v.dtype.kind in "iu" and self.arm_labels is None:
            codes, offset, lut = arm_v, 0, np.arange(self.n_arms, dtype=np.int64)
        else:
            if isinstance(arm_v, np.ndarray):
                arm_v = _as_arrow_1d(arm_v, "arms")
            codes, offset, lut = self._lut_for(arm_v, "`arms`")
        counts, sums, sq = self._fold(codes, offset, lut, rew, "`arms`", "`rewards`", arm_v)
        self._counts += counts
        self._sums += sums
        self._sq += sq
        return self

    def _update_source(self, data, *, arm, reward, nulls, filter):
        source = src.open_source(data, filter=filter, columns_hint=[arm, reward])
        source.require({arm: ("arm", src.LABEL), reward: ("reward", src.NUMERIC)})
        scan = src.Scan(source, columns=[arm, reward], nulls=nulls, nan_columns=(reward,))
        counts = np.zeros(self.n_arms, dtype=np.int64)
        sums = np.zeros(self.n_arms, dtype=np.float64)
        sq = np.zeros(self.n_arms, dtype=np.float64)
        row0 = 0
        for batch in scan:
            a = batch.column(arm)
            codes, offset, lut = self._lut_for(a, f"column {arm!r}")
            c, s, q = self._fold(codes, offset, lut, _as_float64(src.numeric_view(batch.column(reward))),
                                 f"column {arm!r}", f"column {reward!r}", a, row0)
            counts += c
            sums += s
            sq += q
            row0 += batch.num_rows
        self._counts += counts
        self._sums += sums
        self._sq += sq
        return self

    # -- choices ---------------------------------------------------------------------------------
    def scores(self) -> np.ndarray:
        """The policy's score per arm now (``+inf`` for an arm to be explored first).

        UCB1: mean + sqrt(2 ln n / n_j); UCB1-Tuned: its tuned index; Thompson
        sampling: the Beta draws that :meth:`select` uses; epsilon-greedy: the
        means. ``select()`` is the first argmax, except when epsilon-greedy explores.
        """
        kb = _kernels()
        p1, p2, seed = self._kernel_params()
        out = np.empty(self.n_arms, dtype=np.float64)
        kb.policy_scores(self._kind, self._counts, self._sums, self._sq, np.int64(self.total_plays),
                         p1, p2, seed, np.int64(self.total_plays), np.int64(0), out)
        return out

    def select(self, size: int | None = None):
        """The arm to play now (its label, or index when the policy has no labels).

        Ties go to the lowest arm index; every arm is played once before any
        is played twice (an unplayed arm scores +inf) except under Thompson
        sampling. ``size=n`` gives ``n`` choices for ``n`` requests served
        before the next update: deterministic policies repeat their choice,
        random ones (Thompson, epsilon-greedy) draw afresh for each, keyed by
        (seed, total plays, request), so the same state always gives the same
        choices.
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

    # -- serialization ---------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """The state as an Arrow table (one row per arm) with the policy in the schema metadata."""
        meta = {
            "version": _FORMAT_VERSION,
            "policy": self.name,
            "n_arms": self.n_arms,
            "params": self._params(),
            "arm_labels": None if self.arm_labels is None else list(self.arm_labels),
        }
        table = pa.table({
            "arm": pa.array(np.arange(self.n_arms, dtype=np.int64)),
            "pulls": pa.array(self._counts),
            "reward_sum": pa.array(self._sums),
            "squared_reward_sum": pa.array(self._sq),
        })
        return table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})

    def to_bytes(self) -> bytes:
        """Lossless serialization (Arrow IPC stream); read back with ``from_bytes``."""
        sink = io.BytesIO()
        table = self.to_arrow()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()

    @classmethod
    def from_arrow(cls, table: pa.Table):
        meta_raw = (table.schema.metadata or {}).get(_META_KEY)
        if meta_raw is None:
            raise ValueError("this Arrow table is not a fastevals bandit state (no metadata)")
        meta = json.loads(meta_raw)
        if meta.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported bandit state format version {meta.get('version')!r}")
        klass = _POLICIES[meta["policy"]]
        if cls is not _Policy and klass is not cls:
            raise TypeError(f"the bytes hold a {klass.__name__} state, not a {cls.__name__}")
        policy = klass(meta["n_arms"], arm_labels=meta["arm_labels"], **_params_to_kwargs(meta["params"]))
        policy._counts = table.column("pulls").to_numpy().astype(np.int64, copy=True)
        policy._sums = table.column("reward_sum").to_numpy().astype(np.float64, copy=True)
        policy._sq = table.column("squared_reward_sum").to_numpy().astype(np.float64, copy=True)
        return policy

    @classmethod
    def from_bytes(cls, data: bytes):
        """Rebuild a state written by :meth:`to_bytes`."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"`data` must be bytes; got {type(data).__name__}")
        table = pa.ipc.open_stream(pa.py_buffer(bytes(data))).read_all()
        return cls.from_arrow(table)


def _bad_reward_text(what: str, value: float, row: int) -> str:
    if math.isnan(value):
        return f"{what} has NaN at row {row}; pass nulls='drop' to skip such rows"
    return f"{what} has {value!r} at row {row}; rewards must be in [0, 1] (rescale them first)"


def _params_to_kwargs(params: dict) -> dict:
    kw = dict(params)
    if "prior" in kw:
        kw["prior"] = tuple(kw["prior"])
    return kw


def _as_values(values, name: str):
    """A 1-d NumPy array, or a pyarrow Array for Arrow input (which may hold nulls)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional; got shape {a.shape}")
    return a


def _drop_missing(arm_v, rew_v, nulls: str):
    for name, v in (("arms", arm_v), ("rewards", rew_v)):
        if isinstance(v, pa.Array) and v.null_count and nulls == "raise":
            raise ValueError(f"`{name}` has {v.null_count} null value(s); pass nulls='drop' to skip them")
    masks = [pc.is_valid(v).to_numpy(zero_copy_only=False) for v in (arm_v, rew_v)
             if isinstance(v, pa.Array) and v.null_count]
    if not masks:
        return arm_v, rew_v
    keep = np.logical_and.reduce(masks)
    out = []
    for v in (arm_v, rew_v):
        out.append(v.filter(pa.array(keep)) if isinstance(v, pa.Array) else v[keep])
    return out[0], out[1]


def _reward_view(values, name: str) -> np.ndarray:
    if isinstance(values, pa.Array):
        t = values.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise TypeError(f"`{name}` must be numbers or booleans; got {t}")
        return _as_float64(src.numeric_view(values))
    if values.dtype.kind not in "iufb":
        raise TypeError(f"`{name}` must be numbers or booleans; got dtype {values.dtype}")
    return _as_float64(values)


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view: Arrow buffers are read-only, so kernels always see read-only inputs
    (one compiled signature instead of two)."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _as_float64(values: np.ndarray) -> np.ndarray:
    # one reward dtype for the kernels: fewer compiled signatures (a copy only for non-float64 input)
    return np.ascontiguousarray(values, dtype=np.float64)


def _as_arrow_1d(values, name: str) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional; got shape {a.shape}")
    if a.dtype == object:
        try:
            return pa.array(a.tolist())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise TypeError(f"`{name}` cannot be converted to Arrow: {exc}") from None
    if a.dtype.kind not in "iufbUS":
        raise TypeError(f"`{name}` has unsupported dtype {a.dtype}")
    return pa.array(a)


class UCB1(_Policy):
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


class UCB1Tuned(_Policy):
    """UCB1-Tuned (Auer et al. 2002, section 4): UCB1 with a variance-aware bonus
    ``sqrt(ln n / n_j * min(1/4, V_j))``, ``V_j = mean(r^2) - mean(r)^2 + sqrt(2 ln n / n_j)``.

    Same interface as :class:`UCB1`; usually less regret, no proven bound.
    """

    name = "ucb1-tuned"
    _kind = 1


class ThompsonSampling(_Policy):
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
    """

    name = "thompson"
    _kind = 2

    def __init__(self, n_arms: int, *, arm_labels=None, prior=(1.0, 1.0), seed=None):
        super().__init__(n_arms, arm_labels=arm_labels)
        if not (isinstance(prior, (tuple, list)) and len(prior) == 2):
            raise TypeError(f"`prior` must be a pair (a, b); got {prior!r}")
        a, b = prior
        for nm, v in (("prior[0]", a), ("prior[1]", b)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (0 < float(v) < math.inf):
                raise ValueError(f"`{nm}` must be a positive finite number; got {v!r}")
        self.prior = (float(a), float(b))
        self.seed = check_seed("seed", seed)

    def _params(self) -> dict:
        return {"prior": list(self.prior), "seed": self.seed}

    def _kernel_params(self):
        return self.prior[0], self.prior[1], _derive_seed(self.seed, 0)


class EpsilonGreedy(_Policy):
    """Epsilon-greedy: with probability ``epsilon`` a uniformly random arm, else
    the arm with the best mean (unplayed arms first, ties -> lowest index).

    Parameters
    ----------
    n_arms : int
    epsilon : float
        Exploration probability in [0, 1].
    arm_labels : sequence, optional
    seed : int, optional
        Seed of the counter-based draws (a random one when None).
    """

    name = "epsilon-greedy"
    _kind = 3

    def __init__(self, n_arms: int, *, epsilon: float = 0.1, arm_labels=None, seed=None):
        super().__init__(n_arms, arm_labels=arm_labels)
        self.epsilon = check_probability("epsilon", epsilon, open_interval=False)
        self.seed = check_seed("seed", seed)

    def _params(self) -> dict:
        return {"epsilon": self.epsilon, "seed": self.seed}

    def _kernel_params(self):
        return self.epsilon, 0.0, _derive_seed(self.seed, 0)


_POLICIES = {c.name: c for c in (UCB1, UCB1Tuned, ThompsonSampling, EpsilonGreedy)}
_POLICY_ALIASES = {
    "ucb1": "ucb1", "ucb": "ucb1", "ucb1-tuned": "ucb1-tuned", "ucb1_tuned": "ucb1-tuned",
    "thompson": "thompson", "ts": "thompson", "epsilon-greedy": "epsilon-greedy",
    "epsilon_greedy": "epsilon-greedy", "egreedy": "epsilon-greedy",
}


def policy_from_bytes(data: bytes):
    """Rebuild any bandit policy state written by ``to_bytes``."""
    return _Policy.from_bytes(data)


def _make_policy(name: str, n_arms: int, arm_labels, seed) -> _Policy:
    key = check_choice("policy", name, tuple(_POLICY_ALIASES))
    klass = _POLICIES[_POLICY_ALIASES[key]]
    if klass in (ThompsonSampling, EpsilonGreedy):
        return klass(n_arms, arm_labels=arm_labels, seed=seed)
    return klass(n_arms, arm_labels=arm_labels)


def _check_policy(policy) -> _Policy:
    if not isinstance(policy, _Policy):
        raise TypeError(
            "`policy` must be a UCB1, UCB1Tuned, ThompsonSampling or EpsilonGreedy state, or one of "
            f"{sorted(set(_POLICY_ALIASES.values()))!r}; got {type(policy).__name__}"
        )
    return policy


# ----------------------------------------------------------------------------------------------------
# replay


def _ci_level(confidence_level) -> float:
    return check_probability("confidence_level", confidence_level)


def _z(level: float) -> float:
    from ._special import ndtri

    return float(ndtri(0.5 + level / 2.0))


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Offline evaluation of a bandit policy by replay (Li et al. 2011).

    ``estimate`` is the mean reward per step the policy would earn, with a
    normal-approximation ``confidence_interval`` over the ``n_kept`` events
    where the policy chose the logged arm. ``reward_curve[i]`` is the mean
    reward of the first ``i + 1`` kept events. Where the log has
    propensities, ``ips`` and ``snips`` (self-normalized) estimate the same
    value by inverse propensity weighting over all ``n_events``.
    """

    estimate: float
    confidence_interval: ConfidenceInterval
    n_kept: int
    n_events: int
    reward_curve: np.ndarray
    kept_per_arm: np.ndarray
    ips: float | None
    ips_confidence_interval: ConfidenceInterval | None
    snips: float | None
    snips_confidence_interval: ConfidenceInterval | None
    policy: _Policy
    confidence_level: float
    batch_size: int

    @property
    def kept_fraction(self) -> float:
        return self.n_kept / self.n_events if self.n_events else math.nan

    def to_dict(self) -> dict:
        return {
            "estimate": self.estimate,
            "confidence_interval": list(self.confidence_interval),
            "n_kept": self.n_kept,
            "n_events": self.n_events,
            "kept_fraction": self.kept_fraction,
            "kept_per_arm": self.kept_per_arm.tolist(),
            "ips": self.ips,
            "ips_confidence_interval": None if self.ips is None else list(self.ips_confidence_interval),
            "snips": self.snips,
            "snips_confidence_interval": None if self.snips is None else list(self.snips_confidence_interval),
            "policy": self.policy.name,
            "arm_labels": None if self.policy.arm_labels is None else list(self.policy.arm_labels),
            "confidence_level": self.confidence_level,
            "batch_size": self.batch_size,
        }

    def plot(self, path=None, *, ax=None):
        """Plot the replayed mean reward against kept events (needs matplotlib).

        Saves to ``path`` when given; returns the matplotlib Axes.
        """
        plt = _pyplot()
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        x = np.arange(1, self.n_kept + 1)
        ax.plot(x, self.reward_curve, label=f"replay of {self.policy.name}")
        lo, hi = self.confidence_interval
        ax.axhspan(lo, hi, alpha=0.2, label=f"{self.confidence_level:.0%} CI of the final estimate")
        ax.set_xlabel("kept events")
        ax.set_ylabel("mean reward per step")
        ax.legend()
        return _save_plot(plt, fig, ax, path)


def _save_plot(plt, fig, ax, path):
    """Write the figure to ``path`` if given; close a figure the plot made itself."""
    if path is not None:
        (fig or ax.figure).savefig(path, bbox_inches="tight")
        if fig is not None:
            plt.close(fig)
    return ax


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'fastevals[plot]'") from None
    return plt


def _collect_labels(source, arm: str, nulls: str) -> list:
    if not source.rescannable:
        raise ValueError(
            f"`policy` given by name needs the arms first, but {source.description} can be read only once; "
            "pass a policy object such as fastevals.UCB1(n_arms, arm_labels=[...])"
        )
    seen = set()
    for batch in src.Scan(source, columns=[arm], nulls=nulls):
        col = batch.column(arm)
        if pa.types.is_dictionary(col.type):
            col = col.dictionary.take(pc.unique(col.indices))
        seen.update(src._plain(v) for v in pc.unique(col).to_pylist())
    if not seen:
        raise ValueError(f"empty input: {source.description} has no rows")
    try:
        return sorted(seen)
    except TypeError:
        return sorted(seen, key=repr)


def replay(log, policy, *, arm: str = "arm", reward: str = "reward", propensity: str | None = None,
           batch_size: int = 1, nulls: str = "raise", filter=None, seed=None,
           confidence_level: float = 0.95) -> ReplayResult:
    """Evaluate a bandit policy offline on a logged stream (Li, Chu, Langford & Wang 2011).

    The log is read in its order. At each event the policy picks an arm; the
    event counts only where that is the logged arm, and its reward then
    updates the policy. Under uniformly random logging, the mean reward of
    the kept events estimates the policy's per-step reward without bias.

    Parameters
    ----------
    log : source
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
    batch_size : int
        The policy applies kept events in groups of ``batch_size``, as a
        production system that updates periodically.
    nulls : {"raise", "drop"}
    filter : pyarrow.compute.Expression, optional
    seed : int, optional
        Seed of a policy made from a name (Thompson, epsilon-greedy).
    confidence_level : float

    Returns
    -------
    ReplayResult

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
    batch_size = check_int("batch_size", batch_size, low=1)
    nulls = check_nulls(nulls)
    level = _ci_level(confidence_level)
    if not isinstance(arm, str) or not isinstance(reward, str):
        raise TypeError("`arm` and `reward` must be column names (str)")
    if propensity is not None and not isinstance(propensity, str):
        raise TypeError(f"`propensity` must be a column name or None; got {propensity!r}")
    columns = [arm, reward] + ([propensity] if propensity else [])
    if len(set(columns)) != len(columns):
        raise ValueError(f"`arm`, `reward` and `propensity` must be different columns; got {columns!r}")
    source = src.open_source(log, filter=filter, columns_hint=columns)
    need = {arm: ("arm", src.LABEL), reward: ("reward", src.NUMERIC)}
    if propensity:
        need[propensity] = ("propensity", src.NUMERIC)
    source.require(need)
    if isinstance(policy, str):
        labels = _collect_labels(source, arm, nulls)
        pol = _make_policy(policy, len(labels), labels, seed)
    else:
        pol = _check_policy(policy).copy()
    kb = _kernels()
    k = pol.n_arms
    p1, p2, kseed = pol._kernel_params()
    pend = np.zeros((3, k), dtype=np.float64)
    carry = np.array([0, 0, 0, -1], dtype=np.int64)
    logged = np.zeros(k, dtype=np.int64)
    kept_rewards, kept_arms, kept_props = [], [], []
    pmin, pmax = math.inf, -math.inf
    scan = src.Scan(source, columns=columns, nulls=nulls,
                    nan_columns=tuple(c for c in (reward, propensity) if c))
    row0 = 0
    for batch in scan:
        n = batch.num_rows
        a = batch.column(arm)
        codes, offset, lut = pol._lut_for(a, f"column {arm!r}")
        r = _as_float64(src.numeric_view(batch.column(reward)))
        if propensity:
            pcol = batch.column(propensity)
            mm = pc.min_max(pcol).as_py()
            if not (0 < mm["min"] and mm["max"] <= 1):
                bad = mm["min"] if not 0 < mm["min"] else mm["max"]
                raise ValueError(f"column {propensity!r} (given as `propensity`) has {bad!r}; "
                                 "propensities must be in (0, 1]")
            pmin, pmax = min(pmin, mm["min"]), max(pmax, mm["max"])
        rows = np.empty(n, dtype=np.int64)
        karms = np.empty(n, dtype=np.int64)
        n_kept, bad_arm, bad_reward = kb.replay_batch(
            pol._kind, p1, p2, kseed, _readonly(codes), np.intp(offset), lut, _readonly(r),
            pol._counts, pol._sums, pol._sq, pend, carry, batch_size, rows, karms, logged)
        if bad_arm >= 0:
            allowed = (f"one of {list(pol.arm_labels)!r}" if pol.arm_labels is not None
                       else f"an integer in [0, {k - 1}]")
            raise ValueError(f"column {arm!r} has {a[int(bad_arm)].as_py()!r} at row {row0 + bad_arm}; "
                             f"arms must be {allowed}")
        if bad_reward >= 0:
            raise ValueError(_bad_reward_text(f"column {reward!r}", float(r[bad_reward]), row0 + bad_reward))
        rows = rows[:n_kept]
        kept_rewards.append(np.asarray(r[rows], dtype=np.float64))
        kept_arms.append(karms[:n_kept])
        if propensity:
            kept_props.append(np.asarray(src.numeric_view(batch.column(propensity))[rows], dtype=np.float64))
        row0 += n
    scan.check_not_empty()
    # the events still pending at the end belong to the returned policy
    pol._counts += pend[0].astype(np.int64)
    pol._sums += pend[1]
    pol._sq += pend[2]
    n_events = int(carry[0])
    rk = np.concatenate(kept_rewards) if kept_rewards else np.zeros(0)
    ak = np.concatenate(kept_arms) if kept_arms else np.zeros(0, dtype=np.int64)
    n_kept = len(rk)
    z = _z(level)
    binary = bool(n_kept) and bool(np.all((rk == 0.0) | (rk == 1.0)))
    if n_kept:
        curve = np.cumsum(rk) / np.arange(1, n_kept + 1)
        est = float(curve[-1])
        if binary:
            # 0/1 rewards: Wilson's interval, which is not degenerate at 0 or 1 (a normal one is [0, 0]
            # when no kept event was rewarded)
            ci = ConfidenceInterval(*_stats.wilson_interval(est, n_kept, z), confidence=level, method="wilson")
        elif n_kept > 1:
            half = z * float(np.std(rk, ddof=1)) / math.sqrt(n_kept)
            ci = ConfidenceInterval(est - half, est + half)
        else:
            ci = ConfidenceInterval(math.nan, math.nan)
    else:
        curve, est, ci = np.zeros(0), math.nan, ConfidenceInterval(math.nan, math.nan)
    ips = snips = ips_ci = snips_ci = None
    if propensity:
        pk = np.concatenate(kept_props) if kept_props else np.zeros(0)
        ips, ips_ci, snips, snips_ci = _ips_estimates(rk, pk, n_events, z, binary)
        if pmax - pmin > 1e-9 * pmax:
            warnings.warn(
                f"logging propensities range from {pmin:.4g} to {pmax:.4g}: the log is not from a uniformly "
                "random policy, so the replay estimate may be biased; use the IPS/SNIPS estimates",
                NonUniformLoggingWarning, stacklevel=2)
    else:
        _check_uniform_arms(logged, pol, arm)
    return ReplayResult(est, ci, n_kept, n_events, curve, np.bincount(ak, minlength=k).astype(np.int64),
                        ips, ips_ci, snips, snips_ci, pol, level, batch_size)


def _ips_estimates(rk, pk, n_events, z, binary=False):
    """IPS and self-normalized IPS over all events (terms are zero where the event was not kept).

    With 0/1 rewards the intervals are Wilson intervals on the effective sample size of the
    importance weights, ``(sum v)^2 / sum v^2`` (SNIPS is a weighted proportion; IPS is SNIPS
    times ``sum v / n_events``): never degenerate at 0 when no kept event was rewarded.
    """
    w = rk / pk
    v = 1.0 / pk
    ips = float(w.sum() / n_events)
    if binary and v.size:
        sv = float(v.sum())
        snips = float(w.sum() / sv)
        n_eff = sv * sv / float(np.sum(v * v))
        lo, hi = _stats.wilson_interval(snips, n_eff, z)
        scale = sv / n_events
        return (ips, ConfidenceInterval(lo * scale, hi * scale, method="wilson"), snips,
                ConfidenceInterval(lo, hi, method="wilson"))
    if n_events > 1:
        # two-pass variance over all events: kept ones deviate by w - ips, the others by -ips
        var = (float(np.sum((w - ips) ** 2)) + (n_events - w.size) * ips * ips) / (n_events - 1)
        half = z * math.sqrt(var / n_events)
        ips_ci = ConfidenceInterval(ips - half, ips + half)
    else:
        ips_ci = ConfidenceInterval(math.nan, math.nan)
    vs = float(v.sum())
    if vs > 0:
        snips = float(w.sum() / vs)
        # delta method: influence terms (w_i - snips * v_i) / mean(v); zero for events not kept
        d = (w - snips * v) / (vs / n_events)
        var = float(np.sum(d * d)) / (n_events - 1) if n_events > 1 else math.nan
        half = z * math.sqrt(var / n_events) if n_events > 1 else math.nan
        snips_ci = ConfidenceInterval(snips - half, snips + half)
    else:
        snips, snips_ci = math.nan, ConfidenceInterval(math.nan, math.nan)
    return ips, ips_ci, snips, snips_ci


def _uniform_pvalue(counts: np.ndarray) -> float:
    """Pearson's chi-square goodness of fit of ``counts`` to equal frequencies (closed form:
    scipy.stats.chisquare's wrapper costs milliseconds per call)."""
    from ._special import chdtrc

    expected = counts.sum() / counts.size
    stat = float(np.sum((counts - expected) ** 2) / expected)
    return float(chdtrc(counts.size - 1, stat))


def _check_uniform_arms(logged: np.ndarray, pol: _Policy, arm: str) -> None:
    total = int(logged.sum())
    if total < 5 * pol.n_arms or pol.n_arms < 2:
        return
    p = _uniform_pvalue(logged)
    if p < 1e-3:
        shares = ", ".join(f"{x / total:.3f}" for x in logged[:10]) + (" ..." if pol.n_arms > 10 else "")
        warnings.warn(
            f"arm frequencies in column {arm!r} are far from uniform (shares {shares}; "
            f"chi-square p={p:.2g}); replay (Li et al. 2011) is unbiased only for uniformly random "
            "logging: pass `propensity` for IPS/SNIPS estimates", NonUniformLoggingWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------------
# simulation


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Many independent simulated runs of a bandit policy.

    ``mean_regret[i]`` is the mean cumulative pseudo-regret
    ``sum_t (mu* - mu_{a_t})`` after ``steps[i]`` plays, over ``n_runs`` runs;
    ``regret_band`` its pointwise ``band_level`` quantile band over runs and
    ``regret_se`` the standard error of the mean. ``arm_frequency`` is the
    share of all plays that went to each arm.
    """

    steps: np.ndarray
    mean_regret: np.ndarray
    regret_band: Band
    regret_se: np.ndarray
    arm_frequency: np.ndarray
    mean_pulls: np.ndarray
    final_regret: float
    final_regret_confidence_interval: ConfidenceInterval
    arm_means: np.ndarray
    n_runs: int
    n_steps: int
    policy: str
    band_level: float
    seed: int
    backend: str = "cpu"

    @property
    def best_arm_share(self) -> float:
        """Share of plays that went to the best arm(s)."""
        best = self.arm_means == self.arm_means.max()
        return float(self.arm_frequency[best].sum())

    def regret_bound(self, steps=None) -> np.ndarray:
        """UCB1's upper bound on expected regret (Auer et al. 2002, Theorem 1) at ``steps``."""
        steps = self.steps if steps is None else np.asarray(steps, dtype=np.float64)
        gaps = self.arm_means.max() - self.arm_means
        gaps = gaps[gaps > 0]
        return 8.0 * np.log(steps) * np.sum(1.0 / gaps) + (1.0 + math.pi**2 / 3.0) * np.sum(gaps)

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "n_runs": self.n_runs,
            "n_steps": self.n_steps,
            "seed": self.seed,
            "arm_means": self.arm_means.tolist(),
            "final_regret": self.final_regret,
            "final_regret_confidence_interval": list(self.final_regret_confidence_interval),
            "arm_frequency": self.arm_frequency.tolist(),
            "mean_pulls": self.mean_pulls.tolist(),
            "best_arm_share": self.best_arm_share,
            "steps": self.steps.tolist(),
            "mean_regret": self.mean_regret.tolist(),
            "regret_band": [self.regret_band.low.tolist(), self.regret_band.high.tolist()],
            "band_level": self.band_level,
        }

    def plot(self, path=None, *, ax=None, bound: bool = False):
        """Plot mean cumulative regret with its band (needs matplotlib).

        ``bound=True`` adds the UCB1 bound of Auer et al. (2002), Theorem 1.
        Saves to ``path`` when given; returns the matplotlib Axes.
        """
        plt = _pyplot()
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        line = ax.plot(self.steps, self.mean_regret, label=f"{self.policy} (mean of {self.n_runs} runs)")[0]
        ax.fill_between(self.steps, self.regret_band.low, self.regret_band.high, alpha=0.25,
                        color=line.get_color(), label=f"{self.band_level:.0%} of runs")
        if bound:
            ax.plot(self.steps, self.regret_bound(), "k--", label="UCB1 bound (Auer et al. 2002)")
        ax.set_xlabel("step")
        ax.set_ylabel("cumulative regret")
        ax.legend()
        return _save_plot(plt, fig, ax, path)


def _checkpoints(n_steps: int, points: int) -> np.ndarray:
    if points >= n_steps:
        return np.arange(1, n_steps + 1, dtype=np.int64)
    cp = np.unique(np.round(np.linspace(1, n_steps, points)).astype(np.int64))
    return cp


def simulate(policy, arm_means, *, n_steps: int, n_runs: int = 1000, seed=None, rewards: str = "bernoulli",
             concentration: float = 10.0, curve_points: int = 1000, band: float = 0.9,
             backend: str = "auto") -> SimulationResult:
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
        on any number of threads.
    rewards : {"bernoulli", "beta"}
        Reward distribution of an arm with mean mu: Bernoulli(mu), or
        Beta(mu * c, (1 - mu) * c) with ``c = concentration`` (means in (0, 1)).
    curve_points : int
        Checkpoints of the regret curve (every step when ``n_steps`` is smaller).
    band : float
        Level of the pointwise quantile band of the regret curve.
    backend : {"auto", "cpu", "cuda"}
        Where the runs are simulated: ``"cuda"`` runs them on an NVIDIA GPU (one
        thread per run; UCB1 with Bernoulli rewards, up to 64 arms), with the same
        counter-based rewards, so the same plays as the CPU; ``"auto"`` uses the GPU
        only when one is present, the policy is supported and ``n_runs x n_steps`` is
        large (see ``fastevals._cuda.backend``). The result says which ran.

    Returns
    -------
    SimulationResult

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
        from ._cuda import bandits as kb
    regret, pulls = kb.simulate_runs(
        pol._kind, p1, p2, _derive_seed(seed, 1), _derive_seed(seed, 2), means,
        0 if dist == "bernoulli" else 1, float(concentration), n_steps, n_runs,
        pol._counts, pol._sums, pol._sq, cp)
    mean_regret = regret.mean(axis=0)
    se = regret.std(axis=0, ddof=1) / math.sqrt(n_runs) if n_runs > 1 else np.full(cp.size, np.nan)
    q = (1.0 - band) / 2.0
    lo, hi = np.quantile(regret, [q, 1.0 - q], axis=0)
    total = pulls.sum(axis=0)
    z = _z(0.95)
    final = float(mean_regret[-1])
    fci = ConfidenceInterval(final - z * float(se[-1]), final + z * float(se[-1]))
    return SimulationResult(
        steps=cp, mean_regret=mean_regret, regret_band=Band(lo, hi), regret_se=se,
        arm_frequency=total / total.sum(), mean_pulls=total / n_runs, final_regret=final,
        final_regret_confidence_interval=fci, arm_means=means, n_runs=n_runs, n_steps=n_steps,
        policy=pol.name, band_level=band, seed=seed, backend="cuda" if on_gpu else "cpu")


def _simulation_backend(backend, pol, dist: str, n_arms: int, work: int) -> str:
    """``resolve_backend`` plus the GPU twin's limits (UCB1, Bernoulli rewards, <= 64 arms)."""
    from ._cuda.backend import BACKENDS, resolve_backend

    backend = check_choice("backend", backend, BACKENDS)
    supported = type(pol) is UCB1 and dist == "bernoulli" and n_arms <= 64
    if not supported:
        if backend == "cuda":
            raise ValueError("backend='cuda' simulates UCB1 with Bernoulli rewards and at most 64 arms; "
                             f"got {pol.name} with {dist} rewards and {n_arms} arms (use backend='cpu')")
        return "cpu"
    return resolve_backend(backend, work)


def warmup() -> None:
    """Compile the bandit kernels for the common input types (int64 arms, float64 rewards)."""
    pol = UCB1(2)
    pol.update(np.array([0, 1], dtype=np.int64), np.array([0.0, 1.0]))
    pol.select()
    replay({"arm": np.array([0, 1, 0, 1]), "reward": np.array([0.0, 1.0, 1.0, 0.0])}, UCB1(2))
    simulate(pol, [0.2, 0.3], n_steps=10, n_runs=2, seed=0)
