"""An evaluation that separates the models: recover from displaced starts, not just balance.

From the environment's reset (every component within 0.01 of upright) all three reference agents
balance for 1000 steps, so returns from reset cannot tell them apart. The starts below put the
cart far from the centre or the pole well off upright, states the offline data hold only a few
random steps of; a linear controller (LQR) recovers from every one, so a failure there is the agent's.

`evaluate_displaced_starts` runs each agent from every start for several training seeds, because
one seed's model can be lucky. `horizon_sweep` runs one planner at several horizons; given the
true simulator as its model (`SimulatorModel`), it shows what the planner gets wrong by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from mbrl_helpers.env import MAX_EPISODE_STEPS
from mbrl_helpers.evaluation import MPCAgent, PlannerLike, run_episode

# [x, angle, x_dot, angle_dot]. A positive angle leans the pole towards +x. Starting with a cart
# velocity is left out: a cart moving at 1 m/s under an upright pole drops it within 0.2 s, LQR or not.
# tests/test_displaced.py checks that LQR balances for 1000 steps from each.
DISPLACED_STARTS = (
    (0.7, 0.0, 0.0, 0.0),  # cart far right: bringing it back needs the pole first tipped left
    (-0.7, 0.0, 0.0, 0.0),  # the same on the left
    (0.5, 0.1, 0.0, 0.0),  # pole leaning away from the centre: the cart must first go further out (LQR: to 0.63)
    (-0.5, -0.1, 0.0, 0.0),  # the same on the left
    (0.5, -0.1, 0.0, 0.0),  # pole already leaning towards the centre
    (0.0, 0.15, 0.0, 0.0),  # pole far over, three quarters of the way to falling (0.2 rad)
    (0.0, 0.0, 0.0, 1.0),  # pole swinging at 1 rad/s
    (0.3, -0.1, -0.5, 0.5),  # everything at once
)


@dataclass
class DisplacedStartSummary:
    """One agent from every start, for every training seed."""

    returns: np.ndarray  # (n_seeds, n_starts): the return of each case
    succeeded: np.ndarray  # (n_seeds, n_starts): True where the pole stayed up until the step limit
    training_seeds: list[int]

    @property
    def success_rate(self) -> float:
        """Fraction of (seed, start) cases that reached the step limit."""
        return float(self.succeeded.mean())

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    def as_dict(self) -> dict:
        return {
            "success_rate": self.success_rate,
            "mean_return": self.mean_return,
            "returns": self.returns.tolist(),  # one row per training seed, one column per start
        }


def evaluate_displaced_starts(
    agent_factories: Mapping[str, Callable[[int], PlannerLike]],
    training_seeds: Sequence[int] = (0, 1, 2),
    starts: Sequence[Sequence[float]] = DISPLACED_STARTS,
    max_steps: int = MAX_EPISODE_STEPS,
    progress: bool = True,
) -> dict[str, DisplacedStartSummary]:
    """Run every agent from every start, once per training seed; returns a summary per agent name.

    agent_factories: name -> a function that trains a model with the given seed and returns the
        agent (anything `run_episode` accepts), e.g. `lambda seed: MPCAgent(cem_plan, train(seed).predict_delta)`.
        Each factory is called once per seed; that agent then runs from every start.
    A case succeeds when the pole is still up after `max_steps` steps. Each episode is seeded with
    the training seed, so the whole table repeats exactly.
    """
    training_seeds = [int(seed) for seed in training_seeds]
    summaries = {}
    bar = tqdm(total=len(agent_factories) * len(training_seeds) * len(starts), desc="displaced starts", disable=not progress)
    for name, make_agent in agent_factories.items():
        returns = np.zeros((len(training_seeds), len(starts)))
        succeeded = np.zeros((len(training_seeds), len(starts)), dtype=bool)
        for i, seed in enumerate(training_seeds):
            agent = make_agent(seed)
            for j, start in enumerate(starts):
                bar.set_postfix(agent=name, seed=seed, start=j, refresh=False)
                result = run_episode(agent, seed=seed, max_steps=max_steps, progress=progress, start_state=np.asarray(start, dtype=np.float64))
                returns[i, j] = result.episode_return
                succeeded[i, j] = not result.terminated
                bar.update(1)
        summaries[name] = DisplacedStartSummary(returns=returns, succeeded=succeeded, training_seeds=training_seeds)
    bar.close()
    return summaries


def horizon_sweep(
    plan_fn: Callable,
    predict_delta: Callable,
    horizons: Sequence[int] = (5, 10, 15),
    starts: Sequence[Sequence[float]] = DISPLACED_STARTS,
    max_steps: int = MAX_EPISODE_STEPS,
    seed: int = 0,
    progress: bool = True,
    **plan_kwargs,
) -> dict[int, list[float]]:
    """The same planner and model at each planning horizon; returns horizon -> the return from each start.

    plan_fn, predict_delta, plan_kwargs: as for `MPCAgent`, e.g. `horizon_sweep(cem_plan, model.predict_delta)`
    or, for the planner alone, `horizon_sweep(cem_plan, SimulatorModel().predict_delta)`.
    With the true simulator a longer horizon can only see further: where it still does worse, the
    planner itself is the limit (the same samples search a longer action sequence); where only
    the learned model does worse, the model's compounding error is.
    """
    returns = {}
    bar = tqdm(total=len(horizons) * len(starts), desc="horizon sweep", disable=not progress)
    for horizon in horizons:
        agent = MPCAgent(plan_fn, predict_delta, horizon=horizon, **plan_kwargs)
        returns[int(horizon)] = []
        for j, start in enumerate(starts):
            bar.set_postfix(horizon=horizon, start=j, refresh=False)
            result = run_episode(agent, seed=seed, max_steps=max_steps, progress=progress, start_state=np.asarray(start, dtype=np.float64))
            returns[int(horizon)].append(result.episode_return)
            bar.update(1)
    bar.close()
    return returns
