"""What a fresh process costs the checker, and what it costs a whole notebook's grading: a new runner
that runs the notebook's cells again (how every restart, and every reproducibility question, worked
before the fork server) against a new copy of the runner's snapshot.

    OMP_NUM_THREADS=1 python -m benchmarks.restart_cost [--notebook 01_deterministic_cem] [--repeats 3] [--grade]

Prints JSON, medians: the wall time of a new runner with its cells replayed and of a new copy;
with --grade, the reference submission of the notebook graded by `run_and_check` both ways ("replay":
a Runner that never snapshots, so that each restart starts a new sandbox and runs the cells again),
wall and CPU seconds of this process and every process it started, dead ones included (a cpuacct
cgroup around the benchmark where one can be made, else this process and its reaped children).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from unittest import mock

import nbformat

from autograder.checker.core import Runner
from autograder.checker.notebook import is_graded_code, not_run_cells, run_and_check
from autograder.protocol.limits import Limits
from benchmarks.cpu import TreeClock

ROOT = Path(__file__).resolve().parent.parent


class ReplayingRunner(Runner):
    """The runner as it was before the fork server: no snapshot, a restart is a new sandbox with
    every cell run again."""

    def snapshot(self) -> None:
        self._ensure()

    def restart(self) -> None:
        if self.process is not None:
            self.process.kill()
        self.process = self.channel = None


def notebooks(notebook: str):
    from autograder.examples.build import reference_submission

    source = nbformat.read(ROOT / "solutions" / notebook / f"{notebook}.ipynb", as_version=4)
    release = nbformat.read(ROOT / "notebooks" / notebook / f"{notebook}.ipynb", as_version=4)
    return source, reference_submission(source, release)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notebook", default="01_deterministic_cem")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grade", action="store_true", help="also grade the notebook's reference submission both ways")
    args = parser.parse_args(argv)
    clock = TreeClock()
    source, submission = notebooks(args.notebook)
    skipped = not_run_cells(source)
    cells = [c.source for c in submission.cells if c.cell_type == "code" and c.source.strip() and not is_graded_code(c) and c.get("id") not in skipped]
    replay_wall, copy_wall = [], []
    with Runner(Limits()) as runner:
        for text in cells:
            runner.run_cell(text, timeout=600)
        for _ in range(args.repeats):
            with ReplayingRunner(Limits()) as cold:
                cold.cells = list(cells)
                started = time.perf_counter()
                cold._ensure()
                replay_wall.append(time.perf_counter() - started)
        runner.snapshot()
        for _ in range(args.repeats):
            started = time.perf_counter()
            runner.restart()
            runner.snapshot()  # the new copy is ready to answer
            copy_wall.append(time.perf_counter() - started)
    report = {
        "notebook": args.notebook,
        "cells": len(cells),
        "repeats": args.repeats,
        "restart_wall_s": {"new_runner_with_replay": round(statistics.median(replay_wall), 3), "new_copy_of_snapshot": round(statistics.median(copy_wall), 4)},
        "load_1min": os.getloadavg()[0],
    }
    if args.grade:
        report["grading"] = {"cpu_clock": clock.source}
        for name, runner_class in (("replay", ReplayingRunner), ("fork", Runner)):
            nb = nbformat.reads(nbformat.writes(submission), as_version=4)
            cpu, started = clock.seconds(), time.perf_counter()
            with mock.patch("autograder.checker.notebook.Runner", runner_class):
                graded = run_and_check(nb, notebook=args.notebook, student="benchmark", secret="benchmark", limits=Limits(), not_run=skipped)
            report["grading"][name] = {
                "wall_s": round(time.perf_counter() - started, 1),
                "cpu_s": round(clock.seconds() - cpu, 1),
                "passed": sum(v.passed for v in graded.verdicts.values()),
                "checks": len(graded.verdicts),
            }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
