"""The counter-based Poisson weight generator: exactness, distribution, independence, invariance."""

import numba
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from fastevals._kernels import poisson as kp
from fastevals.resampling import _cluster_keys, poisson_weights

EMPTY = np.empty(0, np.uint64)


def test_thresholds_recomputed_from_scipy():
    k = np.arange(len(kp.THRESHOLDS))
    expect = np.round(stats.poisson.cdf(k, 1.0) * 2.0**32).astype(np.int64)
    assert tuple(int(t) for t in expect) == kp.THRESHOLDS
    # every probability the generator realizes is within 1e-9 of Poisson(1)
    t = np.array((0,) + kp.THRESHOLDS + (2**32,), dtype=np.float64)
    realized = np.diff(t) / 2.0**32
    exact = np.append(stats.poisson.pmf(np.arange(kp.MAX_WEIGHT), 1.0), stats.poisson.sf(kp.MAX_WEIGHT - 1, 1.0))
    assert np.max(np.abs(realized - exact)) < 1e-9


def test_poisson1_is_inverse_cdf_of_32_bits():
    # every threshold boundary maps to the right count
    for k, t in enumerate(kp.THRESHOLDS):
        assert kp.poisson1_u32(np.uint32(t - 1)) == k
        assert kp.poisson1_u32(np.uint32(t)) == k + 1
    assert kp.poisson1_u32(np.uint32(0)) == 0
    assert kp.poisson1_u32(np.uint32(2**32 - 1)) == kp.MAX_WEIGHT


def test_six_compare_head_equals_full_count_below_t6():
    # the kernels' fast path: signed compares of u ^ 0x80000000 against T[0..5] - 2**31
    flip = kp.sign_flip(np.empty(3))
    assert flip == 2**31
    for t in kp.THRESHOLDS[:7] + (0, 1, 2**31 - 1, 2**31):
        for u in (t - 1, t, t + 1):
            if 0 <= u < kp.THRESHOLDS[6]:
                s = np.int32(np.int64(u ^ flip) - (2**32 if u ^ flip >= 2**31 else 0))
                assert kp.poisson1_head(s) == kp.poisson1_u32(np.uint32(u))


# -- the scheme, bit for bit: a NumPy twin of the module docstring (also the CUDA port's reference) --

_MASK64 = (1 << 64) - 1


def _mix64(z):
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _stream_key(seed, b):
    return _mix64((_mix64(seed) + (b + 1) * 0x9E3779B97F4A7C15) & _MASK64)


def _round32(x):
    x = np.asarray(x, dtype=np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x21F0AAAD)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x735A2D97)
    return x ^ (x >> np.uint32(15))


def _premix(x):
    """The kernels keep rows' hashes and replicate words premixed: x ^ (x >> 16), R's first step."""
    x = np.asarray(x, dtype=np.uint32)
    return x ^ (x >> np.uint32(16))


def _U(key, counters):
    """U(K, c) = R(R(lo32(c) ^ lo32(K)) ^ R(hi32(c) ^ hi32(K))) for uint64 counters."""
    k0, k1 = np.uint32(key & 0xFFFFFFFF), np.uint32(key >> 32)
    c = np.asarray(counters, dtype=np.uint64)
    lo = (c & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    hi = (c >> np.uint64(32)).astype(np.uint32)
    return _round32(_round32(lo ^ k0) ^ _round32(hi ^ k1))


def _twin_uniform(seed, b, counters):
    """u = R(h(c) ^ k(b)) with h(c) = U(rk, c), k(b) = U(qk, b), rk = mix64(mix64(seed)), qk = mix64(rk)."""
    rk = _mix64(_mix64(seed))
    qk = _mix64(rk)
    kb = _U(qk, np.array([b], dtype=np.uint64))[0]
    return _round32(_U(rk, counters) ^ kb)


def _scheme_keys(seed):
    """The kernel's (rk, qk) as NumPy uint64 (numba returns them as Python ints)."""
    return tuple(np.uint64(k) for k in kp.scheme_keys(np.uint64(seed)))


def _twin_weights(seed, b, counters):
    """Poisson1 of :func:`_twin_uniform`: the number of thresholds reached (row indices or cluster keys)."""
    u = _twin_uniform(seed, b, counters)
    return (u[:, None] >= np.array(kp.THRESHOLDS, dtype=np.uint32)).sum(axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1])
def test_stream_key_matches_twin(seed):
    for b in (0, 1, 2, 999, 2**40):
        assert int(kp.stream_key(np.uint64(seed), b)) == _stream_key(seed, b)
    rk, qk = _scheme_keys(seed)
    assert int(rk) == _mix64(_mix64(seed)) and int(qk) == _mix64(_mix64(_mix64(seed)))
    for b in (0, 1, 2**32 - 1):
        assert int(kp.replicate_word(qk, b)) == int(_U(int(qk), np.array([b], np.uint64))[0])


def test_row_weights_match_numpy_twin_bit_for_bit():
    # 200,000 rows x 12 replicates: ~200 draws reach T[6] (weight >= 7), the kernels' rare full count
    w = poisson_weights(200_000, 12, seed=3)
    rows = np.arange(200_000, dtype=np.uint64)
    twin = np.stack([_twin_weights(3, b, rows) for b in range(12)])
    np.testing.assert_array_equal(w, twin)
    assert w.max() >= 7


def test_replicates_have_distinct_words():
    # k(b) = U(qk, b) is a bijection of b below 2**32: no two replicates can repeat each other
    # (32-bit words drawn at random would collide among 10,000 replicates with probability 1.2%)
    _, qk = _scheme_keys(17)
    words = _U(int(qk), np.arange(200_000, dtype=np.uint64))
    assert np.unique(words).size == words.size
    assert int(kp.replicate_word(qk, 12345)) == int(words[12345])


def test_row_weights_across_the_2_32_boundary():
    # the high word of the row index keys its own replicate constant; 2**32 rows apart differ
    start = 2**32 - 1000
    w = poisson_weights(2000, 6, seed=12, start=start)
    rows = np.arange(start, start + 2000, dtype=np.uint64)
    np.testing.assert_array_equal(w, np.stack([_twin_weights(12, b, rows) for b in range(6)]))
    assert (w[:, 1000:] != poisson_weights(1000, 6, seed=12)).mean() > 0.4
    far = np.arange(3, dtype=np.uint64) + np.uint64(5 * 2**32 + 17)
    np.testing.assert_array_equal(poisson_weights(3, 2, seed=12, start=5 * 2**32 + 17),
                                  np.stack([_twin_weights(12, b, far) for b in range(2)]))


def test_premix_splits_the_round():
    # R(x ^ y) = round32_tail(premix(x) ^ premix(y)): the weight loops premix once per row and
    # per replicate and pay the rest of the round per weight
    rng = np.random.default_rng(3)
    xs = rng.integers(0, 2**32, 500, dtype=np.uint64).astype(np.uint32)
    ys = rng.integers(0, 2**32, 500, dtype=np.uint64).astype(np.uint32)
    twin = _round32(xs ^ ys)
    pre = _premix(xs)
    for x, y, t, p in zip(xs, ys, twin, pre):
        r = int(kp.round32(np.uint32(x ^ y)))
        assert r == int(t)
        assert r == int(kp.round32_tail(np.uint32(kp.premix(x) ^ kp.premix(y))))
        assert int(kp.premix(x)) == int(p)


def test_key_hashes_and_weights_match_twin_and_rows():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 2**63, 5000, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    rk, qk = _scheme_keys(21)
    h = np.empty(5000, np.uint32)
    kp.key_hashes_into(rk, keys, 0, 5000, h)
    np.testing.assert_array_equal(h, _premix(_U(int(rk), keys)))
    out = np.empty(5000, np.int32)
    for b in (0, 7):
        tot = kp.hashed_weights_into(kp.weight_key(qk, b), h, out)
        np.testing.assert_array_equal(out, _twin_weights(21, b, keys))
        assert tot == out.sum()
    h2 = np.empty(200, np.uint32)
    kp.key_hashes_into(rk, keys, 100, 300, h2)
    np.testing.assert_array_equal(h2, h[100:300])
    # a row index is a counter like a key: key (int64 or uint64, any order) and row paths agree
    perm = rng.permutation(3000)
    by_row = np.empty(3000, np.uint32)
    kp.row_hashes_into(rk, 0, 3000, by_row)
    by_key = np.empty(3000, np.uint32)
    kp.key_hashes_into(rk, perm.astype(np.int64), 0, 3000, by_key)
    np.testing.assert_array_equal(by_key, by_row[perm])
    # float64 output (the sorted passes) equals int32 output
    wf = np.empty(3000, np.float64)
    wi = np.empty(3000, np.int32)
    kb = kp.weight_key(qk, 2)
    assert kp.hashed_weights_into(kb, by_row, wf) == kp.hashed_weights_into(kb, by_row, wi)
    np.testing.assert_array_equal(wf, wi)


def test_seed_and_replicate_do_not_alias():
    # scheme v1 combined mix(seed) ^ mix(b + 1) symmetrically: seed 2 replicate 0 was seed 1 replicate 1
    a = poisson_weights(4000, 2, seed=1)
    b = poisson_weights(4000, 2, seed=2)
    assert (a[1] != b[0]).mean() > 0.4
    assert _independence_pvalue(a[1].astype(np.int64), b[0].astype(np.int64)) > 1e-3


def _pooled_counts(w, top=6):
    counts = np.bincount(np.minimum(w.ravel(), top), minlength=top + 1)
    probs = np.append(stats.poisson.pmf(np.arange(top), 1.0), stats.poisson.sf(top - 1, 1.0))
    return counts, probs


@pytest.mark.parametrize("seed", [0, 1, 2**63 + 12345])
def test_weight_frequencies_chi_square(seed):
    w = poisson_weights(5000, 200, seed=seed)
    counts, probs = _pooled_counts(w)
    res = stats.chisquare(counts, probs * w.size)
    assert res.pvalue > 1e-3, res
    assert abs(w.mean() - 1.0) < 5 * np.sqrt(1.0 / w.size)


def test_sum_of_weights_is_poisson_n_ks():
    # per-replicate totals over 50 rows ~ Poisson(50); KS on a continuity-randomized version is exact
    w = poisson_weights(50, 4000, seed=7).sum(axis=1).astype(np.float64)
    jitter = np.random.default_rng(0).random(w.shape)
    u = stats.poisson.cdf(w - 1, 50) + jitter * stats.poisson.pmf(w, 50)
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def _independence_pvalue(a, b, top=3):
    table = np.zeros((top + 1, top + 1))
    np.add.at(table, (np.minimum(a, top), np.minimum(b, top)), 1)
    return stats.chi2_contingency(table).pvalue


def test_independence_across_replicates_and_rows():
    w = poisson_weights(20000, 40, seed=11).astype(np.int64)
    # same row, different replicates
    assert _independence_pvalue(w[0], w[1]) > 1e-3
    assert _independence_pvalue(w[3].ravel(), w[39].ravel()) > 1e-3
    # neighbouring rows (counters one apart, and two apart)
    assert _independence_pvalue(w[:, 0::2].ravel(), w[:, 1::2].ravel()) > 1e-3
    assert _independence_pvalue(w[:, 1:-1:2].ravel(), w[:, 2::2].ravel()) > 1e-3
    assert _independence_pvalue(w[:, :-2].ravel(), w[:, 2:].ravel()) > 1e-3
    # correlations near zero everywhere
    c = np.corrcoef(w)
    off = c[~np.eye(c.shape[0], dtype=bool)]
    assert np.max(np.abs(off)) < 5 / np.sqrt(w.shape[1])


def test_weights_do_not_depend_on_start_or_slicing():
    full = poisson_weights(1001, 30, seed=5)
    for start in (0, 1, 2, 7, 500):
        for n in (0, 1, 2, 3, 64, 1001 - start):
            part = poisson_weights(n, 30, seed=5, start=start)
            np.testing.assert_array_equal(part, full[:, start:start + n])
    # any replicate range
    np.testing.assert_array_equal(poisson_weights(1001, 10, seed=5, first_replicate=20), full[20:30])


def test_row_hashes_for_odd_offsets_match_matrix():
    full = poisson_weights(300, 3, seed=9)
    rk, qk = _scheme_keys(9)
    h = np.empty(300, np.uint32)
    out = np.empty(300, np.int32)
    for b in range(3):
        for g0 in (0, 1, 5, 100):
            for n in (1, 2, 9, 150):
                kp.row_hashes_into(rk, g0, n, h)
                kp.hashed_weights_into(kp.weight_key(qk, b), h[:n], out)
                np.testing.assert_array_equal(out[:n], full[b, g0:g0 + n])


def test_replicate_range_is_checked():
    with pytest.raises(ValueError, match="first_replicate"):
        poisson_weights(10, 5, seed=1, first_replicate=2**32 - 4)
    with pytest.raises(ValueError, match="n_resamples"):
        poisson_weights(10, 2**32 + 1, seed=1)


def test_weights_same_on_one_or_many_threads():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = poisson_weights(3001, 17, seed=3)
        numba.set_num_threads(before)
        many = poisson_weights(3001, 17, seed=3)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)


def test_seeds_give_different_streams():
    a = poisson_weights(2000, 5, seed=1)
    b = poisson_weights(2000, 5, seed=2)
    assert (a != b).mean() > 0.4
    # neighbouring seeds are independent streams (same rows, same replicate)
    a = poisson_weights(20000, 3, seed=100).astype(np.int64)
    for other in (101, 2**32 + 100):
        b = poisson_weights(20000, 3, seed=other).astype(np.int64)
        assert _independence_pvalue(a.ravel(), b.ravel()) > 1e-3


def test_uniform_bits_pass_joint_frequency_tests():
    # the 32 bits behind the weights: top and bottom 4 bits of neighbouring rows, of one row in
    # neighbouring replicates, and of neighbouring integer cluster ids, 256-cell chi-square each
    rows = np.arange(400_000, dtype=np.uint64)
    u = _twin_uniform

    def joint(a, b, shift):
        nib = np.uint32(15)
        cells = ((a >> np.uint32(shift)) & nib).astype(np.int64) * 16 + ((b >> np.uint32(shift)) & nib)
        return stats.chisquare(np.bincount(cells, minlength=256)).pvalue

    u0, u1 = u(5, 0, rows), u(5, 1, rows)
    uk = u(5, 0, kp.hash_keys_int(np.arange(400_000, dtype=np.int64)))
    for shift in (28, 0):
        assert joint(u0[:-1], u0[1:], shift) > 1e-4
        assert joint(u0, u1, shift) > 1e-4
        assert joint(uk[:-1], uk[1:], shift) > 1e-4
    # and the twin is the kernel: its weights are the engine's
    np.testing.assert_array_equal(poisson_weights(1000, 1, seed=5)[0],
                                  (u0[:1000, None] >= np.array(kp.THRESHOLDS, dtype=np.uint32)).sum(axis=1))


def test_cluster_keys_equal_values_equal_weights():
    ids = np.array([5, 9, 5, 2, 9, 9, 1000003], dtype=np.int64)
    w = poisson_weights(keys=ids, n_resamples=50, seed=4)
    for v in np.unique(ids):
        cols = w[:, ids == v]
        assert (cols == cols[:, :1]).all()
    # strings: plain, dictionary-encoded and sliced arrays give the same keys
    s = pa.array(["u1", "u2", "u1", "", "u3", "u2"])
    k1 = _cluster_keys(s)
    k2 = _cluster_keys(s.dictionary_encode())
    k3 = _cluster_keys(s.slice(2))
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(k1[2:], k3)
    assert k1[0] == k1[2] and k1[0] != k1[1]
    # integer keys: a bijection, so distinct ids never collide
    many = np.arange(-50000, 50000, dtype=np.int64)
    assert np.unique(kp.hash_keys_int(many)).size == many.size


def test_cluster_key_weights_distribution():
    w = poisson_weights(keys=np.arange(20000), n_resamples=20, seed=8)
    counts, probs = _pooled_counts(w)
    assert stats.chisquare(counts, probs * w.size).pvalue > 1e-3
    # neighbouring ids and neighbouring replicates are independent
    wi = w.astype(np.int64)
    assert _independence_pvalue(wi[:, :-1].ravel(), wi[:, 1:].ravel()) > 1e-3
    assert _independence_pvalue(wi[:-1].ravel(), wi[1:].ravel()) > 1e-3
    # the weights of a key are the twin's, and the same for string ids through their keys
    keys = kp.hash_keys_int(np.arange(20000, dtype=np.int64))
    np.testing.assert_array_equal(w[3], _twin_weights(8, 3, keys))


@pytest.mark.parametrize("lam", [0.3, 1.0, 4.5, 9.99, 10.0, 37.5, 2500.0, 1e6])
def test_poisson_lambda_sampler_chi_square(lam):
    draws = kp.poisson_cell_counts(np.uint64(21), 0, 20000, np.arange(1, dtype=np.uint64),
                                   np.array([lam]))[:, 0]
    # bins with expected counts >= 20 (tails pooled)
    lo = int(stats.poisson.ppf(1e-3, lam))
    hi = int(stats.poisson.isf(1e-3, lam))
    edges = np.unique(np.linspace(lo, hi + 1, min(hi - lo + 2, 30)).astype(np.int64))
    idx = np.clip(np.searchsorted(edges, draws, side="right") - 1, 0, len(edges) - 2)
    obs = np.bincount(idx, minlength=len(edges) - 1)
    cdf = stats.poisson.cdf(edges - 1, lam)
    p = np.diff(cdf)
    p[0] += cdf[0]
    p[-1] += 1.0 - cdf[-1]
    assert stats.chisquare(obs, p * draws.size).pvalue > 1e-3
    assert abs(draws.mean() - lam) < 5 * np.sqrt(lam / draws.size)


def test_poisson_lambda_sampler_counter_based():
    keys = np.arange(6, dtype=np.uint64)
    lam = np.array([0.0, 2.0, 20.0, 200.0, 5.0, 1e5])
    a = kp.poisson_cell_counts(np.uint64(3), 0, 40, keys, lam)
    b = kp.poisson_cell_counts(np.uint64(3), 10, 30, keys, lam)
    np.testing.assert_array_equal(a[10:], b)
    assert (a[:, 0] == 0).all()
    # cells are independent streams
    c = kp.poisson_cell_counts(np.uint64(3), 0, 5000, np.arange(2, dtype=np.uint64), np.array([30.0, 30.0]))
    assert abs(np.corrcoef(c.T)[0, 1]) < 0.06


def test_poisson_cell_counts_serial_twin():
    keys = np.arange(5, dtype=np.uint64)
    lam = np.array([0.5, 3.0, 12.0, 400.0, 7e4])
    np.testing.assert_array_equal(kp.poisson_cell_counts(np.uint64(8), 3, 50, keys, lam),
                                  kp.poisson_cell_counts_serial(np.uint64(8), 3, 50, keys, lam))
