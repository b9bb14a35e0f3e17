"""Benchmarks BA1-BA3 (see ../shared/benchmarking.md): fastevals bandits against
MABWiser and a plain NumPy loop, on the same data in the same run, answers
asserted equal before timing.

Default sizes are small (they run once as tests under --benchmark-disable);
``FASTEVALS_BENCH_FULL=1`` selects the standard workloads:

* BA1: 1M logged (arm, reward) rows, 10 Bernoulli arms: UCB1 state update vs MABWiser ``fit``.
* BA2: replay of UCB1 over the BA1 log vs a MABWiser ``predict`` + ``partial_fit`` loop
  (the MABWiser loop costs ~0.1-0.5 ms per event, so it replays a prefix of
  ``N_REPLAY`` events; both sides replay the same prefix here; see compare_bandits.py
  for ours over the whole log).
* BA3: 1,000 simulated UCB1 runs x 10,000 steps, 10 arms vs a NumPy loop vectorized
  over runs that uses the same counter-based random numbers (so the plays agree exactly).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import fastevals.bandits as fb

FULL = os.environ.get("FASTEVALS_BENCH_FULL") == "1"
K = 10
SEED = 20240601
MEANS = np.linspace(0.10, 0.28, K)
N_LOG = 1_000_000 if FULL else 100_000
N_REPLAY = 50_000 if FULL else 3_000
SIM_RUNS, SIM_STEPS = (1000, 10_000) if FULL else (40, 1000)


def make_log(n: int = N_LOG, seed: int = SEED):
    """Uniformly logged Bernoulli bandit: arm (int64), reward (float64 0/1)."""
    rng = np.random.default_rng(seed)
    arms = rng.integers(0, K, n)
    rewards = (rng.random(n) < MEANS[arms]).astype(np.float64)
    return arms, rewards


# ----------------------------------------------------------------------------------------------------
# peers


def mabwiser_fit(arms, rewards):
    from mabwiser.mab import MAB, LearningPolicy

    mab = MAB(list(range(K)), LearningPolicy.UCB1(alpha=1.0))
    mab.fit(arms, rewards)
    return mab


def mabwiser_replay(arms, rewards):
    """Li et al. (2011) replay driven by MABWiser; returns (n_kept, mean kept reward).

    MABWiser scores an unplayed arm 0 (on purpose); exact UCB1 plays every arm
    once first, so the loop plays the lowest unplayed arm itself until all are played.
    """
    from mabwiser.mab import MAB, LearningPolicy

    mab = MAB(list(range(K)), LearningPolicy.UCB1(alpha=1.0))
    played = [0] * K
    unplayed = K
    n_kept, total = 0, 0.0
    for a, r in zip(arms.tolist(), rewards.tolist(), strict=True):
        choice = played.index(0) if unplayed else mab.predict()
        if choice != a:
            continue
        if n_kept == 0:
            mab.fit([a], [r])
        else:
            mab.partial_fit([a], [r])
        if played[a] == 0:
            unplayed -= 1
        played[a] += 1
        n_kept += 1
        total += r
    return n_kept, total / n_kept


_GOLDEN = np.array([0x9E3779B97F4A7C15], dtype=np.uint64)


def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.array([0xBF58476D1CE4E5B9], dtype=np.uint64)
    z = (z ^ (z >> np.uint64(27))) * np.array([0x94D049BB133111EB], dtype=np.uint64)
    return z ^ (z >> np.uint64(31))


def numpy_simulate_ucb1(means, n_steps, n_runs, seed):
    """UCB1 runs vectorized over runs with NumPy; Bernoulli rewards from the same
    counter-based hash fastevals uses, so per-run plays are identical."""
    k = len(means)
    seed_reward = int(fb._derive_seed(seed, 2))
    start = _mix(np.array([seed_reward], dtype=np.uint64) + _GOLDEN)
    keys = _mix(start + np.arange(n_runs, dtype=np.uint64) * _GOLDEN + _GOLDEN)
    counts = np.zeros((n_runs, k))
    sums = np.zeros((n_runs, k))
    mean = np.zeros((n_runs, k))
    rows = np.arange(n_runs)
    best = means.max()
    regret = np.zeros(n_runs)
    for step in range(n_steps):
        if step < k:
            a = np.full(n_runs, step)  # every arm once first, lowest index first
        else:
            a = np.argmax(mean + np.sqrt(2.0 * math.log(step) / counts), axis=1)
        z = _mix(keys + np.array([step], dtype=np.uint64) * _GOLDEN + _GOLDEN)
        u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
        mu = means[a]
        counts[rows, a] += 1
        sums[rows, a] += u < mu
        mean[rows, a] = sums[rows, a] / counts[rows, a]
        regret += best - mu
    return regret, counts


# ----------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def log():
    return make_log()


@pytest.fixture(scope="module")
def replay_log(log):
    arms, rewards = log
    return arms[:N_REPLAY].copy(), rewards[:N_REPLAY].copy()


# ----------------------------------------------------------------------------------------------------
# BA1: UCB1 sufficient statistics over the log


@pytest.mark.benchmark(group="BA1 UCB1 update")
def test_ba1_fastevals_update(benchmark, log):
    arms, rewards = log
    fb.UCB1(K).update(arms, rewards)  # compile outside the timing
    pol = benchmark(lambda: fb.UCB1(K).update(arms, rewards))
    np.testing.assert_array_equal(pol.state.pulls, np.bincount(arms, minlength=K))
    np.testing.assert_allclose(pol.state.reward_sums, np.bincount(arms, rewards, minlength=K), rtol=1e-12)


@pytest.mark.benchmark(group="BA1 UCB1 update")
def test_ba1_mabwiser_fit(benchmark, log):
    pytest.importorskip("mabwiser")
    arms, rewards = log
    mab = benchmark(mabwiser_fit, arms, rewards)
    ours = fb.UCB1(K).update(arms, rewards)
    exp = mab.predict_expectations()
    np.testing.assert_allclose(ours.scores(), [exp[j] for j in range(K)], rtol=1e-12)
    assert ours.select() == mab.predict()


@pytest.mark.benchmark(group="BA1 UCB1 update")
def test_ba1_numpy_bincount_floor(benchmark, log):
    arms, rewards = log
    n, s = benchmark(lambda: (np.bincount(arms, minlength=K), np.bincount(arms, rewards, minlength=K)))
    np.testing.assert_array_equal(n, fb.UCB1(K).update(arms, rewards).state.pulls)


# ----------------------------------------------------------------------------------------------------
# BA2: replay


@pytest.mark.benchmark(group="BA2 UCB1 replay")
def test_ba2_fastevals_replay(benchmark, replay_log):
    arms, rewards = replay_log
    data = {"arm": arms, "reward": rewards}
    fb.replay(data, fb.UCB1(K))
    res = benchmark(fb.replay, data, fb.UCB1(K))
    assert res.n == arms.size and res.n_kept > 0


@pytest.mark.benchmark(group="BA2 UCB1 replay")
def test_ba2_mabwiser_replay_loop(benchmark, replay_log):
    pytest.importorskip("mabwiser")
    arms, rewards = replay_log
    n_kept, est = benchmark.pedantic(mabwiser_replay, args=(arms, rewards), rounds=1 if FULL else 2,
                                     iterations=1)
    ours = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(K))
    assert ours.n_kept == n_kept
    assert ours.estimate == pytest.approx(est, rel=1e-12)


# ----------------------------------------------------------------------------------------------------
# BA3: simulation


@pytest.mark.benchmark(group="BA3 UCB1 simulation")
def test_ba3_fastevals_simulate(benchmark):
    fb.simulate("ucb1", MEANS, n_steps=20, n_runs=2, seed=SEED)
    res = benchmark.pedantic(fb.simulate, args=("ucb1", MEANS),
                             kwargs={"n_steps": SIM_STEPS, "n_runs": SIM_RUNS, "seed": SEED},
                             rounds=3, iterations=1)
    # the timed answer is the NumPy twin's, play for play (the same counter-based rewards)
    regret, counts = numpy_simulate_ucb1(MEANS, SIM_STEPS, SIM_RUNS, SEED)
    np.testing.assert_array_equal(res.mean_pulls, counts.sum(axis=0) / SIM_RUNS)
    np.testing.assert_allclose(res.final_regret, regret.mean(), rtol=1e-12)


@pytest.mark.benchmark(group="BA3 UCB1 simulation")
def test_ba3_numpy_loop(benchmark):
    regret, counts = benchmark.pedantic(numpy_simulate_ucb1, args=(MEANS, SIM_STEPS, SIM_RUNS, SEED),
                                        rounds=1 if FULL else 2, iterations=1)
    ours = fb.simulate("ucb1", MEANS, n_steps=SIM_STEPS, n_runs=SIM_RUNS, seed=SEED)
    np.testing.assert_array_equal(ours.mean_pulls, counts.sum(axis=0) / SIM_RUNS)
    np.testing.assert_allclose(ours.final_regret, regret.mean(), rtol=1e-12)
