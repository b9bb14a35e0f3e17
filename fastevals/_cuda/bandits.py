"""CUDA twin of :func:`fastevals._kernels.bandits.simulate_runs` for UCB1 with Bernoulli rewards.

One thread per simulated run (grid-stride over runs): the thread replays the
CPU's ``_ucb1_bernoulli_run`` step for step (every arm once, lowest index
first; then the exact UCB1 index with ties to the lowest arm), drawing the
reward of step ``s`` of run ``run`` as ``to_unit(chain(chain0(seed), run), s)
< mean`` from the same splitmix64 hash, so the plays, pulls and
pseudo-regret equal the CPU's (regret sums are the same additions in the same
order).  The policy state (at most :data:`MAX_ARMS` arms) lives in the
thread's local memory.

Other policies (UCB1-Tuned, Thompson, epsilon-greedy) and Beta rewards stay on
the CPU: :func:`simulate_runs` raises ``ValueError`` for them.

Caveat: the device's ``log`` (libdevice) may differ from the CPU's in the last
bit; a play could then differ only where two arms' UCB1 indices are within
an ulp of each other without being equal, which was not seen in the tests
(the simulator uses the host's ``math.log``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import float64, int64

from .._kernels.bandits import KIND_UCB1
from . import config
from ._jit import cuda, device, kernel, launching
from .rng import GOLDEN, mix64, to_unit

#: most arms a simulated policy may have on the device
MAX_ARMS = 64


@device
def _chain(z, x):
    """The CPU's ``chain``: Weyl increment by the integer x, then mix."""
    return mix64(z + np.uint64(x) * GOLDEN + GOLDEN)


@kernel
def _ucb1_kernel(seed_reward, means, n_steps, n_runs, counts0, sums0, checkpoints, regret_out, pulls_out):
    counts = cuda.local.array(MAX_ARMS, int64)
    sums = cuda.local.array(MAX_ARMS, float64)
    mean = cuda.local.array(MAX_ARMS, float64)
    n_arms = means.shape[0]
    n_cp = checkpoints.shape[0]
    best = means[0]
    for j in range(1, n_arms):
        if means[j] > best:
            best = means[j]
    base = mix64(seed_reward + GOLDEN)  # the CPU's start(seed)
    for run in range(cuda.grid(1), n_runs, cuda.gridsize(1)):
        t = 0
        for j in range(n_arms):
            counts[j] = counts0[j]
            sums[j] = sums0[j]
            mean[j] = 0.0
            t += counts[j]
            if counts[j] > 0:
                mean[j] = sums[j] / np.float64(counts[j])
        run_key = _chain(base, run)
        regret = 0.0
        cp = 0
        next_cp = checkpoints[0] if n_cp > 0 else -1
        step = 0
        for j in range(n_arms):
            if step >= n_steps:
                break
            if counts[j] == 0:
                r = 1.0 if to_unit(_chain(run_key, step)) < means[j] else 0.0
                counts[j] += 1
                sums[j] += r
                mean[j] = sums[j] / np.float64(counts[j])
                t += 1
                regret += best - means[j]
                step += 1
                while step == next_cp:
                    regret_out[run, cp] = regret
                    cp += 1
                    next_cp = checkpoints[cp] if cp < n_cp else -1
        while step < n_steps:
            two_log_t = 2.0 * math.log(t)
            a = 0
            best_score = mean[0] + math.sqrt(two_log_t / np.float64(counts[0]))
            for j in range(1, n_arms):
                score = mean[j] + math.sqrt(two_log_t / np.float64(counts[j]))
                if score > best_score:
                    best_score = score
                    a = j
            mu = means[a]
            r = 1.0 if to_unit(_chain(run_key, step)) < mu else 0.0
            counts[a] += 1
            sums[a] += r
            mean[a] = sums[a] / np.float64(counts[a])
            t += 1
            regret += best - mu
            step += 1
            if step == next_cp:
                regret_out[run, cp] = regret
                cp += 1
                next_cp = checkpoints[cp] if cp < n_cp else -1
        for j in range(n_arms):
            pulls_out[run, j] = counts[j] - counts0[j]


def simulate_runs(kind, p1, p2, seed_policy, seed_reward, means, dist, conc, n_steps, n_runs,
                  counts0, sums0, sq0, checkpoints):
    """``(regret[n_runs, n_checkpoints], pulls[n_runs, n_arms])`` of independent simulated runs.

    The arguments of the CPU's ``simulate_runs``; only ``kind == KIND_UCB1``
    with Bernoulli rewards (``dist == 0``) runs on the device (``p1``, ``p2``,
    ``seed_policy``, ``conc`` and ``sq0`` are then unused, as on the CPU's
    UCB1 path); anything else raises ``ValueError`` (the caller keeps it on the CPU).
    """
    if int(kind) != KIND_UCB1 or int(dist) != 0:
        raise ValueError("the CUDA bandit simulation supports UCB1 with Bernoulli rewards only; "
                         f"got kind={kind}, dist={dist}")
    means = np.ascontiguousarray(means, dtype=np.float64)
    n_arms = means.shape[0]
    if n_arms > MAX_ARMS or n_arms == 0:
        raise ValueError(f"the CUDA bandit simulation supports 1 to {MAX_ARMS} arms; got {n_arms}")
    n_runs = int(n_runs)
    checkpoints = np.ascontiguousarray(checkpoints, dtype=np.int64)
    regret = np.zeros((n_runs, checkpoints.shape[0]), dtype=np.float64)
    pulls = np.zeros((n_runs, n_arms), dtype=np.int64)
    if n_runs == 0:
        return regret, pulls
    tpb = config.threads_per_block()
    with launching():
        d_regret = cuda.to_device(regret)
        d_pulls = cuda.to_device(pulls)
        _ucb1_kernel[config.blocks_for(n_runs, tpb), tpb](
            np.uint64(seed_reward), cuda.to_device(means), np.int64(n_steps), np.int64(n_runs),
            cuda.to_device(np.ascontiguousarray(counts0, dtype=np.int64)),
            cuda.to_device(np.ascontiguousarray(sums0, dtype=np.float64)), cuda.to_device(checkpoints),
            d_regret, d_pulls)
        return d_regret.copy_to_host(), d_pulls.copy_to_host()
