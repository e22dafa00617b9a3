"""Closing the loop: from a small reset-only dataset, how many iterations until the agent balances?

    python -m benchmarks.closing_the_loop --json
    python -m benchmarks.closing_the_loop --seeds 3 --control --json
    python -m benchmarks.closing_the_loop --seeds 4 --models ensemble --guided --stop-at-success --iterations 4 --json
    python -m benchmarks.closing_the_loop --seeds 4 --guided-only --guided-box 0.9 0.05 0.3 0.3 --iterations 4 --json

For each start size, data seed and model (a deterministic model, i.e. the reference ensemble with
one member, and the ensemble of five: notebook 4's two agents, with its seeds), runs the reference
loop (mbrl_reference.closing_the_loop) with notebook 4's settings: each iteration i trains a new
model on all the data so far (seed i - 1), runs one 1000-step episode (seed i - 1) with the
reference CEM planner and adds it. Prints each iteration's return and the loop's seconds.

--control: the same seeds without the added data. For iterations 2, 3, ... the agent is trained
on the start data alone with that iteration's seed and run with its seed: if these agents fall
where the loop's balance, the transitions the loop added are what made the difference.

--guided (ensemble only): collection guided by the ensemble's disagreement, against the plain loop.
Each iteration trains as above and tests the agent from reset (seed i - 1, not added to the data);
if it falls, the agent runs a collection episode (at most GUIDED_EPISODE_STEPS steps) from the
candidate start where the ensemble disagrees most (mbrl_helpers.closing_the_loop.most_uncertain_start),
and that episode is added. The candidates are drawn from --guided-box (default: the box the offline
data of notebooks 1-3 start in; 0.9 0.05 0.3 0.3 keeps to slow, nearly upright states, from which
the agent can recover). Reports the iterations until an agent balances for the whole episode
from reset, for both loops, and the transitions each added until then.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from mbrl_helpers import (
    MAX_EPISODE_STEPS,
    N_MEMBERS,
    MPCAgent,
    ReplayBuffer,
    run_episode,
    seed_everything,
    train_model,
)
from mbrl_helpers.closing_the_loop import (
    GUIDED_EPISODE_STEPS,
    LOOP_ITERATIONS,
    LOOP_TRAIN_STEPS,
    SMALL_DATASET_SEED,
    SMALL_DATASET_SIZE,
    collect_reset_only,
    most_uncertain_start,
)
from mbrl_helpers.data import START_BOX
from mbrl_reference import EnsembleModel, ensemble_cem_plan, sample_member_batches
from mbrl_reference.closing_the_loop import add_episode, closing_the_loop

MEMBERS = {"deterministic": 1, "ensemble": N_MEMBERS}  # notebook 4's two agents: EnsembleModel(n_members=k)


def train(kind: str, dataset: dict, seed: int, train_steps: int) -> tuple[EnsembleModel, MPCAgent]:
    """Notebook 4's train_agent: a new model trained on `dataset` with `seed`, and its CEM agent."""
    n_members = MEMBERS[kind]
    seed_everything(seed)
    model = EnsembleModel(n_members=n_members)
    buffer = ReplayBuffer.from_dataset(dataset, device="cpu", seed=seed)
    train_model(model, buffer, steps=train_steps, sample_batch=lambda b, size: sample_member_batches(b, size, n_members), progress=False)
    return model, MPCAgent(ensemble_cem_plan, model.predict_delta, device="cpu", n_members=n_members)


def iterations_to_success(returns: list[float], max_steps: int) -> int | None:
    """The first iteration (from 1) whose episode lasted all `max_steps` steps; None if none did."""
    return next((i + 1 for i, value in enumerate(returns) if value >= max_steps), None)


def run_loop(kind: str, start: dict, iterations: int, train_steps: int, max_steps: int, stop_at_success: bool = False) -> dict:
    """The reference loop for one model kind; its returns, the data sizes trained on, and its seconds."""
    trained_on = []

    def train_agent(dataset):
        trained_on.append(len(dataset["states"]))
        return train(kind, dataset, len(trained_on) - 1, train_steps)[1]

    def run_agent(agent):
        return run_episode(agent, seed=len(trained_on) - 1, max_steps=max_steps, progress=False)

    started = time.perf_counter()
    if stop_at_success:  # one iteration at a time, the same loop, until an episode lasts max_steps
        data, returns = start, []
        while len(returns) < iterations and (not returns or returns[-1] < max_steps):
            data, more = closing_the_loop(data, train_agent, run_agent, 1)
            returns += more
    else:
        _, returns = closing_the_loop(start, train_agent, run_agent, iterations)
    success = iterations_to_success(returns, max_steps)
    return {
        "returns": returns,
        "trained_on": trained_on,
        "iterations_to_success": success,
        "transitions_added_to_success": trained_on[success - 1] - len(start["states"]) if success else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_guided_loop(start: dict, iterations: int, train_steps: int, max_steps: int, box: tuple[float, ...] = tuple(START_BOX)) -> dict:
    """The ensemble's loop with collection guided by disagreement (see the module docstring)."""
    data, returns, trained_on, starts = start, [], [], []
    started = time.perf_counter()
    for iteration in range(iterations):
        model, agent = train("ensemble", data, iteration, train_steps)
        trained_on.append(len(data["states"]))
        test = run_episode(agent, seed=iteration, max_steps=max_steps, progress=False)
        returns.append(test.episode_return)
        if test.episode_return >= max_steps:
            break
        where = most_uncertain_start(model.predict_delta, N_MEMBERS, data, seed=iteration, box=box, device="cpu")
        collected = run_episode(agent, seed=iteration, max_steps=GUIDED_EPISODE_STEPS, progress=False, start_state=where.best)
        starts.append({"state": [round(float(v), 3) for v in where.best], "disagreement": round(where.best_disagreement, 3), "steps": collected.steps})
        data = add_episode(data, collected)
    success = iterations_to_success(returns, max_steps)
    return {
        "returns": returns,
        "trained_on": trained_on,
        "iterations_to_success": success,
        "transitions_added_to_success": trained_on[success - 1] - len(start["states"]) if success else None,
        "collection_episodes": starts,
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_control(kind: str, start: dict, iterations: int, train_steps: int, max_steps: int) -> dict:
    """Iterations 2.. of the loop without the added data: {iteration: return} of agents trained on the start data alone."""
    returns = {}
    for iteration in range(2, iterations + 1):
        _, agent = train(kind, start, iteration - 1, train_steps)
        returns[iteration] = run_episode(agent, seed=iteration - 1, max_steps=max_steps, progress=False).episode_return
    return returns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.closing_the_loop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python -m benchmarks.closing_the_loop --seeds 3 --control --json",
    )
    parser.add_argument("--start-sizes", type=int, nargs="+", default=[SMALL_DATASET_SIZE], help="transitions of the reset-only start data")
    parser.add_argument("--seeds", type=int, default=1, help=f"data seeds per start size ({SMALL_DATASET_SEED}, {SMALL_DATASET_SEED} + 1, ...)")
    parser.add_argument("--models", nargs="+", choices=sorted(MEMBERS), default=list(MEMBERS), help="which agents run the loop (and the control)")
    parser.add_argument("--iterations", type=int, default=LOOP_ITERATIONS)
    parser.add_argument("--train-steps", type=int, default=LOOP_TRAIN_STEPS)
    parser.add_argument("--max-steps", type=int, default=MAX_EPISODE_STEPS, help="episode length limit (1000 is the real task)")
    parser.add_argument(
        "--stop-at-success", action="store_true", help="end a loop at its first episode that lasts --max-steps (iterations to success need no more)"
    )
    parser.add_argument(
        "--control", action="store_true", help="also train agents on the start data alone with the seeds of iterations 2.. (see the description)"
    )
    parser.add_argument(
        "--control-only", action="store_true", help="run only the control's agents, not the loops (the cheap part: their episodes are short when they fall)"
    )
    parser.add_argument("--guided", action="store_true", help="also run the ensemble's loop with collection guided by disagreement (see the description)")
    parser.add_argument(
        "--guided-box",
        type=float,
        nargs=4,
        default=[float(v) for v in START_BOX],
        metavar=("X", "ANGLE", "X_DOT", "ANGLE_DOT"),
        help="half-widths of the box the guided loop's candidate starts are drawn from",
    )
    parser.add_argument("--guided-only", action="store_true", help="run only the guided loop (with --guided's settings), not the plain one")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    args.guided = args.guided or args.guided_only
    if args.guided_only:
        args.models, args.control = [], False
    args.control = args.control or args.control_only
    torch.set_num_threads(1)  # tiny networks: one thread is fastest (see benchmarks/separation.py)

    def say(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr)

    report = {"iterations": args.iterations, "train_steps": args.train_steps, "max_steps": args.max_steps, "runs": []}
    if args.guided:
        report["guided_episode_steps"] = GUIDED_EPISODE_STEPS
        report["guided_box"] = args.guided_box
    for size in args.start_sizes:
        for data_seed in range(SMALL_DATASET_SEED, SMALL_DATASET_SEED + args.seeds):
            start = collect_reset_only(size, seed=data_seed, progress=False)
            for kind in args.models:
                run = {"start_size": size, "data_seed": data_seed, "model": kind, "collection": "none" if args.control_only else "plain"}
                if not args.control_only:
                    run.update(run_loop(kind, start, args.iterations, args.train_steps, args.max_steps, args.stop_at_success))
                if args.control:
                    run["control_returns"] = run_control(kind, start, args.iterations, args.train_steps, args.max_steps)
                report["runs"].append(run)
                say(
                    f"{size} start transitions, data seed {data_seed}, {kind}: loop returns {run.get('returns', '-')} in {run.get('seconds', '-')} s"
                    + (f"; control {run['control_returns']}" if args.control else "")
                )
            if args.guided:
                run = {
                    "start_size": size,
                    "data_seed": data_seed,
                    "model": "ensemble",
                    "collection": "guided",
                    **run_guided_loop(start, args.iterations, args.train_steps, args.max_steps, tuple(args.guided_box)),
                }
                report["runs"].append(run)
                say(f"{size} start transitions, data seed {data_seed}, ensemble, guided: returns {run['returns']} in {run['seconds']} s")
    plain = [run for run in report["runs"] if run["collection"] == "plain"]
    seconds = {kind: [run["seconds"] for run in plain if run["model"] == kind] for kind in args.models if not args.control_only}
    if args.guided:
        seconds["ensemble, guided"] = [run["seconds"] for run in report["runs"] if run["collection"] == "guided"]
    report["median_loop_seconds"] = {name: statistics.median(values) for name, values in seconds.items()}
    if args.control:
        control = [value for run in report["runs"] if "control_returns" in run for value in run["control_returns"].values()]
        report["control_agents_that_fell"] = f"{sum(value < args.max_steps for value in control)} of {len(control)}"
    if args.guided:
        report["iterations_to_success"] = {
            collection: {
                run["data_seed"]: run["iterations_to_success"] for run in report["runs"] if run["model"] == "ensemble" and run["collection"] == collection
            }
            for collection in ("plain", "guided")
            if any(run["collection"] == collection for run in report["runs"])
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
