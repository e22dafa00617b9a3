"""Reference CEM planners, used as model-predictive control, and the grader's batched decisions.

Shapes: N samples, T horizon, K ensemble members, S = 4 state dims, A = 1 action dim.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import Normal

from mbrl_helpers.config import CEM_SETTINGS
from mbrl_helpers.env import ACTION_DIM, ACTION_HIGH, ACTION_LOW
from mbrl_helpers.planning import RANDOM_SHOOTING_SETTINGS
from mbrl_helpers.reward import compute_rewards

PredictDelta = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()  # planning only reads the model: no autograd graph, less time and memory
def cem_plan(
    predict_delta: PredictDelta,
    state: torch.Tensor,
    horizon: int = CEM_SETTINGS["horizon"],
    n_samples: int = CEM_SETTINGS["n_samples"],
    n_elite: int = CEM_SETTINGS["n_elite"],
    n_iters: int = CEM_SETTINGS["n_iters"],
    std_floor: float = CEM_SETTINGS["std_floor"],
    reward_fn: Callable[[torch.Tensor], torch.Tensor] = compute_rewards,
) -> torch.Tensor:
    """One CEM decision with a single model; returns the first action of the final mean, shape (A,).

    state (S,). Each iteration samples N sequences (N, T, A) from Normal(mean, std) clamped to
    [-3, 3], rolls them out with s <- s + predict_delta(s, a), sums the rewards of the predicted
    states, and refits mean and std (std floored at std_floor) to the n_elite highest returns.
    """
    mean = torch.zeros(horizon, ACTION_DIM, device=state.device)
    std = torch.ones(horizon, ACTION_DIM, device=state.device)
    for _ in range(n_iters):
        actions = Normal(mean, std).sample((n_samples,)).clamp(ACTION_LOW, ACTION_HIGH)  # (N, T, A)
        states = state.expand(n_samples, -1)  # (N, S)
        returns = torch.zeros(n_samples, device=state.device)
        for t in range(horizon):
            states = states + predict_delta(states, actions[:, t])
            returns += reward_fn(states)
        elite_actions = actions[returns.topk(n_elite).indices]  # (n_elite, T, A)
        mean = elite_actions.mean(dim=0)
        std = elite_actions.std(dim=0).clamp(min=std_floor)
    return mean[0]


@torch.no_grad()
def ensemble_cem_plan(
    predict_delta: PredictDelta,
    state: torch.Tensor,
    n_members: int,
    horizon: int = CEM_SETTINGS["horizon"],
    n_samples: int = CEM_SETTINGS["n_samples"],
    n_elite: int = CEM_SETTINGS["n_elite"],
    n_iters: int = CEM_SETTINGS["n_iters"],
    std_floor: float = CEM_SETTINGS["std_floor"],
    reward_fn: Callable[[torch.Tensor], torch.Tensor] = compute_rewards,
) -> torch.Tensor:
    """CEM with an ensemble: every sequence rolls out under every member; elites by mean return.

    predict_delta maps states (K, N, S) and actions (N, A) to deltas (K, N, S). Returns (A,).
    """
    mean = torch.zeros(horizon, ACTION_DIM, device=state.device)
    std = torch.ones(horizon, ACTION_DIM, device=state.device)
    for _ in range(n_iters):
        actions = Normal(mean, std).sample((n_samples,)).clamp(ACTION_LOW, ACTION_HIGH)  # (N, T, A)
        states = state.expand(n_members, n_samples, -1)  # (K, N, S)
        returns = torch.zeros(n_members, n_samples, device=state.device)
        for t in range(horizon):
            states = states + predict_delta(states, actions[:, t])
            returns += reward_fn(states)
        expected_returns = returns.mean(dim=0)  # (N,): a sequence must look good under every member
        elite_actions = actions[expected_returns.topk(n_elite).indices]
        mean = elite_actions.mean(dim=0)
        std = elite_actions.std(dim=0).clamp(min=std_floor)
    return mean[0]


FIRST_ACTIONS_CHUNK = 50


@torch.no_grad()
def cem_first_actions(
    predict_delta: PredictDelta,
    states: torch.Tensor,
    seeds: list[int],
    n_members: int = 0,
    horizon: int = CEM_SETTINGS["horizon"],
    n_samples: int = CEM_SETTINGS["n_samples"],
    n_elite: int = CEM_SETTINGS["n_elite"],
    n_iters: int = CEM_SETTINGS["n_iters"],
    std_floor: float = CEM_SETTINGS["std_floor"],
    reward_fn: Callable[[torch.Tensor], torch.Tensor] = compute_rewards,
) -> torch.Tensor:
    """B decisions at once, for the grader: decision b is what `cem_plan` (n_members 0) or
    `ensemble_cem_plan` (n_members K) returns from states[b] after torch.manual_seed(seeds[b]) (the
    same random numbers; equal up to float rounding, as the rows go through the model together).
    The algorithm is theirs, with a batch dimension B in front. states (B, S) -> actions (B, A).

    Why: the checks ask the reference for hundreds of decisions on a model of 16 hidden units, where
    one decision is mostly the cost of calling torch; together they cost a few calls' worth.
    Batches above FIRST_ACTIONS_CHUNK decisions go through in chunks of that many: each decision has
    its own generator, so the numbers are the same, and a chunk's rollouts (50 x 200 sequences x 5
    members x 16 hidden units: 3 MB) stay in the cache, where 300 decisions at once ran 1.4 times slower."""
    batch = states.shape[0]
    if batch > FIRST_ACTIONS_CHUNK:
        settings = dict(n_members=n_members, horizon=horizon, n_samples=n_samples, n_elite=n_elite, n_iters=n_iters, std_floor=std_floor, reward_fn=reward_fn)
        return torch.cat(
            [
                cem_first_actions(predict_delta, states[start : start + FIRST_ACTIONS_CHUNK], seeds[start : start + FIRST_ACTIONS_CHUNK], **settings)
                for start in range(0, batch, FIRST_ACTIONS_CHUNK)
            ]
        )
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    mean = torch.zeros(batch, horizon, ACTION_DIM)
    std = torch.ones(batch, horizon, ACTION_DIM)
    rows = torch.arange(batch)[:, None]
    for _ in range(n_iters):
        # Normal(mean, std).sample((N,)) is torch.normal on the expanded loc and scale: the same draws.
        shape = (n_samples, horizon, ACTION_DIM)
        actions = torch.stack([torch.normal(mean[b].expand(shape), std[b].expand(shape), generator=g) for b, g in enumerate(generators)])
        actions = actions.clamp(ACTION_LOW, ACTION_HIGH)  # (B, N, T, A)
        flat_actions = actions.reshape(batch * n_samples, horizon, ACTION_DIM)  # (B*N, T, A)
        rolled = states[:, None, :].expand(batch, n_samples, -1).reshape(batch * n_samples, -1)  # (B*N, S)
        if n_members:
            rolled = rolled.expand(n_members, -1, -1)  # (K, B*N, S)
        returns = torch.zeros(rolled.shape[:-1])
        for t in range(horizon):
            rolled = rolled + predict_delta(rolled, flat_actions[:, t])
            returns += reward_fn(rolled)
        if n_members:
            returns = returns.mean(dim=0)  # (B*N,): the mean over members, as ensemble_cem_plan ranks
        elite_actions = actions[rows, returns.reshape(batch, n_samples).topk(n_elite, dim=1).indices]  # (B, n_elite, T, A)
        mean = elite_actions.mean(dim=1)
        std = elite_actions.std(dim=1).clamp(min=std_floor)
    return mean[:, 0]


@torch.no_grad()
def random_shooting_first_actions(
    distribution_params: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    states: torch.Tensor,
    seeds: list[int],
    horizon: int = RANDOM_SHOOTING_SETTINGS["horizon"],
    n_samples: int = RANDOM_SHOOTING_SETTINGS["n_samples"],
) -> torch.Tensor:
    """B decisions at once, for the grader: decision b is what the course's `random_shooting_plan`
    returns from states[b] after torch.manual_seed(seeds[b]), planning with a stochastic model whose
    predict_delta draws one sample of Normal(*distribution_params(states, actions)) (the reference
    StochasticModel). Each decision draws from its own generator in the same order (the uniform
    actions, then each step's sample), so the numbers are the same up to float rounding.
    states (B, S) -> actions (B, A).

    Why: the stochastic return check asks for 300 decisions on a small network, one at a time 0.4 s
    of CPU a student, nearly all of it the cost of calling torch."""
    batch = states.shape[0]
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    low = torch.as_tensor(ACTION_LOW, dtype=states.dtype)
    span = torch.as_tensor(ACTION_HIGH, dtype=states.dtype) - low
    uniform = torch.stack([torch.rand(n_samples, horizon, ACTION_DIM, dtype=states.dtype, generator=g) for g in generators])
    actions = low + span * uniform  # (B, N, T, A), as random_shooting_plan scales its draws
    imagined = states[:, None, :].expand(batch, n_samples, -1).reshape(batch * n_samples, -1)  # (B*N, S)
    score = torch.zeros(batch * n_samples, dtype=states.dtype)
    for t in range(horizon):
        mu, sigma = distribution_params(imagined, actions[:, :, t].reshape(batch * n_samples, ACTION_DIM))
        mu, sigma = mu.reshape(batch, n_samples, -1), sigma.reshape(batch, n_samples, -1)
        delta = torch.stack([torch.normal(mu[b], sigma[b], generator=g) for b, g in enumerate(generators)])  # (B, N, S)
        imagined = imagined + delta.reshape(batch * n_samples, -1)
        score = score + compute_rewards(imagined)
    best = score.reshape(batch, n_samples).argmax(dim=1)
    return actions[torch.arange(batch), best, 0]
