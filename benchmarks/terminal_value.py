"""The planner's objective: the course's sum of -sᵀPs over the plan, or stage costs plus a terminal value.

    python -m benchmarks.terminal_value --seeds 0 1 2 --json

P (mbrl_helpers.reward.COST_MATRIX) is the LQR cost-to-go of the linear model fitted to the data,
with stage cost c(s, a) = sᵀQs + aᵀRa (mbrl_helpers.lqr). Notebook 1's CEM sums r(ŝ_t) = -ŝ_tᵀPŝ_t
over t = 1..T ("summed"); the textbook objective of a T-step plan that hands over to that LQR is
-Σ_{t<T} c(ŝ_t, a_t) - ŝ_TᵀPŝ_T ("terminal"). For each training seed, the reference deterministic
model is trained as the notebooks train it, then both planners (the same CEM settings) run one
episode from the reset and one from each of mbrl_helpers.DISPLACED_STARTS, seeded with the training
seed as `evaluate_displaced_starts` does. About 2 minutes per seed and objective on a quiet 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch.distributions import Normal

from benchmarks.common import train_reference
from mbrl_helpers import CEM_SETTINGS, DISPLACED_STARTS, MPCAgent, run_episode
from mbrl_helpers.env import ACTION_DIM, ACTION_HIGH, ACTION_LOW
from mbrl_helpers.lqr import ACTION_COST, STATE_COST
from mbrl_helpers.reward import COST_MATRIX
from mbrl_reference import cem_plan

OBJECTIVES = ("summed", "terminal")


@torch.no_grad()
def cem_plan_terminal(predict_delta, state, horizon=5, n_samples=200, n_elite=20, n_iters=5, std_floor=0.5):
    """The reference CEM with the objective -Σ_{t<T} (ŝ_tᵀQŝ_t + a_tᵀRa_t) - ŝ_TᵀPŝ_T; returns (A,)."""
    Q, P = (torch.as_tensor(m, dtype=state.dtype) for m in (STATE_COST, COST_MATRIX))
    R = float(ACTION_COST[0, 0])  # one action dimension
    mean = torch.zeros(horizon, ACTION_DIM)
    std = torch.ones(horizon, ACTION_DIM)
    for _ in range(n_iters):
        actions = Normal(mean, std).sample((n_samples,)).clamp(ACTION_LOW, ACTION_HIGH)  # (N, T, A)
        states = state.expand(n_samples, -1)  # (N, S)
        objective = torch.zeros(n_samples)
        for t in range(horizon):
            objective -= ((states @ Q) * states).sum(-1) + R * (actions[:, t] ** 2).sum(-1)
            states = states + predict_delta(states, actions[:, t])
        objective -= ((states @ P) * states).sum(-1)
        best = actions[objective.topk(n_elite).indices]  # (n_elite, T, A)
        mean, std = best.mean(dim=0), best.std(dim=0).clamp(min=std_floor)
    return mean[0]


def run(seeds, objectives=OBJECTIVES, max_steps: int = 1000) -> dict:
    """objective -> seed -> [return from the reset, then from each displaced start]."""
    report = {name: {} for name in objectives}
    for seed in seeds:
        model, _ = train_reference("deterministic", seed=seed)
        model.eval()
        for name in objectives:
            agent = MPCAgent(cem_plan if name == "summed" else cem_plan_terminal, model.predict_delta, device="cpu", **CEM_SETTINGS)
            returns = [run_episode(agent, seed=seed, max_steps=max_steps, progress=False).episode_return]
            for start in DISPLACED_STARTS:
                returns.append(run_episode(agent, seed=seed, max_steps=max_steps, progress=False, start_state=np.array(start)).episode_return)
            report[name][seed] = returns
            print(f"{name}, seed {seed}: {returns}", file=sys.stderr)
    for name, by_seed in report.items():
        displaced = np.array([returns[1:] for returns in by_seed.values()])
        report[name]["displaced_successes"] = f"{int((displaced >= max_steps).sum())}/{displaced.size}"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.terminal_value",
        description=__doc__.split("\n\n")[0],
        epilog="example: python -m benchmarks.terminal_value --seeds 0 1 2 --json",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (each also seeds its episodes)")
    parser.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=list(OBJECTIVES))
    parser.add_argument("--max-steps", type=int, default=1000, help="episode length limit (1000 is the real task)")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = run(args.seeds, args.objectives, args.max_steps)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
