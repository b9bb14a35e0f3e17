"""Kernels for multi-armed bandits: per-arm sufficient statistics, policy
choices, replay of a log (Li et al. 2011) and many independent simulated runs.

Policies are coded by an integer ``kind`` (see the ``KIND_*`` constants) with
two float parameters ``p1, p2``:

* UCB1 (Auer et al. 2002): unplayed arm = +inf, else
  ``sums[j] / n[j] + sqrt(2 * log(t) / n[j])``; ties -> lowest index.
* UCB1-Tuned (Auer et al. 2002, section 4): the bonus is
  ``sqrt(log(t) / n[j] * min(1/4, V_j))`` with
  ``V_j = sq[j] / n[j] - mean_j**2 + sqrt(2 * log(t) / n[j])``.
* Thompson sampling, Beta-Bernoulli: draw ``Beta(p1 + sums[j], p2 + n[j] - sums[j])``
  per arm, play the largest draw.
* epsilon-greedy (``p1`` = epsilon): with probability epsilon a uniform arm,
  otherwise the best mean (unplayed arms first, ties -> lowest index).

Random numbers are counter based: ``uniform(seed, a, b, c, d)`` hashes the
five integers with the splitmix64 finalizer, so a draw depends only on its
key (run, step, arm, attempt) and never on the thread count or on the order
in which threads run.

Contract (arrays and scalars only):
  arm codes: any integer array; the policy's arm of row i is
  ``lut[codes[i] - offset]`` (``-1`` or out of range = not an arm of the policy).
  rewards: float64 array, each in [0, 1].
  counts (int64), sums and sq (float64) of length n_arms: the policy state.
"""

import math

import numpy as np
from numba import prange

from .._config import parallel_kernel, serial_kernel
from .poisson import GOLDEN
from .poisson import mix as mix64  # splitmix64: one jitted source (fastevals._rng)

KIND_UCB1 = 0
KIND_UCB1_TUNED = 1
KIND_THOMPSON = 2
KIND_EPSILON_GREEDY = 3

LANES = 4

# ----------------------------------------------------------------------------------------------------
# counter-based random numbers


@serial_kernel
def chain(z, x):
    """Fold the integer ``x`` into the hash state ``z`` (Weyl increment, then mix)."""
    return mix64(z + np.uint64(x) * GOLDEN + GOLDEN)


@serial_kernel
def start(seed):
    """Initial hash state of a seed."""
    return mix64(np.uint64(seed) + GOLDEN)


@serial_kernel
def to_unit(z):
    """The top 53 bits of a uint64 as a double in [0, 1)."""
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@serial_kernel
def hash5(seed, a, b, c, d):
    """A uint64 hash of five integers: chain(chain(chain(chain(start(seed), a), b), c), d)."""
    return chain(chain(chain(chain(start(seed), a), b), c), d)


@serial_kernel
def uniform(seed, a, b, c, d):
    """A uniform double in [0, 1) keyed by (seed, a, b, c, d): the top 53 bits of the hash."""
    return to_unit(hash5(seed, a, b, c, d))


@serial_kernel
def _gamma(shape, seed, a, b, c):
    """Gamma(shape, 1) by Marsaglia & Tsang (2000); attempt k uses keys (c, 3k..3k+2)."""
    boost = 1.0
    if shape < 1.0:
        # Gamma(s) = Gamma(s + 1) * U ** (1 / s)
        u = uniform(seed, a, b, c, -1)
        boost = (1.0 - u) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    cc = 1.0 / math.sqrt(9.0 * d)
    k = 0
    while True:
        # standard normal by Box-Muller from two keyed uniforms
        u1 = 1.0 - uniform(seed, a, b, c, 3 * k)  # (0, 1]
        u2 = uniform(seed, a, b, c, 3 * k + 1)
        x = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        v = 1.0 + cc * x
        if v > 0.0:
            v = v * v * v
            u = 1.0 - uniform(seed, a, b, c, 3 * k + 2)
            if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
                return d * v * boost
        k += 1


@serial_kernel
def beta_draw(alpha, beta, seed, a, b, c):
    """Beta(alpha, beta) as X / (X + Y) of two keyed gamma draws."""
    x = _gamma(alpha, seed, a, b, 2 * c)
    y = _gamma(beta, seed, a, b, 2 * c + 1)
    return x / (x + y)


# ----------------------------------------------------------------------------------------------------
# sufficient statistics


@serial_kernel
def _fold_chunk(c, lo, hi, codes, offset, lut, rewards, cnt, s, sq, bad):
    # slices make every index provably >= 0 (numba then skips wraparound checks)
    codes = codes[lo:hi]
    rewards = rewards[lo:hi]
    n_arms = cnt.shape[2]
    width = lut.shape[0]
    # private lane accumulators (row i -> lane i & 3): consecutive rows of the
    # same arm then do not wait on each other's store
    lc = np.zeros((LANES, n_arms), dtype=np.int64)
    ls = np.zeros((LANES, n_arms), dtype=np.float64)
    lq = np.zeros((LANES, n_arms), dtype=np.float64)
    for i in range(hi - lo):
        local = np.intp(codes[i]) - offset
        r = np.float64(rewards[i])
        if not ((local >= 0) & (local < width)):
            bad[c, 0] = lo + i
            break
        j = lut[local]
        if not ((j >= 0) & (j < n_arms)):
            bad[c, 0] = lo + i
            break
        if not ((r >= 0.0) & (r <= 1.0)):
            bad[c, 1] = lo + i
            break
        u = i & 3
        lc[u, j] += 1
        ls[u, j] += r
        lq[u, j] += r * r
    cnt[c] = lc
    s[c] = ls
    sq[c] = lq


@serial_kernel
def _merge_chunks(cnt, s, sq, bad):
    n_chunks, lanes, n_arms = cnt.shape
    counts = np.zeros(n_arms, dtype=np.int64)
    sums = np.zeros(n_arms, dtype=np.float64)
    sqs = np.zeros(n_arms, dtype=np.float64)
    first_bad = np.full(2, -1, dtype=np.int64)
    for c in range(n_chunks):  # chunk order: the same on any thread count
        for j in range(n_arms):
            for u in range(lanes):
                counts[j] += cnt[c, u, j]
                sums[j] += s[c, u, j]
                sqs[j] += sq[c, u, j]
        for k in range(2):
            if first_bad[k] < 0 and bad[c, k] >= 0:
                first_bad[k] = bad[c, k]
    return counts, sums, sqs, first_bad


@serial_kernel
def arm_stats_serial(codes, offset, lut, rewards, n_arms, chunk):
    """Per-arm (pulls, reward sums, squared reward sums) and the first bad rows (arm, reward)."""
    rows = codes.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, LANES, n_arms), dtype=np.int64)
    s = np.zeros((n_chunks, LANES, n_arms), dtype=np.float64)
    sq = np.zeros((n_chunks, LANES, n_arms), dtype=np.float64)
    bad = np.full((n_chunks, 2), -1, dtype=np.int64)
    for c in range(n_chunks):
        lo = c * chunk
        _fold_chunk(c, lo, min(rows, lo + chunk), codes, offset, lut, rewards, cnt, s, sq, bad)
    return _merge_chunks(cnt, s, sq, bad)


@parallel_kernel
def arm_stats_parallel(codes, offset, lut, rewards, n_arms, chunk):
    """Parallel twin of :func:`arm_stats_serial` (same chunks, same answer)."""
    rows = codes.shape[0]
    n_chunks = max(1, (rows + chunk - 1) // chunk)
    cnt = np.zeros((n_chunks, LANES, n_arms), dtype=np.int64)
    s = np.zeros((n_chunks, LANES, n_arms), dtype=np.float64)
    sq = np.zeros((n_chunks, LANES, n_arms), dtype=np.float64)
    bad = np.full((n_chunks, 2), -1, dtype=np.int64)
    for c in prange(n_chunks):
        lo = c * chunk
        _fold_chunk(c, lo, min(rows, lo + chunk), codes, offset, lut, rewards, cnt, s, sq, bad)
    return _merge_chunks(cnt, s, sq, bad)


# ----------------------------------------------------------------------------------------------------
# policy choices


@serial_kernel
def _ucb1_choice(counts, sums, t):
    """Exact UCB1: first unplayed arm, else argmax of mean + sqrt(2 ln t / n) (ties -> lowest)."""
    n_arms = counts.shape[0]
    for j in range(n_arms):
        if counts[j] == 0:
            return j
    two_log_t = 2.0 * math.log(t)
    best = 0
    best_score = -np.inf
    for j in range(n_arms):
        nj = np.float64(counts[j])
        score = sums[j] / nj + math.sqrt(two_log_t / nj)
        if score > best_score:
            best_score = score
            best = j
    return best


@serial_kernel
def policy_scores(kind, counts, sums, sq, t, p1, p2, seed, key_a, key_b, out):
    """Fill ``out`` with the policy's scores (inf for an arm explored first)."""
    n_arms = counts.shape[0]
    log_t = math.log(t) if t > 0 else 0.0
    for j in range(n_arms):
        nj = np.float64(counts[j])
        if kind == KIND_THOMPSON:
            out[j] = beta_draw(p1 + sums[j], p2 + nj - sums[j], seed, key_a, key_b, j)
        elif counts[j] == 0:
            out[j] = np.inf
        elif kind == KIND_UCB1:
            out[j] = sums[j] / nj + math.sqrt(2.0 * log_t / nj)
        elif kind == KIND_UCB1_TUNED:
            mean = sums[j] / nj
            v = sq[j] / nj - mean * mean + math.sqrt(2.0 * log_t / nj)
            out[j] = mean + math.sqrt(log_t / nj * min(0.25, v))
        else:
            out[j] = sums[j] / nj


@serial_kernel
def _argmax_lowest(x):
    best = 0
    for j in range(1, x.shape[0]):
        if x[j] > x[best]:
            best = j
    return best


@serial_kernel
def policy_choice(kind, counts, sums, sq, t, p1, p2, seed, key_a, key_b, buf):
    """The arm the policy plays now; random draws keyed by (seed, key_a, key_b)."""
    if kind == KIND_UCB1:
        return _ucb1_choice(counts, sums, t)
    if kind == KIND_EPSILON_GREEDY:
        if uniform(seed, key_a, key_b, -1, 0) < p1:
            n_arms = counts.shape[0]
            return min(n_arms - 1, np.intp(uniform(seed, key_a, key_b, -1, 1) * n_arms))
    policy_scores(kind, counts, sums, sq, t, p1, p2, seed, key_a, key_b, buf)
    return _argmax_lowest(buf)


# ----------------------------------------------------------------------------------------------------
# replay (Li, Chu, Langford & Wang 2011)


@serial_kernel
def replay_batch(kind, p1, p2, seed, codes, offset, lut, rewards, counts, sums, sq, pend, carry,
                 batch_size, kept_rows, kept_arms, logged_counts):
    """Stream one batch of a log through a policy.

    ``counts/sums/sq`` hold the policy state and ``pend`` (3 x n_arms: pulls,
    sums, squares) the kept events not applied yet; both persist between
    batches, as does ``carry`` = [events seen, kept events, events pending,
    cached choice (-1 = none)]. An event is kept when the policy's choice
    equals the logged arm; every ``batch_size`` kept events the pending
    statistics are applied to the state. Kept row indices (within this batch)
    and their arms go to ``kept_rows``/``kept_arms``; ``logged_counts``
    counts the logged arms of all events. Returns
    ``(n_kept_here, first_bad_arm_row, first_bad_reward_row)``.
    """
    n = codes.shape[0]
    n_arms = counts.shape[0]
    width = lut.shape[0]
    buf = np.empty(n_arms, dtype=np.float64)
    seen = carry[0]
    pending = carry[2]
    choice = carry[3]
    # deterministic policies choose the same arm until the state changes
    cache_choice = kind == KIND_UCB1 or kind == KIND_UCB1_TUNED
    n_kept = 0
    for i in range(n):
        local = np.intp(codes[i]) - offset
        if local < 0 or local >= width:
            carry[0] = seen
            return n_kept, i, -1
        logged = lut[local]
        if logged < 0 or logged >= n_arms:
            carry[0] = seen
            return n_kept, i, -1
        r = np.float64(rewards[i])
        if not (r >= 0.0 and r <= 1.0):
            carry[0] = seen
            return n_kept, -1, i
        if choice < 0 or not cache_choice:
            t = 0
            for j in range(n_arms):
                t += counts[j]
            choice = policy_choice(kind, counts, sums, sq, t, p1, p2, seed, seen, 0, buf)
        seen += 1
        logged_counts[logged] += 1
        if choice != logged:
            continue
        kept_rows[n_kept] = i
        kept_arms[n_kept] = logged
        n_kept += 1
        pend[0, logged] += 1.0
        pend[1, logged] += r
        pend[2, logged] += r * r
        pending += 1
        if pending >= batch_size:
            for j in range(n_arms):
                counts[j] += np.int64(pend[0, j])
                sums[j] += pend[1, j]
                sq[j] += pend[2, j]
                pend[0, j] = 0.0
                pend[1, j] = 0.0
                pend[2, j] = 0.0
            pending = 0
            choice = -1
    carry[0] = seen
    carry[1] += n_kept
    carry[2] = pending
    carry[3] = choice if cache_choice else -1
    return n_kept, -1, -1


# ----------------------------------------------------------------------------------------------------
# simulation


@serial_kernel
def _ucb1_bernoulli_run(run, seed_reward, means, n_steps, counts, sums, sq, checkpoints, regret_out):
    """The hot case of :func:`_simulate_run` (UCB1, Bernoulli rewards) without per-step branches
    on policy or distribution; the same plays and regret as the general loop."""
    n_arms = means.shape[0]
    mean = np.zeros(n_arms, dtype=np.float64)
    buf = np.empty(n_arms, dtype=np.float64)
    t = np.int64(0)
    for j in range(n_arms):
        t += counts[j]
        if counts[j] > 0:
            mean[j] = sums[j] / np.float64(counts[j])
    best = means.max()
    run_key = chain(start(seed_reward), run)
    regret = 0.0
    cp = 0
    next_cp = checkpoints[0] if checkpoints.shape[0] > 0 else -1
    step = 0
    # every arm once first, lowest index first
    for j in range(n_arms):
        if step >= n_steps:
            break
        if counts[j] == 0:
            r = 1.0 if to_unit(chain(run_key, step)) < means[j] else 0.0
            counts[j] += 1
            sums[j] += r
            sq[j] += r
            mean[j] = sums[j] / np.float64(counts[j])
            t += 1
            regret += best - means[j]
            step += 1
            while step == next_cp:
                regret_out[run, cp] = regret
                cp += 1
                next_cp = checkpoints[cp] if cp < checkpoints.shape[0] else -1
    while step < n_steps:
        # exact UCB1 index (means cached: the same value sums / counts gives), a branch-free
        # loop that vectorizes, then the first argmax
        two_log_t = 2.0 * math.log(t)
        for j in range(n_arms):
            buf[j] = mean[j] + math.sqrt(two_log_t / np.float64(counts[j]))
        a = 0
        for j in range(1, n_arms):
            if buf[j] > buf[a]:
                a = j
        mu = means[a]
        r = 1.0 if to_unit(chain(run_key, step)) < mu else 0.0
        counts[a] += 1
        sums[a] += r
        sq[a] += r
        mean[a] = sums[a] / np.float64(counts[a])
        t += 1
        regret += best - mu
        step += 1
        if step == next_cp:
            regret_out[run, cp] = regret
            cp += 1
            next_cp = checkpoints[cp] if cp < checkpoints.shape[0] else -1


@serial_kernel
def _simulate_run(run, kind, p1, p2, seed_policy, seed_reward, means, dist, conc, n_steps,
                  counts0, sums0, sq0, checkpoints, regret_out, pulls_out):
    n_arms = means.shape[0]
    counts = counts0.copy()
    sums = sums0.copy()
    sq = sq0.copy()
    if kind == KIND_UCB1 and dist == 0:
        _ucb1_bernoulli_run(run, seed_reward, means, n_steps, counts, sums, sq, checkpoints, regret_out)
    else:
        buf = np.empty(n_arms, dtype=np.float64)
        best = means.max()
        t = np.int64(0)
        for j in range(n_arms):
            t += counts[j]
        # Bernoulli reward of step s: to_unit(chain(run_key, s)) < mu (one mix per step)
        run_key = chain(start(seed_reward), run)
        regret = 0.0
        cp = 0
        for step in range(n_steps):
            if kind == KIND_UCB1:
                a = _ucb1_choice(counts, sums, t)
            else:
                a = policy_choice(kind, counts, sums, sq, t, p1, p2, seed_policy, run, step, buf)
            mu = means[a]
            if dist == 0:
                r = 1.0 if to_unit(chain(run_key, step)) < mu else 0.0
            else:
                r = beta_draw(mu * conc, (1.0 - mu) * conc, seed_reward, run, step, 1)
            counts[a] += 1
            sums[a] += r
            sq[a] += r * r
            t += 1
            regret += best - mu
            while cp < checkpoints.shape[0] and checkpoints[cp] == step + 1:
                regret_out[run, cp] = regret
                cp += 1
    for j in range(n_arms):
        pulls_out[run, j] = counts[j] - counts0[j]


@parallel_kernel
def simulate_runs(kind, p1, p2, seed_policy, seed_reward, means, dist, conc, n_steps, n_runs,
                  counts0, sums0, sq0, checkpoints):
    """Independent runs in parallel: each writes its own row (pseudo-regret at
    the checkpoints, pulls per arm), so the result does not depend on threads."""
    n_arms = means.shape[0]
    regret_out = np.zeros((n_runs, checkpoints.shape[0]), dtype=np.float64)
    pulls_out = np.zeros((n_runs, n_arms), dtype=np.int64)
    for run in prange(n_runs):
        _simulate_run(run, kind, p1, p2, seed_policy, seed_reward, means, dist, conc, n_steps,
                      counts0, sums0, sq0, checkpoints, regret_out, pulls_out)
    return regret_out, pulls_out
