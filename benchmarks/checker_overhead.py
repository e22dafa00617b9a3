"""What trusted grading costs: grading with the checker against grading with in-kernel checks, in one run.

    python -m benchmarks.checker_overhead --students 3 --json

1. Grading time. The in-kernel grader is the course's last release before the checker (git commit
   `BASELINE_COMMIT`, unpacked with `git archive` into a scratch folder and run from there with
   this same Python environment); the checker is this working tree. Each round grades one complete
   reference submission (all three notebooks, each version with its own notebooks) with the old
   grader, then with the new one, one job each, so both see the same machine conditions.
   Reported: the median seconds per submission of each, and their ratio (target: <= 1.3).
2. The checker-owned episode. The same agent (the reference planner and deterministic model with
   the course's fixed weights) decides the same states once in this process and once in a
   sandboxed runner through the checker's protocol; the difference of the medians, times 1000, is
   what the protocol adds to a 1000-step return check (target: <= 2 s).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "19d4408"  # the last release whose hidden tests ran in the student's kernel

GRADE_ONE = """
import json, shutil, sys, time
from pathlib import Path
from autograder.nbgrader_glue.course import Course, release
from autograder.examples import build_examples, write_examples
from autograder.term.grading import grade
source, workdir = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(source / "solutions", workdir / "solutions")
course = Course(root=workdir)
release(course=course)
try:
    examples = build_examples(course, mistakes=(), alternatives=(), cheats=(), victim=False)
except TypeError:  # the in-kernel release had no cheat examples
    examples = build_examples(course, mistakes=(), alternatives=())
reference = next(e for e in examples if e.student == "reference")
write_examples([reference], workdir / "submissions")
run = grade(workdir / "submissions", course=course, jobs=1, progress=False)
student = run.students[0]
print(json.dumps({"seconds": student.seconds, "points": student.auto_total}))
"""


def unpack_baseline(target: Path, commit: str = BASELINE_COMMIT) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True, check=True).stdout
    target.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def grade_once(code_root: Path, workdir: Path) -> dict:
    """Grade one complete reference submission with the grader found in `code_root`."""
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHONPATH": str(code_root), "HOME": str(workdir)}
    done = subprocess.run([sys.executable, "-c", GRADE_ONE, str(code_root), str(workdir)], capture_output=True, text=True, env=env, cwd=workdir.parent)
    if done.returncode != 0:
        raise RuntimeError(f"grading with {code_root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def grading_times(rounds: int, workdir: Path) -> dict:
    baseline = unpack_baseline(workdir / "baseline")
    old, new, points = [], [], {"in_kernel": [], "checker": []}
    for i in range(rounds):
        for name, code_root, times in (("in_kernel", baseline, old), ("checker", ROOT, new)):
            result = grade_once(code_root, workdir / f"{name}-{i}")
            times.append(result["seconds"])
            points[name].append(result["points"])
    return {
        "baseline_commit": BASELINE_COMMIT,
        "in_kernel_seconds": [round(s, 1) for s in old],
        "checker_seconds": [round(s, 1) for s in new],
        "in_kernel_median_seconds": round(statistics.median(old), 1),
        "checker_median_seconds": round(statistics.median(new), 1),
        "checker_over_in_kernel": round(statistics.median(new) / statistics.median(old), 3),
        "points": points,
    }


def episode_overhead(steps: int = 300) -> dict:
    """Seconds per decision in this process and through the runner, for the same agent and states."""
    import torch

    from autograder.checker.core import Runner, model_spec
    from autograder.checker.checks.common import trained_net
    from autograder.nbgrader_glue.course import Course
    from autograder.examples.build import read, reference_submission
    from autograder.checker.fixtures import load_fixture, load_weights
    from mbrl_helpers import MPCAgent, make_env, seed_everything
    from mbrl_reference import DeterministicModel, cem_plan

    torch.set_num_threads(1)
    name = "01_deterministic_cem"
    course = Course()
    nb = reference_submission(read(course.source_notebook(name, name)), read(course.release_notebook(name, name)))
    definitions = [c.source for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade_id") in ("setup", "deterministic-model", "cem-plan")]
    env = make_env()
    state, _ = env.reset(seed=0)
    states = []
    for _ in range(steps):  # the states of a balancing episode (LQR-like: the reference agent itself)
        states.append(state)
        state, *_ = env.step(np.zeros(1, dtype=np.float32))
        if abs(state[1]) > 0.15:
            state, _ = env.reset(seed=len(states))
    model = load_weights(DeterministicModel(), load_fixture(name)["trained_state_dict"]).eval()
    agent = MPCAgent(cem_plan, model.predict_delta, device="cpu")
    local, remote = [], []
    with Runner(sandbox=True) as runner:
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
        description="Grading time with the checker against in-kernel checks (the previous release), and the per-step cost of the checker-owned episode.",
        epilog="example:\n  python -m benchmarks.checker_overhead --rounds 3 --json\n  python -m benchmarks.checker_overhead --episode-only --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="complete submissions graded by each grader, interleaved (default: 3)")
    parser.add_argument("--steps", type=int, default=300, help="decisions timed for the episode overhead (default: 300)")
    parser.add_argument("--episode-only", action="store_true", help="only the episode overhead (no grading)")
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    args = parser.parse_args(argv)
    report = {"episode": episode_overhead(args.steps)}
    if not args.episode_only:
        workdir = Path(tempfile.mkdtemp(prefix="checker-overhead-"))
        try:
            report["grading"] = grading_times(args.rounds, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
