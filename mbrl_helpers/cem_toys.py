"""The planner checks' refit toy: is each CEM iteration sampled from the refit on the last one's elites?

Used by the notebooks' visible checks and by the grader, so both give the same verdict and hint.

The toy is the checks' one ("state" = [position, step counter], position += action): from the
actions the planner asked the model about, this module recomputes every sequence's positions and
return, picks the elites itself, and predicts the mean and std the next iteration must sample from
(a Normal clamped to the action limits). The planner's samples then either fit that prediction, or
fit one of the known mistakes better (returns of s_0..s_{T-1}, returns carried over from earlier
iterations, the std over all samples, the std never refitted), whose hint is returned.

With 300 samples, the sample mean and std of each step sit within a few standard errors of the
prediction; `benchmarks.check_rates` measures how far each mistake is (z far above the limit).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

# The refit toy's settings: a target within the action limits (little clamping), a low std floor so
# that the elites' own spread, not the floor, decides the next std, and 4 iterations (3 refits seen).
REFIT_TARGET = 1.0
REFIT_SETTINGS = {
    "horizon": 5,
    "n_samples": 300,
    "n_elite": 30,
    "n_iters": 4,
    "std_floor": 0.02,
}
# The first-action toy's settings (target 2 from 0: the best plan is +2, then 0, 0, 0, 0): ten times the
# samples of the other toys, so that the first action returned is sharp. Over 100 seeds (benchmarks.check_rates,
# /tmp runs noted in the catalogue): the reference +1.91 to +1.99 (std 0.015), the last action -0.07 to +0.07,
# the refit over the horizon axis (mean and std over dim=1) +0.29 to +0.56, returns not reset +1.29 to +1.57: a
# tolerance of 1.0 around +2 fails the first two far from it and passes the last, which the refit toy names.
FIRST_ACTION_SETTINGS = {
    "horizon": 5,
    "n_samples": 3000,
    "n_elite": 300,
    "n_iters": 5,
    "std_floor": 0.5,
}
FIRST_ACTION_TOLERANCE = 1.0
# A correct planner's largest |z| over 3 refits x 5 steps x (mean, std) stays below this (30 tests:
# a false failure about once in 10^7 runs, Gaussian tails); benchmarks.check_rates measures it.
Z_LIMIT = 6.0
ACTION_LIMIT = 3.0
MISTAKES = (
    "returns of s0..s(T-1)",
    "returns not reset",
    "std over all samples",
    "std never refitted",
)


def _clamped_normal_moments(mean: np.ndarray, std: np.ndarray, limit: float = ACTION_LIMIT) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of Normal(mean, std) clamped to [-limit, limit], elementwise."""
    phi = lambda x: np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    cdf = np.vectorize(lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2))))
    a, b = (-limit - mean) / std, (limit - mean) / std
    pa, pb, fa, fb = cdf(a), cdf(b), phi(a), phi(b)
    inside = pb - pa
    # E[X; a<z<b] and E[X^2; a<z<b] of the normal, plus the mass clamped at each limit
    m1 = mean * inside + std * (fa - fb)
    m2 = (mean**2 + std**2) * inside + 2 * mean * std * (fa - fb) + std**2 * (a * fa - b * fb)
    first = m1 + (-limit) * pa + limit * (1 - pb)
    second = m2 + limit**2 * pa + limit**2 * (1 - pb)
    return first, np.sqrt(np.maximum(second - first**2, 1e-12))


def iterations_of(calls: list[np.ndarray], horizon: int, n_samples: int) -> list[np.ndarray] | None:
    """The actions of each iteration, (n_samples, horizon), from the actions of every model call in
    order (one call per step, all samples at once); None if the calls do not have that shape."""
    calls = [np.asarray(c, dtype=np.float64).reshape(-1) for c in calls]
    if not calls or len(calls) % horizon or any(len(c) != n_samples for c in calls):
        return None
    return [np.stack(calls[k : k + horizon], axis=1) for k in range(0, len(calls), horizon)]


def _returns(actions: np.ndarray, target: float, shifted: bool) -> np.ndarray:
    positions = np.cumsum(actions, axis=1)  # s_1..s_T
    if shifted:  # s_0..s_{T-1}
        positions = np.concatenate([np.zeros((len(actions), 1)), positions[:, :-1]], axis=1)
    return -((positions - target) ** 2).sum(axis=1)


def refit_z(
    iterations: list[np.ndarray],
    *,
    target: float,
    n_elite: int,
    std_floor: float,
    mistake: str | None = None,
) -> float:
    """The largest |z| of the next iterations' sample means and stds against the refit on the elites
    (as a correct planner does it, or as `mistake` does it)."""
    worst = 0.0
    carried = np.zeros(len(iterations[0]))
    for before, after in itertools.pairwise(iterations):
        returns = _returns(before, target, shifted=mistake == MISTAKES[0])
        carried = carried + returns if mistake == MISTAKES[1] else returns
        elites = before[np.argsort(-carried, kind="stable")[:n_elite]]
        mean = elites.mean(axis=0)
        if mistake == MISTAKES[2]:
            std = before.std(axis=0, ddof=1)
        elif mistake == MISTAKES[3]:
            std = np.ones_like(mean)
        else:
            std = elites.std(axis=0, ddof=1)
        std = np.maximum(std, std_floor)
        want_mean, want_std = _clamped_normal_moments(mean, std)
        n = len(after)
        z_mean = (after.mean(axis=0) - want_mean) / (want_std / math.sqrt(n))
        z_std = (after.std(axis=0, ddof=1) - want_std) / (want_std / math.sqrt(2 * n))
        worst = max(worst, float(np.abs(z_mean).max()), float(np.abs(z_std).max()))
    return worst


def refit_verdict(
    calls: list[np.ndarray],
    *,
    target: float = REFIT_TARGET,
    settings: dict = REFIT_SETTINGS,
) -> tuple[str | None, float]:
    """(None, z) when the planner's iterations fit the refit on the elites; else (the mistake they fit
    best, or "" for none of the known ones, and z). `calls`: the actions of each model call, in order."""
    iterations = iterations_of(calls, settings["horizon"], settings["n_samples"])
    if iterations is None or len(iterations) != settings["n_iters"]:
        return "shape", math.inf
    common = {
        "target": target,
        "n_elite": settings["n_elite"],
        "std_floor": settings["std_floor"],
    }
    z = refit_z(iterations, **common)
    if z < Z_LIMIT:
        return None, z
    fits = {mistake: refit_z(iterations, mistake=mistake, **common) for mistake in MISTAKES}
    best = min(fits, key=fits.get)
    return (best if fits[best] < Z_LIMIT else ""), z
