"""Closing the loop: from a small reset-only dataset, how many iterations until the agent balances?

    python -m benchmarks.closing_the_loop --json
    python -m benchmarks.closing_the_loop --start-sizes 300 1000 --seeds 3 --json

For each start size, data seed and model (the reference deterministic model and ensemble), runs
the reference loop (mbrl_reference.closing_the_loop) with notebook 4's settings: each iteration
trains a new model on all the data so far, runs one 1000-step episode with the reference CEM
planner and adds it. Prints each iteration's return and the seconds the loop took, which is
most of what notebook 4 costs to run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from benchmarks.common import build_agent, build_model
from mbrl_helpers import MAX_EPISODE_STEPS, ReplayBuffer, run_episode, seed_everything, train_model
from mbrl_helpers.closing_the_loop import LOOP_ITERATIONS, LOOP_TRAIN_STEPS, SMALL_DATASET_SEED, SMALL_DATASET_SIZE, collect_reset_only
from mbrl_reference import sample_member_batches
from mbrl_reference.closing_the_loop import closing_the_loop

KINDS = ("deterministic", "ensemble")


def run_loop(kind: str, start: dict, iterations: int, train_steps: int, max_steps: int) -> dict:
    """The reference loop for one model kind; its returns, the data sizes trained on, and its seconds."""
    trained_on = []

    def train_agent(dataset):
        seed = len(trained_on)
        seed_everything(seed)
        model = build_model(kind)
        buffer = ReplayBuffer.from_dataset(dataset, device="cpu", seed=seed)
        train_model(model, buffer, steps=train_steps, sample_batch=sample_member_batches if kind == "ensemble" else None, progress=False)
        trained_on.append(len(dataset["states"]))
        return build_agent(kind, model)

    def run_agent(agent):
        return run_episode(agent, seed=len(trained_on) - 1, max_steps=max_steps, progress=False)

    started = time.perf_counter()
    _, returns = closing_the_loop(start, train_agent, run_agent, iterations)
    return {"returns": returns, "trained_on": trained_on, "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.closing_the_loop", description=__doc__.split("\n\n")[0], epilog="example: python -m benchmarks.closing_the_loop --json")
    parser.add_argument("--start-sizes", type=int, nargs="+", default=[SMALL_DATASET_SIZE], help="transitions of the reset-only start data")
    parser.add_argument("--seeds", type=int, default=1, help=f"data seeds per start size ({SMALL_DATASET_SEED}, {SMALL_DATASET_SEED} + 1, ...)")
    parser.add_argument("--iterations", type=int, default=LOOP_ITERATIONS)
    parser.add_argument("--train-steps", type=int, default=LOOP_TRAIN_STEPS)
    parser.add_argument("--max-steps", type=int, default=MAX_EPISODE_STEPS, help="episode length limit (1000 is the real task)")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is fastest (see benchmarks/separation.py)

    report = {"iterations": args.iterations, "train_steps": args.train_steps, "max_steps": args.max_steps, "runs": []}
    for size in args.start_sizes:
        for data_seed in range(SMALL_DATASET_SEED, SMALL_DATASET_SEED + args.seeds):
            start = collect_reset_only(size, seed=data_seed, progress=False)
            for kind in KINDS:
                run = {"start_size": size, "data_seed": data_seed, "model": kind, **run_loop(kind, start, args.iterations, args.train_steps, args.max_steps)}
                report["runs"].append(run)
                if not args.json:
                    print(f"{size} start transitions, data seed {data_seed}, {kind}: returns {run['returns']} in {run['seconds']} s", file=sys.stderr)
    report["median_loop_seconds"] = {kind: statistics.median(run["seconds"] for run in report["runs"] if run["model"] == kind) for kind in KINDS}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
