"""Time per CEM decision: one model against the K = 5 ensemble, at the reference settings.

    python -m benchmarks.planning_speed --json

Torch runs on one thread, as in the notebooks and the grader's runner. Each decision is timed twice:
CPU time of this process (time.process_time: the work done, which other processes on a shared
machine do not stretch) and wall time (what a student waits). Decisions alternate between the two
planners (single, ensemble, single, ...) from the same states, so load falls on both alike;
medians are reported. The course's targets, on CPU time, on a 2-core CPU: single-model median
<= 15 ms, `ensemble_over_single_cpu` <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from benchmarks.common import build_agent, build_model
from mbrl_helpers import CEM_SETTINGS, N_MEMBERS, load_dataset, seed_everything

TARGET_RATIO = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.planning_speed",
        description=__doc__.split("\n\n")[0],
        epilog="example: python -m benchmarks.planning_speed --decisions 200 --json",
    )
    parser.add_argument("--decisions", type=int, default=100, help="timed decisions per planner (at least 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed decisions first")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    if args.decisions < 50:
        parser.error("--decisions must be at least 50 for a stable median")

    torch.set_num_threads(1)  # as the notebooks' setup cells and the runner do
    seed_everything(0)
    # Timing does not depend on the weights, so untrained models do; states are real ones from the data.
    agents = {kind: build_agent(kind, build_model(kind).eval()) for kind in ("deterministic", "ensemble")}
    states = load_dataset()["states"][: args.warmup + args.decisions]
    cpu = {kind: [] for kind in agents}
    wall = {kind: [] for kind in agents}
    for i, state in enumerate(states):
        for kind, agent in agents.items():
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            agent.plan(state)
            if i >= args.warmup:
                cpu[kind].append(time.process_time() - start_cpu)
                wall[kind].append(time.perf_counter() - start_wall)

    def ms(values) -> float:
        return round(float(np.median(values) * 1000), 3)

    single_cpu, ensemble_cpu = ms(cpu["deterministic"]), ms(cpu["ensemble"])
    single_wall, ensemble_wall = ms(wall["deterministic"]), ms(wall["ensemble"])
    report = {
        "single_median_cpu_ms": single_cpu,
        "ensemble_median_cpu_ms": ensemble_cpu,
        "ensemble_over_single_cpu": round(ensemble_cpu / single_cpu, 3),
        "single_median_wall_ms": single_wall,
        "ensemble_median_wall_ms": ensemble_wall,
        "ensemble_over_single_wall": round(ensemble_wall / single_wall, 3),
        "target_ensemble_over_single_cpu": TARGET_RATIO,
        "decisions": args.decisions,
        "n_members": N_MEMBERS,
        "cem_settings": CEM_SETTINGS,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
