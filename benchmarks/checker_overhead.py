"""What the checker's protocol adds to an episode it runs through the student's runner.

    python -m benchmarks.checker_overhead --json

The same agent (the reference planner and deterministic model with the course's fixed weights)
decides the same states once in this process and once in a sandboxed runner through the checker's
protocol, interleaved so that load falls on both alike; the difference of the medians, times 1000,
is what the protocol adds to a 1000-step return check (target: <= 2 s).

(It no longer compares grading with the checker against the in-kernel grader of commit 19d4408:
that release graded three notebooks and ran every course cell, so the ratio measured the fourth
notebook and the demo cells, not the checker. `benchmarks.grading` reports what grading costs.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def episode_overhead(steps: int = 300) -> dict:
    """Seconds per decision in this process and through the runner, for the same agent and states."""
    import torch

    from autograder.checker.checks.common import trained_net
    from autograder.checker.core import Runner, model_spec
    from autograder.checker.fixtures import load_fixture
    from autograder.examples.build import read, reference_submission
    from autograder.nbgrader_glue.course import Course
    from mbrl_helpers import MPCAgent, make_env, seed_everything
    from mbrl_reference import DeterministicModel, cem_plan

    torch.set_num_threads(1)
    name = "01_deterministic_cem"
    course = Course()
    nb = reference_submission(read(course.source_notebook(name, name)), read(course.release_notebook(name, name)))
    definitions = [
        c.source for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade_id") in ("setup", "deterministic-model", "cem-plan")
    ]
    env = make_env()
    state, _ = env.reset(seed=0)
    states = []
    for _ in range(steps):  # the states of a balancing episode (LQR-like: the reference agent itself)
        states.append(state)
        state, *_ = env.step(np.zeros(1, dtype=np.float32))
        if abs(state[1]) > 0.15:
            state, _ = env.reset(seed=len(states))
    model = DeterministicModel()
    model.load_state_dict(load_fixture(name)["trained_state_dict"])
    model.eval()
    agent = MPCAgent(cem_plan, model.predict_delta, device="cpu")
    local, remote = [], []
    with Runner() as runner:
        for source in definitions:
            runner.run_cell(source, timeout=120)
        runner.start_agent("cem_plan", model_spec("DeterministicModel", seed=0, net=trained_net(name), eval=True), seed=0)
        seed_everything(0)
        for state in states:  # interleaved, so that load falls on both alike
            start = time.perf_counter()
            agent.plan(state)
            local.append(time.perf_counter() - start)
            start = time.perf_counter()
            runner.act(state, timeout=60)
            remote.append(time.perf_counter() - start)
    overhead = statistics.median(remote) - statistics.median(local)
    return {
        "decisions": steps,
        "in_process_median_ms": round(1000 * statistics.median(local), 3),
        "through_runner_median_ms": round(1000 * statistics.median(remote), 3),
        "overhead_per_step_ms": round(1000 * overhead, 3),
        "overhead_per_1000_steps_s": round(overhead * 1000, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.checker_overhead",
        description="The per-step cost of an episode the checker runs through the student's runner.",
        epilog="example:\n  python -m benchmarks.checker_overhead --steps 300 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=300, help="decisions timed (default: 300)")
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    args = parser.parse_args(argv)
    report = {"episode": episode_overhead(args.steps)}
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
