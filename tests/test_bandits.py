"""Tests of fastevals.bandits: compiled paths against plain-Python twins, the
established libraries (scipy, MABWiser when installed), seeded statistical
checks and hypothesis properties."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.integrate import quad

import fastevals
import fastevals.bandits as fb
from fastevals import _config
from fastevals._kernels import bandits as kb

M64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15


# ----------------------------------------------------------------------------------------------------
# plain-Python twins


def py_mix64(z):
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def py_chain(z, x):
    return py_mix64(z + (x & M64) * GOLDEN + GOLDEN)


def py_start(seed):
    return py_mix64(seed + GOLDEN)


def py_unit(z):
    return (z >> 11) * 2.0**-53


def py_uniform(seed, a, b, c, d):
    return py_unit(py_chain(py_chain(py_chain(py_chain(py_start(seed), a), b), c), d))


class TwinUCB1:
    """Textbook UCB1 (Auer et al. 2002, Figure 1), plain Python."""

    def __init__(self, k, tuned=False):
        self.n = [0] * k
        self.s = [0.0] * k
        self.q = [0.0] * k
        self.tuned = tuned

    def select(self):
        for j, nj in enumerate(self.n):
            if nj == 0:
                return j
        t = sum(self.n)
        best, best_score = 0, -math.inf
        for j, nj in enumerate(self.n):
            mean = self.s[j] / nj
            if self.tuned:
                v = self.q[j] / nj - mean * mean + math.sqrt(2 * math.log(t) / nj)
                score = mean + math.sqrt(math.log(t) / nj * min(0.25, v))
            else:
                score = mean + math.sqrt(2 * math.log(t) / nj)
            if score > best_score:  # strict: ties keep the lowest index
                best, best_score = j, score
        return best

    def update(self, j, r):
        self.n[j] += 1
        self.s[j] += r
        self.q[j] += r * r


def twin_replay(arms, rewards, k, batch_size=1, tuned=False):
    pol = TwinUCB1(k, tuned)
    pending, kept = [], []
    for i, (a, r) in enumerate(zip(arms.tolist(), rewards.tolist(), strict=True)):
        if pol.select() == a:
            kept.append(i)
            pending.append((a, r))
            if len(pending) == batch_size:
                for a2, r2 in pending:
                    pol.update(a2, r2)
                pending = []
    for a2, r2 in pending:
        pol.update(a2, r2)
    return np.array(kept, dtype=np.int64), pol


def uniform_log(n, means, seed):
    rng = np.random.default_rng(seed)
    means = np.asarray(means)
    arms = rng.integers(0, len(means), n)
    rewards = (rng.random(n) < means[arms]).astype(np.float64)
    return arms, rewards


# ----------------------------------------------------------------------------------------------------
# counter-based random numbers


def test_hash_matches_python_twin():
    seed = 0xDEADBEEF12345678
    for a, b, c, d in [(0, 0, 0, 0), (1, 2, 3, 4), (123456789, -1, 7, 2**40), (5, 6, -1, 1)]:
        assert kb.uniform(np.uint64(seed), a, b, c, d) == py_uniform(seed, a, b, c, d)


def test_uniform_is_uniform_ks():
    u = np.array([kb.uniform(np.uint64(42), i, 0, 0, 0) for i in range(3000)])
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert u.min() >= 0.0 and u.max() < 1.0


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (3.5, 8.0), (0.4, 2.0), (40.0, 60.0)])
def test_beta_draws_match_scipy_ks(alpha, beta):
    x = np.array([kb.beta_draw(alpha, beta, np.uint64(7), i, 3, 1) for i in range(2000)])
    assert stats.kstest(x, stats.beta(alpha, beta).cdf).pvalue > 1e-3


# ----------------------------------------------------------------------------------------------------
# UCB1 state: exact choices, updates, merges


@pytest.mark.parametrize("seed,k,bernoulli,tuned", [(0, 2, True, False), (1, 5, True, False),
                                                     (2, 4, False, False), (3, 3, True, True),
                                                     (4, 4, False, True)])
def test_ucb1_choice_sequence_equals_python_twin(seed, k, bernoulli, tuned):
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.1, 0.9, k)
    pol = fb.UCB1Tuned(k) if tuned else fb.UCB1(k)
    twin = TwinUCB1(k, tuned)
    choices = []
    for _ in range(400):
        a = pol.select()
        assert a == twin.select()
        r = float(rng.random() < means[a]) if bernoulli else float(rng.beta(2, 2) * means[a] * 1.1 % 1.0)
        pol.update(np.array([a]), np.array([r]))
        twin.update(a, r)
        choices.append(a)
    assert pol.state.pulls.tolist() == twin.n
    assert sorted(set(choices[:k])) == list(range(k))  # every arm once first, lowest index first
    assert choices[:k] == list(range(k))


def test_scores_match_textbook_formula_and_ties_go_lowest():
    pol = fb.UCB1(4)
    assert np.all(np.isinf(pol.scores()))
    assert pol.select() == 0
    pol.update(np.array([0, 1, 2, 3, 3]), np.array([0.5, 0.5, 1.0, 0.0, 1.0]))
    n = np.array([1, 1, 1, 2])
    s = np.array([0.5, 0.5, 1.0, 1.0])
    expected = [s[j] / n[j] + math.sqrt(2 * math.log(5) / n[j]) for j in range(4)]
    np.testing.assert_allclose(pol.scores(), expected, rtol=1e-15)
    # arms 0 and 1 tie below arm 2
    assert pol.select() == 2
    pol2 = fb.UCB1(3)
    pol2.update(np.array([0, 1, 2]), np.array([1.0, 1.0, 1.0]))
    assert pol2.select() == 0


def test_ucb1_matches_mabwiser_expectations():
    mabwiser = pytest.importorskip("mabwiser.mab")
    arms, rewards = uniform_log(20_000, [0.1, 0.3, 0.2, 0.25], 5)
    mab = mabwiser.MAB([0, 1, 2, 3], mabwiser.LearningPolicy.UCB1(alpha=1.0))
    mab.fit(arms, rewards)
    ours = fb.UCB1(4).update(arms, rewards)
    exp = mab.predict_expectations()
    np.testing.assert_allclose(ours.scores(), [exp[j] for j in range(4)], rtol=1e-12)
    assert ours.select() == mab.predict()


def test_update_matches_numpy_bincount():
    arms, _ = uniform_log(30_000, [0.1, 0.2, 0.3], 1)
    rewards = np.random.default_rng(2).random(arms.size)
    st_ = fb.UCB1(3).update(arms, rewards).state
    np.testing.assert_array_equal(st_.pulls, np.bincount(arms, minlength=3))
    np.testing.assert_allclose(st_.reward_sums, np.bincount(arms, rewards, minlength=3), rtol=1e-12)
    np.testing.assert_allclose(st_.squared_reward_sums, np.bincount(arms, rewards**2, minlength=3),
                               rtol=1e-12)
    assert st_.total_plays == arms.size


def test_parallel_kernel_equals_serial_on_any_thread_count():
    arms, _ = uniform_log(5000, [0.1, 0.2, 0.3, 0.4], 3)
    rewards = np.random.default_rng(4).random(arms.size)
    # the public code passes read-only views (as Arrow gives): the same compiled signature
    arms, rewards = fb._readonly(arms), fb._readonly(rewards)
    lut = np.arange(4, dtype=np.int64)
    ref = kb.arm_stats_serial(arms, np.intp(0), lut, rewards, 4, 64)
    before = _config.get_num_threads()
    try:
        for threads in (1, 2):
            _config.set_num_threads(threads)
            got = kb.arm_stats_parallel(arms, np.intp(0), lut, rewards, 4, 64)
            for x, y in zip(ref, got, strict=True):
                np.testing.assert_array_equal(x, y)
    finally:
        _config.set_num_threads(before)


dyadic = st.sampled_from([i / 8 for i in range(9)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), dyadic), min_size=1, max_size=60))
def test_batch_update_equals_row_by_row(rows):
    arms = np.array([a for a, _ in rows], dtype=np.int64)
    rewards = np.array([r for _, r in rows], dtype=np.float64)
    whole = fb.UCB1(4).update(arms, rewards)
    one = fb.UCB1(4)
    for a, r in rows:
        one.update(np.array([a]), np.array([r]))
    # dyadic rewards make every sum exact, so the states are identical
    np.testing.assert_array_equal(whole.state.pulls, one.state.pulls)
    np.testing.assert_array_equal(whole.state.reward_sums, one.state.reward_sums)
    np.testing.assert_array_equal(whole.state.squared_reward_sums, one.state.squared_reward_sums)
    assert whole.select() == one.select()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0, 1)), min_size=2, max_size=80),
       st.lists(st.integers(0, 80), max_size=4))
def test_merge_of_shards_equals_whole(rows, cuts):
    arms = np.array([a for a, _ in rows], dtype=np.int64)
    rewards = np.array([r for _, r in rows], dtype=np.float64)
    bounds = [0] + sorted(min(c, len(rows)) for c in cuts) + [len(rows)]
    shards = [fb.UCB1(3).update(arms[lo:hi], rewards[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:],
                                                                                  strict=True)]
    merged = fb.UCB1(3)
    for s in reversed(shards):  # order does not matter
        before = s.to_bytes()
        merged = merged.merge(s)
        assert s.to_bytes() == before  # merge never mutates its inputs
    whole = fb.UCB1(3).update(arms, rewards)
    np.testing.assert_array_equal(merged.state.pulls, whole.state.pulls)
    np.testing.assert_allclose(merged.state.reward_sums, whole.state.reward_sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(merged.state.squared_reward_sums, whole.state.squared_reward_sums,
                               rtol=1e-12, atol=1e-12)


def test_roundtrip_bytes_is_lossless():
    arms, _ = uniform_log(1000, [0.2, 0.4, 0.6], 9)
    rewards = np.random.default_rng(1).random(arms.size)
    for pol in (fb.UCB1(3, arm_labels=["a", "b", "c"]), fb.UCB1Tuned(3, arm_labels=[10, 20, 30]),
                fb.ThompsonSampling(3, prior=(0.5, 2.0), seed=12), fb.EpsilonGreedy(3, epsilon=0.2, seed=3)):
        if pol.arm_labels is None:
            pol.update(arms, rewards)
        else:
            pol.update(np.asarray(pol.arm_labels, dtype=object)[arms], rewards)
        back = type(pol).from_bytes(pol.to_bytes())
        assert type(back) is type(pol) and back.arm_labels == pol.arm_labels
        assert back._params() == pol._params()
        for x, y in ((back.state.pulls, pol.state.pulls), (back.state.reward_sums, pol.state.reward_sums),
                     (back.state.squared_reward_sums, pol.state.squared_reward_sums)):
            assert x.tobytes() == y.tobytes()
        again = fb.policy_from_bytes(pol.to_bytes())
        assert list(again.select(size=5)) == list(pol.select(size=5))
    with pytest.raises(ValueError, match="'bandit_thompson' state, not a 'bandit_ucb1' state"):
        fb.UCB1.from_bytes(fb.ThompsonSampling(2, seed=1).to_bytes())
    with pytest.raises(ValueError, match="not a fastevals state"):
        fb.policy_from_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a bandit policy"):
        fb.policy_from_bytes(fastevals.CalibrationState(prob="p", label="y").to_bytes())


# ----------------------------------------------------------------------------------------------------
# inputs and errors


def test_sources_equal_arrays(tmp_path):
    arms, rewards = uniform_log(3000, [0.1, 0.5, 0.3], 11)
    labels = np.array(["x", "y", "z"])[arms]
    ref = fb.UCB1(3).update(arms, rewards).state
    table = pa.table({"model": labels, "clicked": rewards.astype(bool)})
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=700)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"model": labels, "clicked": rewards})
    for data in (table, table.to_batches()[0], str(path), frame):
        got = fb.UCB1(3, arm_labels=["x", "y", "z"], arm="model", reward="clicked").update(data).state
        np.testing.assert_array_equal(got.pulls, ref.pulls)
        np.testing.assert_allclose(got.reward_sums, ref.reward_sums, rtol=1e-12)
    # labels as arrays, a dictionary-encoded Arrow array, and integer indices from a dict source
    got = fb.UCB1(3, arm_labels=["x", "y", "z"]).update(pa.array(labels).dictionary_encode(), rewards)
    np.testing.assert_array_equal(got.state.pulls, ref.pulls)
    got = fb.UCB1(3).update({"arm": arms, "reward": rewards})
    np.testing.assert_array_equal(got.state.pulls, ref.pulls)


def test_update_errors_are_clear_and_atomic():
    pol = fb.UCB1(3)
    with pytest.raises(ValueError, match=r"reward.*1\.5 at row 2.*\[0, 1\]"):
        pol.update(np.array([0, 1, 2]), np.array([0.0, 1.0, 1.5]))
    with pytest.raises(ValueError, match=r"-0\.25 at row 0"):
        pol.update(np.array([0]), np.array([-0.25]))
    with pytest.raises(ValueError, match="1 NaN or infinite value.*nulls='drop'"):
        pol.update(np.array([0, 1]), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"`arms` has 3 at row 1.*\[0, 2\]"):
        pol.update(np.array([0, 3]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="-1 at row 0"):
        pol.update(np.array([-1]), np.array([0.0]))
    with pytest.raises(TypeError, match="arm_labels"):
        pol.update(np.array(["a", "b"]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="3 values but `rewards` has 2"):
        pol.update(np.array([0, 1, 2]), np.array([0.0, 1.0]))
    assert pol.total_plays == 0  # nothing was applied
    lab = fb.UCB1(2, arm_labels=["a", "b"])
    with pytest.raises(ValueError, match="'c' at row 1; arms must be one of"):
        lab.update(["a", "c"], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"column 'reward' \(given as `reward`\) has 2.0 at row 4"):
        fb.UCB1(2).update({"arm": np.zeros(5, dtype=np.int64), "reward": np.array([0, 0, 0, 0, 2.0])})
    with pytest.raises(ValueError, match="unknown column 'rew'"):
        fb.UCB1(2, reward="rew").update({"arm": [0], "reward": [0.0]})
    # nulls: raise by default, skipped with nulls="drop"
    arms = pa.array([0, None, 1], type=pa.int64())
    with pytest.raises(ValueError, match="null"):
        fb.UCB1(2).update(arms, pa.array([1.0, 1.0, 0.0]))
    got = fb.UCB1(2, nulls="drop").update(arms, pa.array([1.0, 1.0, np.nan]))
    assert got.state.pulls.tolist() == [1, 0]
    assert (got.n_read, got.n_dropped, got.n) == (3, 2, 1)
    with pytest.raises(ValueError, match="n_arms"):
        fb.UCB1(2, arm_labels=["a"])
    with pytest.raises(ValueError, match="duplicate"):
        fb.UCB1(2, arm_labels=["a", "a"])
    with pytest.raises(ValueError, match=">= 1"):
        fb.UCB1(0)


def test_merge_rejects_incompatible_states():
    with pytest.raises(TypeError, match="ThompsonSampling into a UCB1"):
        fb.UCB1(2).merge(fb.ThompsonSampling(2, seed=0))
    with pytest.raises(ValueError, match="3 and 2 arms"):
        fb.UCB1(2).merge(fb.UCB1(3))
    with pytest.raises(ValueError, match="labels"):
        fb.UCB1(2, arm_labels=["a", "b"]).merge(fb.UCB1(2, arm_labels=["b", "a"]))
    with pytest.raises(ValueError, match="parameters"):
        fb.EpsilonGreedy(2, epsilon=0.1, seed=1).merge(fb.EpsilonGreedy(2, epsilon=0.2, seed=1))


# ----------------------------------------------------------------------------------------------------
# Thompson sampling and epsilon-greedy (statistical)


def test_thompson_choice_frequency_matches_posterior_probability():
    pol = fb.ThompsonSampling(2, seed=2024)
    pol.update(np.array([0] * 10 + [1] * 12), np.array([1.0] * 3 + [0.0] * 7 + [1.0] * 6 + [0.0] * 6))
    b0, b1 = stats.beta(1 + 3, 1 + 7), stats.beta(1 + 6, 1 + 6)
    p_arm1 = quad(lambda x: b0.pdf(x) * b1.sf(x), 0, 1)[0]
    n = 4000
    picks = pol.select(size=n)
    assert stats.binomtest(int((picks == 1).sum()), n, p_arm1).pvalue > 1e-3
    # reproducible: the same state and seed give the same choices; another seed does not
    np.testing.assert_array_equal(picks, pol.copy().select(size=n))
    pol2 = fb.ThompsonSampling(2, seed=7)
    pol2._counts[:], pol2._sums[:] = pol._counts, pol._sums
    assert not np.array_equal(pol2.select(size=200), picks[:200])


def test_thompson_scores_are_the_draws_select_uses():
    pol = fb.ThompsonSampling(5, seed=99).update(np.arange(5).repeat(4), np.linspace(0, 1, 20))
    assert pol.select() == int(np.argmax(pol.scores()))


def test_epsilon_greedy_explores_at_rate_epsilon():
    eps, n = 0.3, 4000
    pol = fb.EpsilonGreedy(3, epsilon=eps, seed=5).update(np.array([0, 1, 2]), np.array([0.2, 0.9, 0.4]))
    picks = pol.select(size=n)
    assert stats.binomtest(int((picks == 1).sum()), n, 1 - eps + eps / 3).pvalue > 1e-3
    assert stats.chisquare(np.bincount(picks[picks != 1], minlength=3)[[0, 2]]).pvalue > 1e-3
    greedy = fb.EpsilonGreedy(3, epsilon=0.0, seed=5)
    assert greedy.select() == 0  # unplayed arms first
    greedy.update(np.array([0, 1, 2]), np.array([0.2, 0.9, 0.4]))
    assert set(greedy.select(size=50).tolist()) == {1}


# ----------------------------------------------------------------------------------------------------
# replay


@pytest.mark.parametrize("update_every,tuned", [(1, False), (4, False), (1, True)])
def test_replay_equals_python_twin(update_every, tuned):
    arms, rewards = uniform_log(4000, [0.2, 0.5, 0.35], 21)
    policy = fb.UCB1Tuned(3) if tuned else fb.UCB1(3)
    res = fb.replay({"arm": arms, "reward": rewards}, policy, update_every=update_every)
    kept, twin = twin_replay(arms, rewards, 3, update_every, tuned)
    assert res.n_kept == kept.size and res.n == arms.size and res.n_dropped == 0
    np.testing.assert_array_equal(res.reward_curve, np.cumsum(rewards[kept]) / np.arange(1, kept.size + 1))
    assert res.estimate == rewards[kept].mean()
    # 0/1 rewards: Wilson's interval of the kept events' proportion
    from statsmodels.stats.proportion import proportion_confint

    ref = proportion_confint(int(rewards[kept].sum()), kept.size, alpha=0.05, method="wilson")
    np.testing.assert_allclose(res.confidence_interval, ref, rtol=1e-12)
    assert res.confidence_interval.method == "wilson"
    assert res.policy.state.pulls.tolist() == twin.n
    np.testing.assert_array_equal(res.kept_per_arm, np.bincount(arms[kept], minlength=3))
    assert policy.total_plays == 0  # the given policy is not changed


def test_replay_streams_batches_like_one_table(tmp_path):
    arms, rewards = uniform_log(5000, [0.3, 0.1, 0.6], 8)
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"arm": arms, "reward": rewards}), path, row_group_size=333)
    a = fb.replay(str(path), fb.UCB1(3), update_every=3, batch_size=100)
    b = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(3), update_every=3)
    assert a.n_kept == b.n_kept and a.estimate == b.estimate
    np.testing.assert_array_equal(a.reward_curve, b.reward_curve)
    # random policies draw per event (keyed by event index): streaming does not change them either
    c = fb.replay(str(path), fb.ThompsonSampling(3, seed=1))
    d = fb.replay({"arm": arms, "reward": rewards}, fb.ThompsonSampling(3, seed=1))
    assert c.n_kept == d.n_kept and c.estimate == d.estimate


def test_replay_with_policy_name_uses_sorted_labels(tmp_path):
    arms, rewards = uniform_log(3000, [0.1, 0.2, 0.4], 4)
    names = np.array(["ctrl", "new_a", "new_b"])[arms]
    res = fb.replay({"model": names, "clicked": rewards.astype(bool)}, "ucb1", arm="model", reward="clicked")
    ref = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(3))
    assert res.policy.arm_labels == ("ctrl", "new_a", "new_b")
    assert res.n_kept == ref.n_kept and res.estimate == ref.estimate


def test_replay_ips_and_snips_against_numpy():
    rng = np.random.default_rng(6)
    n, k = 6000, 3
    prop_table = np.array([0.5, 0.3, 0.2])
    arms = rng.choice(k, n, p=prop_table)
    rewards = (rng.random(n) < np.array([0.3, 0.5, 0.4])[arms]).astype(np.float64)
    props = prop_table[arms]
    with pytest.warns(fb.NonUniformLoggingWarning, match="propensities range"):
        res = fb.replay({"arm": arms, "reward": rewards, "p": props}, fb.UCB1(k), propensity="p")
    kept, _ = twin_replay(arms, rewards, k)
    w = np.zeros(n)
    v = np.zeros(n)
    w[kept] = rewards[kept] / props[kept]
    v[kept] = 1 / props[kept]
    np.testing.assert_allclose(res.ips, w.mean(), rtol=1e-12)
    snips = w.sum() / v.sum()
    np.testing.assert_allclose(res.snips, snips, rtol=1e-12)
    # 0/1 rewards: Wilson intervals on the importance weights' effective sample size (Kish)
    from statsmodels.stats.proportion import proportion_confint

    n_eff = v.sum() ** 2 / (v * v).sum()
    z = stats.norm.ppf(0.975)
    center = (snips + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z / (1 + z * z / n_eff) * math.sqrt(snips * (1 - snips) / n_eff + z * z / (4 * n_eff * n_eff))
    np.testing.assert_allclose(res.snips_ci, (center - half, center + half), rtol=1e-10)
    m = int(round(n_eff))  # at an integer effective size the formula is statsmodels' Wilson interval
    assert proportion_confint(snips * m, m, method="wilson")[1] == pytest.approx(
        res.snips_ci.high, rel=1e-3)
    scale = v.sum() / n
    np.testing.assert_allclose(res.ips_ci, np.array([center - half, center + half]) * scale,
                               rtol=1e-10)

    # real-valued rewards keep the normal intervals over all events
    real = rewards * rng.random(n)
    with pytest.warns(fb.NonUniformLoggingWarning, match="propensities range"):
        res = fb.replay({"arm": arms, "reward": real, "p": props}, fb.UCB1(k), propensity="p")
    kept, _ = twin_replay(arms, real, k)
    w = np.zeros(n)
    v = np.zeros(n)
    w[kept] = real[kept] / props[kept]
    v[kept] = 1 / props[kept]
    half = stats.norm.ppf(0.975) * w.std(ddof=1) / math.sqrt(n)
    np.testing.assert_allclose(res.ips_ci, (w.mean() - half, w.mean() + half), rtol=1e-10)
    snips = w.sum() / v.sum()
    d = (w - snips * v) / v.mean()
    half = stats.norm.ppf(0.975) * d.std(ddof=1) / math.sqrt(n)
    np.testing.assert_allclose(res.snips_ci, (snips - half, snips + half), rtol=1e-10)


def test_replay_warnings_and_errors():
    arms, rewards = uniform_log(3000, [0.2, 0.3], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb.replay({"arm": arms, "reward": rewards, "p": np.full(arms.size, 0.5)}, fb.UCB1(2), propensity="p")
    skewed = np.where(np.arange(3000) % 4 == 0, 1, 0)
    with pytest.warns(fb.NonUniformLoggingWarning, match="far from uniform"):
        fb.replay({"arm": skewed, "reward": rewards}, fb.UCB1(2))
    with pytest.raises(ValueError, match=r"propensities must be in \(0, 1\]"):
        fb.replay({"arm": arms, "reward": rewards, "p": np.zeros(arms.size)}, fb.UCB1(2), propensity="p")
    with pytest.raises(ValueError, match=r"column 'arm' \(given as `arm`\) has 2 at row 1"):
        fb.replay({"arm": np.array([0, 2]), "reward": np.array([0.0, 1.0])}, fb.UCB1(2))
    with pytest.raises(ValueError, match=r"column 'reward' \(given as `reward`\) has 3.0 at row 1"):
        fb.replay({"arm": np.array([0, 1]), "reward": np.array([0.0, 3.0])}, fb.UCB1(2))
    with pytest.raises(TypeError, match="`policy` must be"):
        fb.replay({"arm": arms, "reward": rewards}, object())
    with pytest.raises(ValueError, match="`update_every` must be >= 1"):
        fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(2), update_every=0)
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(2), batch_size=0)
    with pytest.raises(ValueError, match="backend='cuda' is not available"):
        fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(2), backend="cuda")
    with pytest.raises(ValueError, match="`confidence` must be"):
        fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(2), confidence=1.5)
    reader = pa.RecordBatchReader.from_batches(pa.table({"arm": arms, "reward": rewards}).schema,
                                               pa.table({"arm": arms, "reward": rewards}).to_batches())
    with pytest.raises(ValueError, match="read only once"):
        fb.replay(reader, "ucb1")


def test_uniform_pvalue_matches_scipy_chisquare():
    for counts in ([10, 12, 9], [100, 50, 75, 80], [5, 0, 30]):
        c = np.array(counts, dtype=np.int64)
        assert fb._uniform_pvalue(c) == pytest.approx(stats.chisquare(c).pvalue, rel=1e-12)


def test_replay_ci_coverage_of_a_uniform_policy():
    # epsilon-greedy with epsilon=1 plays uniformly at random: its value is the mean of the arm means
    means = np.array([0.2, 0.6, 0.4])
    reps, covered = 150, 0
    for rep in range(reps):
        arms, rewards = uniform_log(1500, means, 1000 + rep)
        res = fb.replay({"arm": arms, "reward": rewards}, fb.EpsilonGreedy(3, epsilon=1.0, seed=rep))
        lo, hi = res.confidence_interval
        covered += lo <= means.mean() <= hi
    assert stats.binomtest(covered, reps, 0.95).pvalue > 1e-3


def test_replay_is_unbiased_for_ucb1_against_simulation():
    # Li et al. (2011): on uniformly logged data, replay's per-step reward over T kept events has
    # the expectation of the policy's online per-step reward over T steps.
    means = np.array([0.3, 0.5, 0.45])
    est = []
    kept = []
    for rep in range(60):
        arms, rewards = uniform_log(1800, means, 500 + rep)
        res = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(3))
        est.append(res.estimate)
        kept.append(res.n_kept)
    steps = int(np.mean(kept))
    sim = fb.simulate("ucb1", means, n_steps=steps, n_runs=2000, seed=3)
    online = means.max() - sim.final_regret / steps
    se = np.std(est, ddof=1) / math.sqrt(len(est))
    assert abs(np.mean(est) - online) < 4 * se + 4 * sim.regret_standard_error[-1] / steps


def test_replay_matches_mabwiser_loop():
    mabwiser = pytest.importorskip("mabwiser.mab")
    arms, rewards = uniform_log(600, [0.2, 0.5, 0.3, 0.4], 17)
    mab = mabwiser.MAB([0, 1, 2, 3], mabwiser.LearningPolicy.UCB1(alpha=1.0))
    played = [0, 0, 0, 0]
    kept = []
    for i, (a, r) in enumerate(zip(arms.tolist(), rewards.tolist(), strict=True)):
        # MABWiser scores an unplayed arm 0; exact UCB1 plays each arm once first
        choice = played.index(0) if 0 in played else mab.predict()
        if choice == a:
            kept.append(i)
            if sum(played) == 0:
                mab.fit([a], [r])
            else:
                mab.partial_fit([a], [r])
            played[a] += 1
    res = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(4))
    assert res.n_kept == len(kept)
    assert res.estimate == pytest.approx(rewards[kept].mean(), rel=1e-12)


# ----------------------------------------------------------------------------------------------------
# simulation


def test_simulate_equals_python_twin():
    means = [0.3, 0.55, 0.5, 0.1]
    seed, n_steps, n_runs = 77, 300, 3
    res_regret, pulls = kb.simulate_runs(0, 0.0, 0.0, fb._derive_seed(seed, 1), fb._derive_seed(seed, 2),
                                         np.array(means), 0, 10.0, n_steps, n_runs,
                                         np.zeros(4, dtype=np.int64), np.zeros(4), np.zeros(4),
                                         np.arange(1, n_steps + 1, dtype=np.int64))
    seed_reward = int(fb._derive_seed(seed, 2))
    for run in range(n_runs):
        twin = TwinUCB1(4)
        key = py_chain(py_start(seed_reward), run)
        regret = 0.0
        for step in range(n_steps):
            a = twin.select()
            r = 1.0 if py_unit(py_chain(key, step)) < means[a] else 0.0
            twin.update(a, r)
            regret += max(means) - means[a]
            assert res_regret[run, step] == regret
        assert pulls[run].tolist() == twin.n


def test_simulated_ucb1_regret_within_auer_theorem_1():
    means = [0.2, 0.5, 0.8, 0.45]
    sim = fb.simulate("ucb1", means, n_steps=3000, n_runs=300, seed=11)
    assert np.all(sim.mean_regret <= sim.regret_bound())
    gaps = max(means) - np.array(means)
    bound = 8 * math.log(3000) * sum(1 / g for g in gaps if g > 0) + (1 + math.pi**2 / 3) * gaps.sum()
    assert sim.regret_bound([3000])[0] == pytest.approx(bound, rel=1e-12)
    assert sim.steps[-1] == 3000 and sim.arm_frequency.argmax() == 2
    np.testing.assert_allclose(sim.arm_frequency.sum(), 1.0)
    np.testing.assert_allclose(sim.mean_pulls.sum(), 3000)
    assert np.all(sim.regret_band.low <= sim.mean_regret + 1e-12)
    assert np.all(sim.mean_regret <= sim.regret_band.high + 1e-12)
    # [0, 1] rewards of any distribution satisfy the theorem's assumptions
    beta = fb.simulate("ucb1", means, n_steps=1000, n_runs=100, seed=1, rewards="beta")
    assert np.all(beta.mean_regret <= beta.regret_bound())


def test_simulate_is_thread_count_independent():
    before = _config.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            _config.set_num_threads(threads)
            out.append(fb.simulate(fb.ThompsonSampling(3, seed=0), [0.3, 0.4, 0.5], n_steps=200, n_runs=16,
                                   seed=5))
    finally:
        _config.set_num_threads(before)
    np.testing.assert_array_equal(out[0].mean_regret, out[1].mean_regret)
    np.testing.assert_array_equal(out[0].mean_pulls, out[1].mean_pulls)


def test_simulated_policies_learn():
    means = [0.1, 0.3, 0.7]
    for policy in ("thompson", "epsilon-greedy", "ucb1-tuned"):
        sim = fb.simulate(policy, means, n_steps=1000, n_runs=100, seed=2)
        uniform_regret = 1000 * (max(means) - np.mean(means))
        assert sim.final_regret < 0.3 * uniform_regret, policy
        assert sim.best_arm_share > 0.7, policy
    with pytest.raises(ValueError, match="`policy` has 2 arms but `arm_means` has 3"):
        fb.simulate(fb.UCB1(2), means, n_steps=10, n_runs=2, seed=0)
    with pytest.raises(ValueError, match=r"`arm_means` must be in \[0, 1\]"):
        fb.simulate("ucb1", [0.5, 1.5], n_steps=10, n_runs=2, seed=0)


def test_plots_write_files(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    sim = fb.simulate("ucb1", [0.2, 0.4], n_steps=100, n_runs=10, seed=0)
    ax = sim.plot(path=tmp_path / "regret.png", bound=True)
    assert ax.get_xlabel() == "step"
    arms, rewards = uniform_log(500, [0.2, 0.4], 1)
    fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(2)).plot(path=tmp_path / "replay.png")
    assert (tmp_path / "regret.png").stat().st_size > 1000
    assert (tmp_path / "replay.png").stat().st_size > 1000


def test_cli_replay_and_simulate(tmp_path, capsys):
    import argparse
    import json

    from fastevals._cli import bandit as _cli_bandit

    parser = argparse.ArgumentParser(prog="fastevals")
    _cli_bandit.add_parser(parser.add_subparsers(dest="command", required=True))
    arms, rewards = uniform_log(2000, [0.1, 0.12, 0.15], 3)
    path = tmp_path / "log.parquet"
    table = pa.table({"model": np.array(["a", "b", "c"])[arms], "clicked": rewards.astype(bool)})
    pq.write_table(table, path)
    args = parser.parse_args(["bandit", "replay", str(path), "--arm", "model", "--reward", "clicked",
                              "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    ref = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(3))
    assert out["n_kept"] == ref.n_kept and out["estimate"] == ref.estimate
    args = parser.parse_args(["bandit", "simulate", "--means", "0.1,0.12,0.15", "--steps", "200",
                              "--runs", "20"])
    assert args.func(args) == 0
    assert "share" in capsys.readouterr().out
    args = parser.parse_args(["bandit", "replay", str(path), "--arm", "nope"])
    assert args.func(args) == 2
    assert "unknown column 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# the protocol: policies are states, one fold engine, results with the common vocabulary


def test_policy_is_a_protocol_state(tmp_path):
    arms, rewards = uniform_log(3000, [0.2, 0.4, 0.6], 41)
    table = pa.table({"arm": arms, "reward": rewards})
    whole = fb.UCB1(3).update(table)
    a = fb.UCB1(3).update(table.slice(0, 1000))
    b = fb.UCB1(3).update(table.slice(1000), row_offset=1000)
    merged = a.merge(b)
    assert merged is not a and a.n == 1000 and b.n == 2000 and merged.n == 3000
    np.testing.assert_array_equal(merged.state.pulls, whole.state.pulls)
    assert fastevals.state_from_bytes(whole.to_bytes()) == whole
    assert fb.policy_from_bytes(whole.to_bytes()) == whole
    res = whole.finalize()
    assert isinstance(res, fb.ArmState) and res.to_arrow().num_rows == 3 and res.total_plays == 3000
    np.testing.assert_allclose(res.means, [rewards[arms == j].mean() for j in range(3)], rtol=1e-12)
    # nulls="drop" counts over several batches and row groups
    r = rewards.copy()
    r[[5, 999, 1000, 2500]] = np.nan
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"arm": arms, "reward": r}), path, row_group_size=300)
    pol = fb.UCB1(3, nulls="drop", batch_size=128).update(str(path))
    assert (pol.n_read, pol.n_dropped, pol.total_plays) == (3000, 4, 2996)
    keep = np.isfinite(r)
    np.testing.assert_array_equal(pol.state.pulls, np.bincount(arms[keep], minlength=3))


def test_policy_on_dask_equals_in_process(client, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    from fastevals._fold import fold

    arms, rewards = uniform_log(5000, [0.2, 0.4, 0.6], 42)
    labels = np.array(["a", "b", "c"])[arms]
    frame = pd.DataFrame({"model": labels, "clicked": rewards})
    ddf = dd.from_pandas(frame, npartitions=4)
    got = fold(fb.ThompsonSampling(3, arm_labels=["a", "b", "c"], arm="model", reward="clicked", seed=1), ddf)
    want = fb.ThompsonSampling(3, arm_labels=["a", "b", "c"], arm="model", reward="clicked", seed=1).update(frame)
    np.testing.assert_array_equal(got.state.pulls, want.state.pulls)
    np.testing.assert_allclose(got.state.reward_sums, want.state.reward_sums, rtol=1e-12)
    assert got.n == want.n == 5000 and list(got.select(size=4)) == list(want.select(size=4))
    # replay is sequential: a clear error on Dask, not a silent in-process run
    with pytest.raises(ValueError, match="replay is sequential"):
        fb.replay(ddf, fb.UCB1(3, arm_labels=["a", "b", "c"]), arm="model", reward="clicked")
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"arm": arms, "reward": rewards}), path)
    with pytest.raises(ValueError, match="replay is sequential"):
        fb.replay(str(path), fb.UCB1(3), engine="dask")


def test_replay_with_integer_labels_that_are_not_indices():
    arms, rewards = uniform_log(6000, [0.1, 0.3, 0.5], 43)
    codes = np.array([10, 20, 30])[arms]
    res = fb.replay({"arm": codes, "reward": rewards}, fb.UCB1(3, arm_labels=[10, 20, 30]))
    ref = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(3))
    assert res.n_kept == ref.n_kept and res.estimate == ref.estimate
    assert res.table.column("arm").to_pylist() == [10, 20, 30]
    np.testing.assert_array_equal(res.table.column("kept").to_numpy(), ref.kept_per_arm)
    np.testing.assert_array_equal(res.logged_per_arm, np.bincount(arms, minlength=3))
    by_name = fb.replay({"arm": codes, "reward": rewards}, "ucb1")
    assert by_name.policy.arm_labels == (10, 20, 30) and by_name.estimate == ref.estimate
    with pytest.raises(ValueError, match=r"has 40 at row 0; arms must be one of \[10, 20, 30\]"):
        fb.replay({"arm": np.array([40, 10]), "reward": np.array([0.0, 1.0])}, fb.UCB1(3, arm_labels=[10, 20, 30]))


def test_replay_text_over_many_arms_shows_the_top_ones_and_a_count(tmp_path, capsys):
    rng = np.random.default_rng(44)
    arms = rng.integers(0, 80, 40_000)
    rewards = (rng.random(40_000) < 0.2).astype(np.float64)
    res = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(80))
    text = str(res)
    assert "top 10 of 80 arms" in text and "... 70 more row(s) of 80" in text
    assert len(text.splitlines()) < 25
    assert res.to_arrow().num_rows == 80 and len(repr(res)) < 600
    d = res.to_dict()
    assert d["policy"] == "ucb1" and d["confidence"] == 0.95 and d["update_every"] == 1
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"arm": arms, "reward": rewards}), path)
    from fastevals._cli.bandit import main

    assert main(["bandit", "replay", str(path), "--update-every", "2"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == str(fb.replay(str(path), "ucb1", seed=0, update_every=2)).strip()


def test_simulate_final_interval_at_the_given_confidence():
    sim = fb.simulate("ucb1", [0.2, 0.3, 0.5], n_steps=200, n_runs=300, seed=4, confidence=0.8, band=0.5)
    z = stats.norm.ppf(0.9)
    se = sim.regret_standard_error[-1]
    assert sim.final_regret_ci.low == pytest.approx(sim.final_regret - z * se, rel=1e-12)
    assert sim.final_regret_ci.confidence == 0.8 and sim.regret_band.confidence == 0.5
    # the band is the pointwise quantiles over runs: about half the runs inside at band=0.5
    assert np.all(sim.regret_band.low <= sim.regret_band.high)
    t = sim.to_arrow()
    assert t.num_rows == 200 and {"step", "mean_regret", "standard_error", "band_low", "band_high"} <= set(
        t.column_names)
    assert "80% CI" in str(sim) and "50% of runs" in str(sim)
    with pytest.raises(ValueError, match="`confidence` must be"):
        fb.simulate("ucb1", [0.2, 0.3], n_steps=10, n_runs=2, confidence=0.0)


@pytest.mark.parametrize("which", ["replay", "replay_ips", "simulate", "arms"])
def test_results_speak_the_protocol(which, tmp_path):
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastevals import _protocol as proto

    arms, rewards = uniform_log(3000, [0.2, 0.4, 0.6], 45)
    if which == "replay":
        res = fb.replay({"arm": arms, "reward": rewards}, fb.UCB1(3))
    elif which == "replay_ips":
        res = fb.replay({"arm": arms, "reward": rewards * 0.5, "p": np.full(3000, 1 / 3)}, fb.UCB1(3),
                        propensity="p", confidence=0.9)
        assert res.ips_ci.confidence == 0.9 and res.snips_ci.confidence == 0.9
        assert res.confidence_interval.method == "normal"
    elif which == "simulate":
        res = fb.simulate("thompson", [0.2, 0.4], n_steps=50, n_runs=20, seed=1)
    else:
        res = fb.UCB1(3).update(arms, rewards).finalize()
    assert isinstance(res, proto.Result) and type(res).__repr__ is proto.Result.__repr__
    assert len(repr(res)) < 600
    json.dumps(res.to_dict())
    t = res.to_arrow()
    assert t.num_rows >= 2 and res.to_pandas().shape[0] == t.num_rows and res.to_polars().height == t.num_rows
    assert "<table>" in res._repr_html_() and 0 < len(str(res).splitlines()) < 40
    for col in ("ci_low", "ci_high", "std_error", "rows_dropped"):
        assert col not in t.column_names
    ax = res.plot(path=tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    plt.close(ax.figure)


def test_filter_on_a_column_not_read():
    import pyarrow.compute as pc

    arms, rewards = uniform_log(4000, [0.2, 0.4, 0.6], 46)
    g = np.random.default_rng(5).integers(0, 2, 4000)
    log = {"arm": arms, "reward": rewards, "g": g}
    res = fb.replay(log, fb.UCB1(3), filter=pc.field("g") == 1)
    ref = fb.replay({"arm": arms[g == 1], "reward": rewards[g == 1]}, fb.UCB1(3))
    assert res.n == int((g == 1).sum()) and res.n_kept == ref.n_kept and res.estimate == ref.estimate
    pol = fb.UCB1(3, filter=pc.field("g") == 0).update(log)
    np.testing.assert_array_equal(pol.state.pulls, np.bincount(arms[g == 0], minlength=3))
