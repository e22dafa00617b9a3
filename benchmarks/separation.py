"""Displaced starts and planning horizons: where the three reference agents differ, and why.

    python -m benchmarks.separation --json
    python -m benchmarks.separation --max-steps 200 --sweep-max-steps 40 --json   # shorter episodes

Trains each reference model on the shipped dataset once per training seed and runs its CEM agent
from every start of mbrl_helpers.DISPLACED_STARTS (all recoverable by LQR). Then sweeps the
planning horizon with the deterministic model (training seed 0) and with the true simulator as
the model, from a few of those starts: a horizon at which the simulator also fails is a planner
limit, one at which only the learned model fails is model error. The simulator is slow (0.3 to
1 s per decision at horizon 5, three times that at 15), hence the sweep's shorter episodes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from benchmarks.common import MODEL_KINDS, build_agent, train_reference
from mbrl_helpers import CEM_SETTINGS, DISPLACED_STARTS, SimulatorModel, evaluate_displaced_starts, horizon_sweep, load_dataset
from mbrl_reference import cem_plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.separation", description=__doc__.split("\n\n")[0], epilog="example: python -m benchmarks.separation --json"
    )
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per model (seeds 0..N-1)")
    parser.add_argument("--models", nargs="+", choices=MODEL_KINDS, default=list(MODEL_KINDS))
    parser.add_argument("--max-steps", type=int, default=1000, help="episode length limit from the displaced starts (1000 is the real task)")
    parser.add_argument("--horizons", type=int, nargs="+", default=[5, 10, 15], help="planning horizons of the sweep")
    parser.add_argument("--sweep-starts", type=int, nargs="+", default=[0, 2], help="indices into DISPLACED_STARTS the sweep runs from")
    parser.add_argument("--sweep-max-steps", type=int, default=200, help="episode length limit of the sweep")
    parser.add_argument("--train-steps", type=int, default=None, help="override the training length (smoke tests only)")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    # The networks are tiny: with torch's default two threads on a busy 2-core machine, each decision
    # waited in OpenMP's barrier (about 135 ms against 6 to 13 ms on one thread).
    torch.set_num_threads(1)

    dataset = load_dataset()
    trained = {}  # (kind, seed) -> model, so the sweep reuses the table's deterministic model

    def trained_model(kind: str, seed: int):
        if (kind, seed) not in trained:
            trained[kind, seed] = train_reference(kind, dataset, seed=seed, steps=args.train_steps, progress=not args.json)[0]
        return trained[kind, seed]

    factories = {kind: (lambda seed, kind=kind: build_agent(kind, trained_model(kind, seed))) for kind in args.models}
    report = {
        "transitions": int(len(dataset["states"])),
        "cem_settings": CEM_SETTINGS,
        "starts": [list(start) for start in DISPLACED_STARTS],
        "training_seeds": list(range(args.seeds)),
        "max_steps": args.max_steps,
    }
    start_time = time.perf_counter()
    table = evaluate_displaced_starts(factories, training_seeds=range(args.seeds), max_steps=args.max_steps, progress=not args.json)
    report["displaced_starts"] = {kind: summary.as_dict() for kind, summary in table.items()}
    report["displaced_starts_seconds"] = round(time.perf_counter() - start_time, 1)
    if not args.json:
        for kind, summary in table.items():
            print(f"{kind}: success rate {summary.success_rate:.2f}, mean return {summary.mean_return:.0f}", file=sys.stderr)

    sweep_starts = [DISPLACED_STARTS[i] for i in args.sweep_starts]
    report["horizon_sweep"] = {"starts": [list(start) for start in sweep_starts], "max_steps": args.sweep_max_steps}
    sweep_models = {"deterministic": trained_model("deterministic", 0).predict_delta, "simulator": SimulatorModel().predict_delta}
    for name, predict_delta in sweep_models.items():
        start_time = time.perf_counter()
        returns = horizon_sweep(cem_plan, predict_delta, horizons=args.horizons, starts=sweep_starts, max_steps=args.sweep_max_steps, progress=not args.json)
        report["horizon_sweep"][name] = {str(horizon): horizon_returns for horizon, horizon_returns in returns.items()}
        report["horizon_sweep"][f"{name}_seconds"] = round(time.perf_counter() - start_time, 1)
        if not args.json:
            print(f"horizon sweep, {name}: {report['horizon_sweep'][name]}", file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
