"""Milliseconds per CEM decision: one model against the K = 5 ensemble, at the reference settings.

    python -m benchmarks.planning_speed --json

Decisions alternate between the two planners (single, ensemble, single, ...) from the same states,
so load from other processes on a shared machine falls on both alike; medians are reported.
Targets on a 2-core CPU: single-model median <= 15 ms, ensemble_over_single <= 1.5.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from benchmarks.common import build_agent, build_model
from mbrl_helpers import CEM_SETTINGS, N_MEMBERS, load_dataset, seed_everything


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.planning_speed", description=__doc__.split("\n\n")[0], epilog="example: python -m benchmarks.planning_speed --decisions 200 --json")
    parser.add_argument("--decisions", type=int, default=100, help="timed decisions per planner (at least 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed decisions first")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    if args.decisions < 50:
        parser.error("--decisions must be at least 50 for a stable median")

    seed_everything(0)
    # Timing does not depend on the weights, so untrained models do; states are real ones from the data.
    agents = {kind: build_agent(kind, build_model(kind).eval()) for kind in ("deterministic", "ensemble")}
    states = load_dataset()["states"][: args.warmup + args.decisions]
    times = {kind: [] for kind in agents}
    for i, state in enumerate(states):
        for kind, agent in agents.items():
            start = time.perf_counter()
            agent.plan(state)
            if i >= args.warmup:
                times[kind].append(time.perf_counter() - start)
    single_ms = float(np.median(times["deterministic"]) * 1000)
    ensemble_ms = float(np.median(times["ensemble"]) * 1000)
    report = {
        "single_median_ms": round(single_ms, 3),
        "ensemble_median_ms": round(ensemble_ms, 3),
        "ensemble_over_single": round(ensemble_ms / single_ms, 3),
        "decisions": args.decisions,
        "n_members": N_MEMBERS,
        "cem_settings": CEM_SETTINGS,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
