"""What a student whose code never returns costs the grader: wall time and CPU time, in one run.

    python -m benchmarks.looping --json

Grades, with the real pipeline (nbgrader, the sandbox, the checker; one job), one submission of
notebook 1 per scenario, each built from the reference solution:

- `loop-in-cem-plan`: `while True: pass` at the top of `cem_plan`;
- `sleep-in-training-cell`: `time.sleep(10**6)` at the top of the course's training cell (its own
  copy in the submission: a student may edit it);
- `loop-in-every-graded-function`: `while True: pass` at the top of every function and method the
  student writes (the model's and the planner's).

For each: the wall seconds of the whole grading run (start-up, nbgrader and feedback included), the
CPU seconds of its whole process tree (benchmarks.cpu.TreeClock), the
load average before it, and the points. Target: each under 120 s of wall time in all.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from autograder.examples import Example, build_examples, write_examples
from autograder.nbgrader_glue.course import Course, released_copy
from autograder.term.grading import grade
from benchmarks.cpu import TreeClock, machine_cpu_seconds

NOTEBOOK = "01_deterministic_cem"
LOOP = "while True:\n    pass"
SLEEP = "import time\ntime.sleep(10**6)"
TARGET_SECONDS = 120


def _solution_cells(nb: NotebookNode):
    return [cell for cell in nb.cells if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")]


def at_top_of_functions(code: str, names: set[str] | None = None) -> Callable[[NotebookNode], NotebookNode]:
    """An edit: `code` as the first statement of every function (or those named) in the answer cells."""

    def edit(nb: NotebookNode) -> NotebookNode:
        found = set()
        for cell in _solution_cells(nb):
            lines = cell.source.split("\n")
            functions = [
                node
                for node in ast.walk(ast.parse(cell.source))
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (names is None or node.name in names)
            ]
            for function in sorted(functions, key=lambda node: node.body[0].lineno, reverse=True):
                first = function.body[0]
                indent = " " * first.col_offset
                lines[first.lineno - 1 : first.lineno - 1] = [indent + line for line in code.split("\n")]
                found.add(function.name)
            cell.source = "\n".join(lines)
        if names is not None and found != names:
            raise ValueError(f"no answer cell defines {sorted(names - found)}")
        return nb

    return edit


def at_top_of_cell(code: str, cell_id: str) -> Callable[[NotebookNode], NotebookNode]:
    """An edit: `code` as the first lines of the cell with this id."""

    def edit(nb: NotebookNode) -> NotebookNode:
        cell = next((cell for cell in nb.cells if cell.get("id") == cell_id), None)
        if cell is None:
            raise ValueError(f"the notebook has no cell {cell_id!r}")
        cell.source = code + "\n" + cell.source
        return nb

    return edit


SCENARIOS: dict[str, Callable[[NotebookNode], NotebookNode]] = {
    "loop-in-cem-plan": at_top_of_functions(LOOP, {"cem_plan"}),
    "sleep-in-training-cell": at_top_of_cell(SLEEP, "code-07"),
    "loop-in-every-graded-function": at_top_of_functions(LOOP),
}


def looping_times(*, course: Course | None = None, notebook: str = NOTEBOOK, scenarios: dict[str, Callable] | None = None, workdir: Path | None = None) -> dict:
    """Grade one submission of `notebook` per scenario (the reference, edited), one after the other."""
    course = course or Course()
    scenarios = scenarios if scenarios is not None else SCENARIOS
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="looping-benchmark-"))
    clock = TreeClock()
    report = {"notebook": notebook, "target_seconds": TARGET_SECONDS, "cpu_clock": clock.source, "scenarios": {}}
    try:
        root = workdir / "course"
        scratch = released_copy(course, root)
        reference = next(e for e in build_examples(scratch, mistakes=(), alternatives=(), cheats=(), victim=False) if e.student == "reference")
        key = next(key for key in reference.notebooks if key[1] == notebook)
        for name, edit in scenarios.items():
            submission = nbformat.reads(nbformat.writes(reference.notebooks[key]), as_version=4)
            folder = write_examples([Example(name, "benchmark", {key: edit(submission)})], workdir / f"submissions-{name}")
            load, cpu, machine, started = os.getloadavg(), clock.seconds(), machine_cpu_seconds(), time.perf_counter()
            run = grade(folder, course=scratch, jobs=1, progress=False)
            seconds, cpu, machine = time.perf_counter() - started, clock.seconds() - cpu, machine_cpu_seconds() - machine
            student = run.students[0]
            report["scenarios"][name] = {
                "wall_seconds": round(seconds, 1),
                "cpu_seconds": round(cpu, 1),
                "machine_cpu_seconds": round(machine, 1),
                "student_seconds": round(student.seconds, 1),
                "load_average_before": [round(x, 2) for x in load],
                "points": student.score(notebook).auto_points,
                "max_points": student.score(notebook).auto_max_points,
                "within_target": seconds <= TARGET_SECONDS,
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.looping", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS), help="which students to grade (default: all three)")
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    args = parser.parse_args(argv)
    report = looping_times(scenarios={name: SCENARIOS[name] for name in args.scenarios})
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
