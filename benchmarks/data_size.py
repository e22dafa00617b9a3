"""How much data each kind of model needs: displaced-start success against the number of transitions.

    python -m benchmarks.data_size --json
    python -m benchmarks.data_size --sizes 300 1000 5000 --seeds 3 --max-steps 100 --output mbrl_helpers/measured/data_size.json

For each data size n and data seed d: n transitions drawn without replacement from the shipped
dataset (5,000 transitions; n = 5000 is all of it, and then the seeds differ only in training),
and on them, with training seed d,

- `deterministic`: one reference DeterministicModel, planned with CEM as an ensemble of one member;
- `ensemble`: the reference EnsembleModel (K = 5 deterministic members), CEM on the mean return;
- `pets`: a probabilistic ensemble (K = 5 Gaussian members, the NLL of notebook 2 summed over the
  members, one minibatch per member) planned with trajectory sampling as in PETS (Chua et al.,
  2018): one particle per member, and each particle keeps its member for the whole rollout
  (TS-infinity), every step a fresh sample from that member's Gaussian. Same CEM, same settings.

Each agent then runs from every start of mbrl_helpers.DISPLACED_STARTS for at most --max-steps
steps (100 in notebook 3). The JSON holds, per size and kind, the success rate, the mean return
and the return of every (seed, start) case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mbrl_helpers import (
    ACTION_DIM,
    CEM_SETTINGS,
    DISPLACED_STARTS,
    HIDDEN_SIZE,
    N_HIDDEN,
    N_MEMBERS,
    STATE_DIM,
    TRAIN_STEPS,
    MPCAgent,
    ReplayBuffer,
    build_ensemble_mlp,
    evaluate_displaced_starts,
    load_dataset,
    seed_everything,
    train_model,
)
from mbrl_helpers.prediction import as_one_member_ensemble
from mbrl_reference import DeterministicModel, EnsembleModel, ensemble_cem_plan, sample_member_batches

KINDS = ("deterministic", "ensemble", "pets")
LOG_SIGMA_MIN, LOG_SIGMA_MAX = float(np.log(1e-8)), float(np.log(10.0))  # sigma in [1e-8, 10], as in notebook 2


class ProbabilisticEnsemble(nn.Module):
    """K Gaussian delta models in one batched network: (K, N, S+A) -> mean and std of (K, N, S)."""

    def __init__(self, n_members: int = N_MEMBERS):
        super().__init__()
        self.n_members = n_members
        self.net = build_ensemble_mlp(n_members, STATE_DIM + ACTION_DIM, 2 * STATE_DIM, HIDDEN_SIZE, N_HIDDEN)

    def gaussian(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """states (K, N, S), actions (N, A) or (K, N, A) -> mean (K, N, S), std (K, N, S)."""
        if actions.dim() == 2:
            actions = actions.unsqueeze(0).repeat(self.n_members, 1, 1)
        raw = self.net(torch.cat((states, actions), dim=2))
        return raw[..., :STATE_DIM], raw[..., STATE_DIM:].clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX).exp()

    def predict_delta(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Trajectory sampling, one particle per member: row k draws from member k's Gaussian."""
        mean, std = self.gaussian(states, actions)
        return torch.normal(mean, std)

    def loss(self, states: torch.Tensor, actions: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        """Sum over members of the mean Gaussian NLL (constant dropped) on each member's own minibatch."""
        mean, std = self.gaussian(states, actions)
        z = (next_states - states - mean) / std
        return (0.5 * z.square() + std.log()).mean(dim=(1, 2)).sum()


def subsample(dataset: dict, size: int, seed: int) -> dict:
    """`size` transitions drawn without replacement (all of them, in order, when size >= the dataset's)."""
    n = len(dataset["states"])
    index = np.arange(n) if size >= n else np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return {key: dataset[key][index] for key in ("states", "actions", "next_states")}


def train_kind(kind: str, data: dict, seed: int, steps: int) -> nn.Module:
    seed_everything(seed)
    model = {"deterministic": DeterministicModel, "ensemble": EnsembleModel, "pets": ProbabilisticEnsemble}[kind]()
    buffer = ReplayBuffer.from_dataset(data, seed=seed)
    train_model(model, buffer, steps=steps, sample_batch=None if kind == "deterministic" else sample_member_batches, progress=False)
    return model


def agent_for(kind: str, model: nn.Module) -> MPCAgent:
    if kind == "deterministic":
        return MPCAgent(ensemble_cem_plan, as_one_member_ensemble(model.predict_delta), n_members=1)
    return MPCAgent(ensemble_cem_plan, model.predict_delta, n_members=model.n_members)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_size", description=__doc__.split("\n\n")[0], epilog="example: python -m benchmarks.data_size --json"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 5000], help="transitions drawn from the shipped dataset")
    parser.add_argument("--seeds", type=int, default=3, help="data and training seeds per size (0..N-1)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--max-steps", type=int, default=100, help="episode length from the displaced starts (notebook 3: 100)")
    parser.add_argument("--train-steps", type=int, default=TRAIN_STEPS, help="Adam steps per model (the course's: %(default)s)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON to this file")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is fastest on a shared CPU

    dataset = load_dataset()
    seeds = list(range(args.seeds))
    report = {
        "command": "python -m benchmarks.data_size " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sizes": args.sizes,
        "seeds": seeds,
        "max_steps": args.max_steps,
        "train_steps": args.train_steps,
        "cem_settings": CEM_SETTINGS,
        "n_members": N_MEMBERS,
        "starts": [list(start) for start in DISPLACED_STARTS],
        "results": {},
    }
    total_start = time.perf_counter()
    for size in args.sizes:
        trained: dict[tuple[str, int], nn.Module] = {}
        train_seconds = {kind: 0.0 for kind in args.kinds}

        def make_agent(seed: int, kind: str) -> MPCAgent:  # called within this iteration: it may use its variables
            start = time.perf_counter()
            model = train_kind(kind, subsample(dataset, size, seed), seed, args.train_steps)  # noqa: B023
            train_seconds[kind] += time.perf_counter() - start  # noqa: B023
            trained[kind, seed] = model  # noqa: B023
            return agent_for(kind, model)

        factories = {kind: (lambda seed, kind=kind: make_agent(seed, kind)) for kind in args.kinds}
        table = evaluate_displaced_starts(factories, training_seeds=seeds, max_steps=args.max_steps, progress=False)
        report["results"][str(size)] = {
            kind: {
                **summary.as_dict(),
                "successes": int(summary.succeeded.sum()),
                "cases": int(summary.succeeded.size),
                "train_seconds": round(train_seconds[kind], 1),
            }
            for kind, summary in table.items()
        }
        if not args.json:
            for kind, summary in table.items():
                print(
                    f"{size:5d} transitions, {kind:13s}: {summary.succeeded.sum():2d}/{summary.succeeded.size} "
                    f"({summary.success_rate:.0%}), mean return {summary.mean_return:.1f}",
                    file=sys.stderr,
                )
    report["seconds"] = round(time.perf_counter() - total_start, 1)
    text = json.dumps(report, indent=2)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
