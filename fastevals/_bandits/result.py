"""Bandit results: a policy's :class:`ArmState`, :class:`ReplayResult` and :class:`SimulationResult`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._protocol import ConfidenceInterval, Result, fmt, plain, render_table

if TYPE_CHECKING:
    from dataclasses import dataclass as result_dataclass  # mypy sees the fields

    from .state import _Policy
else:
    from .._protocol import result_dataclass


def _pyplot():
    from .._protocol import optional_import

    return optional_import("matplotlib.pyplot", "plot()")


# ----------------------------------------------------------------------------------------------------
# a policy's result


@result_dataclass
class ArmState(Result):
    """Sufficient statistics of a bandit policy: what ``policy.finalize()`` (or ``policy.state``) gives.

    Copies: editing them changes nothing. ``to_arrow()`` gives one row per arm.

    Attributes
    ----------
    policy : str
        The policy's name.
    total_plays : int
        Plays folded into the policy (updates, and the kept events of a replay).
    n, n_dropped : int
        Rows the policy's updates used, and rows they dropped (``nulls="drop"``).
    pulls, reward_sums, squared_reward_sums : numpy.ndarray
        Per-arm statistics.
    arm_labels : tuple or None
        The arms' labels.

    Examples
    --------
    >>> import fastevals
    >>> st = fastevals.UCB1(2).update([0, 1, 1], [1.0, 0.0, 1.0]).finalize()
    >>> st.pulls.tolist(), st.means.tolist()
    ([1, 2], [1.0, 0.5])
    """

    policy: str
    total_plays: int
    n: int
    n_dropped: int
    pulls: np.ndarray
    reward_sums: np.ndarray
    squared_reward_sums: np.ndarray
    arm_labels: tuple | None

    @property
    def means(self) -> np.ndarray:
        """Mean reward per arm (NaN for an arm never played)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.pulls > 0, self.reward_sums / np.maximum(self.pulls, 1), np.nan)

    def _arm_column(self) -> pa.Array:
        return src.arrow_array(list(self.arm_labels)) if self.arm_labels is not None \
            else pa.array(np.arange(len(self.pulls), dtype=np.int64))

    def to_arrow(self) -> pa.Table:
        """One row per arm: ``arm``, ``pulls``, ``reward_sum``, ``squared_reward_sum``, ``mean`` (null if unplayed)."""
        return pa.table({"arm": self._arm_column(), "pulls": pa.array(self.pulls),
                         "reward_sum": pa.array(self.reward_sums),
                         "squared_reward_sum": pa.array(self.squared_reward_sums),
                         "mean": src.numpy_to_arrow(self.means, nan_is_null=True)})

    def _title(self) -> str:
        return f"{self.policy} state"

    def _summary_lines(self) -> list[str]:
        return [f"total plays: {self.total_plays:,}   arms: {len(self.pulls):,}"]

    def __str__(self) -> str:
        table = self.to_arrow().sort_by([("pulls", "descending")])
        return "\n".join([self._title(), *self._summary_lines(), render_table(table, max_rows=10)])

    def _plot(self, ax) -> None:
        labels = [str(x) for x in (self.arm_labels or range(len(self.pulls)))]
        ax.bar(labels, np.nan_to_num(self.means), color="C0", alpha=0.7)
        for i, n in enumerate(self.pulls):
            ax.annotate(f"{int(n):,}", (i, 0), ha="center", va="bottom", fontsize=8)
        ax.set_xlabel("arm")
        ax.set_ylabel("mean reward (numbers: pulls)")
        ax.set_title(f"{self.policy}: {self.total_plays:,} plays")


@result_dataclass
class ReplayResult(Result):
    """Offline evaluation of a bandit policy by replay (Li et al. 2011).

    ``estimate`` is the mean reward per step the policy would earn, with a
    ``confidence_interval`` over the ``n_kept`` events where the policy chose
    the logged arm (Wilson for 0/1 rewards, normal otherwise).
    ``reward_curve[i]`` is the mean reward of the first ``i + 1`` kept events.
    Where the log has propensities, ``ips`` and ``snips`` (self-normalized)
    estimate the same value by inverse propensity weighting over all ``n``
    events. ``table`` has one row per arm (logged and kept events, mean reward
    of the kept ones); ``str(result)`` shows the top arms.

    Attributes
    ----------
    estimate : float
    confidence_interval : ConfidenceInterval
    n_kept : int
        Events where the policy chose the logged arm.
    n, n_dropped : int
        Events replayed (rows used), and rows dropped with ``nulls="drop"``.
    ips, snips : float or None
    ips_ci, snips_ci : ConfidenceInterval or None
    confidence : float
    update_every : int
        Kept events per policy update.
    policy : policy state
        The policy after the replay.
    reward_curve, kept_per_arm, logged_per_arm : numpy.ndarray
    table : pyarrow.Table

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> arms = rng.integers(0, 2, 2000)
    >>> res = fastevals.replay({"arm": arms, "reward": rng.random(2000) < 0.3}, fastevals.UCB1(2))
    >>> res.n, res.table.num_rows
    (2000, 2)
    """

    estimate: float
    confidence_interval: ConfidenceInterval
    n_kept: int
    n: int
    n_dropped: int
    ips: float | None
    ips_ci: ConfidenceInterval | None
    snips: float | None
    snips_ci: ConfidenceInterval | None
    confidence: float
    update_every: int
    policy: _Policy
    reward_curve: np.ndarray
    kept_per_arm: np.ndarray
    logged_per_arm: np.ndarray
    table: pa.Table

    @property
    def kept_fraction(self) -> float:
        """Share of the events that were kept."""
        return self.n_kept / self.n if self.n else math.nan

    def to_dict(self) -> dict:
        """Plain Python values; the policy as its name, labels and statistics."""
        d = {name: plain(getattr(self, name)) for name in self._field_names() if name != "policy"}
        d["policy"] = self.policy.name
        d["arm_labels"] = None if self.policy.arm_labels is None else list(self.policy.arm_labels)
        d["kept_fraction"] = self.kept_fraction
        return d

    def _title(self) -> str:
        return (f"replay of {self.policy.name} (Li et al. 2011), policy updated every "
                f"{self.update_every:,} kept event(s)")

    def _summary_lines(self) -> list[str]:
        lines = [f"events: {self.n:,} (dropped {self.n_dropped:,})   kept: {self.n_kept:,} "
                 f"({fmt(100 * self.kept_fraction, 4)}%)",
                 f"estimated reward per step: {fmt(self.estimate, 6)}   {self.confidence:.0%} CI "
                 f"{fmt(self.confidence_interval, 6)}"]
        if self.ips is not None:
            lines.append(f"IPS:   {fmt(self.ips, 6)}   CI {fmt(self.ips_ci, 6)}")
            lines.append(f"SNIPS: {fmt(self.snips, 6)}   CI {fmt(self.snips_ci, 6)}")
        return lines

    def __str__(self) -> str:
        k = self.table.num_rows
        top = self.table.sort_by([("kept", "descending")])
        head = "kept events per arm" + (f" (top 10 of {k:,} arms)" if k > 10 else "")
        body = render_table(top, max_rows=10)
        return "\n".join([self._title(), *self._summary_lines(), head, body])

    def _plot(self, ax) -> None:
        x = np.arange(1, self.n_kept + 1)
        ax.plot(x, self.reward_curve, label=f"replay of {self.policy.name}")
        lo, hi = self.confidence_interval
        if math.isfinite(lo) and math.isfinite(hi):
            ax.axhspan(lo, hi, alpha=0.2, label=f"{self.confidence:.0%} CI of the final estimate")
        ax.set_xlabel("kept events")
        ax.set_ylabel("mean reward per step")
        ax.legend()


# ----------------------------------------------------------------------------------------------------
# simulation


@result_dataclass
class SimulationResult(Result):
    """Many independent simulated runs of a bandit policy.

    ``mean_regret[i]`` is the mean cumulative pseudo-regret
    ``sum_t (mu* - mu_{a_t})`` after ``steps[i]`` plays, over ``n_runs`` runs;
    ``regret_band`` its pointwise quantile band over runs (a
    :class:`ConfidenceInterval` of arrays at level ``band``) and
    ``regret_standard_error`` the standard error of the mean.
    ``final_regret_ci`` is the normal interval of the final mean regret at
    ``confidence``. ``arm_frequency`` is the share of all plays that went to
    each arm. ``to_arrow()`` gives one row per checkpoint of the curve.

    Attributes
    ----------
    final_regret : float
    final_regret_ci : ConfidenceInterval
    n_runs, n_steps : int
    policy : str
    confidence, band : float
    seed : int
    backend : str
    steps, mean_regret, regret_standard_error, arm_frequency, mean_pulls, arm_means : numpy.ndarray
    regret_band : ConfidenceInterval

    Examples
    --------
    >>> import fastevals
    >>> sim = fastevals.simulate("ucb1", [0.2, 0.5], n_steps=100, n_runs=50, seed=0)
    >>> sim.to_arrow().num_rows, sim.final_regret_ci.confidence
    (100, 0.95)
    """

    final_regret: float
    final_regret_ci: ConfidenceInterval
    n_runs: int
    n_steps: int
    policy: str
    confidence: float
    band: float
    seed: int
    backend: str
    steps: np.ndarray
    mean_regret: np.ndarray
    regret_band: ConfidenceInterval
    regret_standard_error: np.ndarray
    arm_frequency: np.ndarray
    mean_pulls: np.ndarray
    arm_means: np.ndarray

    @property
    def best_arm_share(self) -> float:
        """Share of plays that went to the best arm(s)."""
        best = self.arm_means == self.arm_means.max()
        return float(self.arm_frequency[best].sum())

    def regret_bound(self, steps=None) -> np.ndarray:
        """UCB1's upper bound on expected regret (Auer et al. 2002, Theorem 1) at ``steps``.

        Parameters
        ----------
        steps : array-like, optional
            Default: the checkpoints.

        Returns
        -------
        numpy.ndarray
        """
        steps = self.steps if steps is None else np.asarray(steps, dtype=np.float64)
        gaps = self.arm_means.max() - self.arm_means
        gaps = gaps[gaps > 0]
        return 8.0 * np.log(steps) * np.sum(1.0 / gaps) + (1.0 + math.pi**2 / 3.0) * np.sum(gaps)

    def to_arrow(self) -> pa.Table:
        """One row per checkpoint: ``step``, ``mean_regret``, ``standard_error``, ``band_low``, ``band_high``."""
        return pa.table({"step": pa.array(self.steps), "mean_regret": pa.array(self.mean_regret),
                         "standard_error": pa.array(self.regret_standard_error),
                         "band_low": pa.array(np.asarray(self.regret_band.low)),
                         "band_high": pa.array(np.asarray(self.regret_band.high))})

    def arms_table(self) -> pa.Table:
        """One row per arm: ``arm``, ``mean`` (the arm's true mean), ``share`` of plays, ``mean_pulls`` per run.

        Returns
        -------
        pyarrow.Table
        """
        return pa.table({"arm": pa.array(np.arange(self.arm_means.size, dtype=np.int64)),
                         "mean": pa.array(self.arm_means), "share": pa.array(self.arm_frequency),
                         "mean_pulls": pa.array(self.mean_pulls)})

    def _title(self) -> str:
        return f"{self.n_runs:,} runs x {self.n_steps:,} steps of {self.policy}, seed {self.seed}"

    def _summary_lines(self) -> list[str]:
        lines = [f"mean cumulative regret after {self.n_steps:,} steps: {fmt(self.final_regret)}  "
                 f"({self.confidence:.0%} CI {fmt(self.final_regret_ci)}; {self.band:.0%} of runs in "
                 f"[{fmt(float(np.asarray(self.regret_band.low)[-1]))}, "
                 f"{fmt(float(np.asarray(self.regret_band.high)[-1]))}])"]
        if self.policy == "ucb1" and np.any(self.arm_means < self.arm_means.max()):
            lines.append(f"UCB1 bound (Auer et al. 2002, Theorem 1): "
                         f"{fmt(float(self.regret_bound([self.n_steps])[0]))}")
        return lines

    def __str__(self) -> str:
        k = self.arm_means.size
        head = "arms" + (f" (top 10 of {k:,} by share of plays)" if k > 10 else "")
        table = self.arms_table().sort_by([("share", "descending")]) if k > 10 else self.arms_table()
        return "\n".join([self._title(), *self._summary_lines(), head, render_table(table, max_rows=10)])

    def plot(self, ax=None, path=None, *, bound: bool = False):
        """Plot mean cumulative regret with its band.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        path : str or path, optional
            Save the figure there.
        bound : bool
            Add the UCB1 bound of Auer et al. (2002), Theorem 1.

        Returns
        -------
        matplotlib.axes.Axes

        Raises
        ------
        ImportError
            Without matplotlib (the ``plot`` extra).
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        self._plot(ax)
        if bound:
            ax.plot(self.steps, self.regret_bound(), "k--", label="UCB1 bound (Auer et al. 2002)")
            ax.legend()
        if path is not None:
            ax.figure.savefig(path, bbox_inches="tight")
        return ax

    def _plot(self, ax) -> None:
        line = ax.plot(self.steps, self.mean_regret, label=f"{self.policy} (mean of {self.n_runs} runs)")[0]
        ax.fill_between(self.steps, self.regret_band.low, self.regret_band.high, alpha=0.25,
                        color=line.get_color(), label=f"{self.band:.0%} of runs")
        ax.set_xlabel("step")
        ax.set_ylabel("cumulative regret")
        ax.legend()
