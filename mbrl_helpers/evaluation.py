"""Model-predictive control in the real environment: run a planner for seeded episodes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from mbrl_helpers.env import ACTION_DIM, ACTION_HIGH, ACTION_LOW, MAX_EPISODE_STEPS, get_device, make_env, seed_everything, set_env_state


class Planner(Protocol):
    def plan(self, state: np.ndarray) -> np.ndarray: ...


PlannerLike = Planner | Callable[[np.ndarray], np.ndarray]


class MPCAgent:
    """A planning function and a model's `predict_delta`, as an agent that replans at every step.

        agent = MPCAgent(cem_plan, model.predict_delta, horizon=5)
        agent = MPCAgent(ensemble_cem_plan, ensemble.predict_delta, n_members=5)

    `plan(state)` turns the NumPy observation into a float32 tensor on `device`, calls
    `plan_fn(predict_delta, state, **plan_kwargs)` and returns the action as a NumPy array (A,).
    """

    def __init__(self, plan_fn: Callable, predict_delta: Callable, device: torch.device | str | None = None, **plan_kwargs):
        self.plan_fn = plan_fn
        self.predict_delta = predict_delta
        self.device = torch.device(device) if device is not None else get_device()
        self.plan_kwargs = plan_kwargs

    def plan(self, state: np.ndarray) -> np.ndarray:
        state = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=self.device)
        action = self.plan_fn(self.predict_delta, state, **self.plan_kwargs)
        return action.detach().cpu().numpy() if isinstance(action, torch.Tensor) else np.asarray(action)


@dataclass
class EpisodeResult:
    """What happened in one episode. T is the number of steps taken."""

    seed: int
    episode_return: float
    states: np.ndarray  # (T + 1, 4): the start state, then the state after each step
    actions: np.ndarray  # (T, 1): the actions sent to the environment (after clipping to [-3, 3])
    decision_seconds: np.ndarray  # (T,): wall-clock time of each planning decision
    terminated: bool  # True when the pole fell, False when the episode ran to its step limit

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def outcome(self) -> str:
        """The episode in words, e.g. "return 1000: upright for all 1000 steps". The step in which
        the pole falls earns no reward, so a pole that falls in step k returns k - 1."""
        if self.terminated:
            return f"return {self.episode_return:.0f}: the pole fell in step {self.steps}, which earns no reward"
        return f"return {self.episode_return:.0f}: upright for all {self.steps} steps"

    @property
    def median_decision_ms(self) -> float:
        return float(np.median(self.decision_seconds) * 1000) if self.steps else float("nan")


def _as_action(raw) -> np.ndarray:
    """Turn a planner's output (tensor, array, float) into a float32 action of shape (1,)."""
    if hasattr(raw, "detach"):
        raw = raw.detach().cpu().numpy()
    action = np.asarray(raw, dtype=np.float32).reshape(-1)
    if action.shape != (ACTION_DIM,):
        raise ValueError(f"the planner must return one action of shape ({ACTION_DIM},), got shape {np.shape(raw)}")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"the planner returned a non-finite action: {action}")
    return np.clip(action, ACTION_LOW, ACTION_HIGH)


def run_episode(
    planner: PlannerLike,
    seed: int = 0,
    max_steps: int = MAX_EPISODE_STEPS,
    progress: bool = True,
    env=None,
    start_state: np.ndarray | None = None,
) -> EpisodeResult:
    """Run one episode with `planner` choosing every action (replanning at every step).

    `planner` is anything with a `plan(state) -> action` method, or a plain function of the state.
    The episode is seeded: the env's reset with `seed`, and Python/NumPy/torch with `seed` too,
    so a planner that samples from torch's global RNG repeats exactly. `start_state`
    ([x, angle, x_dot, angle_dot]), when given, is set in the simulator after the reset and
    replaces the reset's state: a start away from upright tests recovery, not just balancing.
    """
    plan = planner.plan if hasattr(planner, "plan") else planner
    own_env = env is None
    env = make_env() if own_env else env
    seed_everything(seed)
    state, _ = env.reset(seed=seed)
    if start_state is not None:
        state = set_env_state(env, start_state)
    states, actions, decision_seconds = [state], [], []
    episode_return, terminated = 0.0, False
    bar = tqdm(total=max_steps, desc=f"episode (seed {seed})", disable=not progress, leave=False)
    try:
        for _ in range(max_steps):
            start = time.perf_counter()
            action = _as_action(plan(state))
            decision_seconds.append(time.perf_counter() - start)
            state, reward, terminated, truncated, _ = env.step(action)
            states.append(state)
            actions.append(action)
            episode_return += float(reward)
            bar.update(1)
            bar.set_postfix(ret=f"{episode_return:.0f}", refresh=False)
            if terminated or truncated:
                break
    finally:
        bar.close()
        if own_env:
            env.close()
    return EpisodeResult(
        seed=seed,
        episode_return=episode_return,
        states=np.asarray(states),
        actions=np.asarray(actions, dtype=np.float32).reshape(-1, ACTION_DIM),
        decision_seconds=np.asarray(decision_seconds),
        terminated=bool(terminated),
    )


@dataclass
class EvaluationSummary:
    episodes: list[EpisodeResult] = field(repr=False)
    mean_return: float
    min_return: float
    max_return: float
    median_decision_ms: float

    def as_dict(self) -> dict:
        return {
            "mean_return": self.mean_return,
            "min_return": self.min_return,
            "max_return": self.max_return,
            "episodes": [e.episode_return for e in self.episodes],
            "median_decision_ms": self.median_decision_ms,
        }


def evaluate(planner: PlannerLike, seeds: Sequence[int] = (0, 1, 2), max_steps: int = MAX_EPISODE_STEPS, progress: bool = True) -> EvaluationSummary:
    """Run one episode per seed and summarise the returns and planning times."""
    episodes = []
    for seed in tqdm(list(seeds), desc="evaluation episodes", disable=not progress):
        episodes.append(run_episode(planner, seed=seed, max_steps=max_steps, progress=progress))
    returns = np.array([e.episode_return for e in episodes])
    all_decisions = np.concatenate([e.decision_seconds for e in episodes])
    return EvaluationSummary(
        episodes=episodes,
        mean_return=float(returns.mean()),
        min_return=float(returns.min()),
        max_return=float(returns.max()),
        median_decision_ms=float(np.median(all_decisions) * 1000),
    )
