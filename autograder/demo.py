"""The main job: release the notebooks, autograde the example submissions, print the grade table.

    run, mismatches = demo()

Works in a scratch course directory (grading/demo/ by default) with a copy of solutions/, so the
course's own release and gradebook are not touched: nbgrader generates the release and records
the assignments, the examples are built from that release and the solutions
(autograder.examples), and `grade` autogrades them. The table shows, per student, the
automatically graded points of each notebook handed in and the points expected: full marks for
the reference and for the correct alternatives, zero for the blank release, and for each mistake
the full marks less the points of the checks it should fail.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TextIO

from autograder.course import Course, release
from autograder.examples import Example, build_examples, write_examples
from autograder.examples.build import read
from autograder.grading import GradingRun, format_table, grade


def demo(*, course: Course | None = None, workdir: Path | None = None, jobs: int = 2, progress: bool = True, stream: TextIO | None = None) -> tuple[GradingRun, list[str]]:
    """Grade the bundled examples in a scratch copy of the course; return the run and the students
    whose automatic points differ from the expected ones or who have a notebook that was not graded."""
    course = course or Course()
    workdir = Path(workdir) if workdir is not None else course.grading / "demo"
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(course.source, workdir / course.source_directory)
    scratch = Course(root=workdir, source_directory=course.source_directory, release_directory=course.release_directory, limits=course.limits)
    print(f"Releasing {', '.join(scratch.assignments)} into {scratch.release} (nbgrader generate_assignment)...", file=stream, flush=True)
    release(course=scratch)
    stale = stale_release(course, scratch)
    examples = build_examples(scratch)
    submissions = write_examples(examples, workdir / "submissions")
    print(f"Grading {len(examples)} example students in {submissions} with {jobs} job(s)...", file=stream, flush=True)
    run = grade(submissions, course=scratch, jobs=jobs, progress=progress)
    expected = {example.student: expected_auto_points(example, scratch) for example in examples}
    graded = {r.student: r.auto_total for r in run.students}
    # a notebook that could not be graded counts too, even when its zero happens to be expected
    not_graded = {r.student for r in run.students if any(status != "graded" for status in r.statuses.values())}
    mismatches = sorted(s for s in expected if s not in graded or abs(graded[s] - expected[s]) > 1e-9 or s in not_graded)
    print(format_table(run, expected), file=stream, flush=True)
    print(f"\n{len(run.students)} students graded in {run.seconds:.0f} s; grades: {run.csv_path}; feedback: {scratch.feedback}", file=stream, flush=True)
    if stale:
        print("Note: notebooks/ differs from a fresh release of solutions/ (" + ", ".join(stale) + "): run `python -m autograder release`.", file=stream, flush=True)
    print("Every student got the expected points." if not mismatches else f"Unexpected points, or notebooks not graded, for: {', '.join(mismatches)}", file=stream, flush=True)
    return run, mismatches


def cell_points(course: Course, assignment: str, notebook: str) -> dict[str, float]:
    """Automatically graded cells of a release notebook and their points."""
    points = {}
    for cell in read(course.release_notebook(assignment, notebook)).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            points[meta["grade_id"]] = float(meta["points"])
    return points


def expected_auto_points(example: Example, course: Course) -> float:
    total = 0.0
    for assignment, notebook in example.notebooks:
        points = cell_points(course, assignment, notebook)
        lost = example.lost.get(notebook, ())
        total += 0.0 if "*" in lost else sum(p for cell, p in points.items() if cell not in lost)
    return total


def stale_release(course: Course, fresh: Course) -> list[str]:
    """Release notebooks of `course` whose cells differ from a fresh release."""
    stale = []
    for assignment in fresh.assignments:
        for notebook in fresh.notebooks(assignment):
            committed = course.release_notebook(assignment, notebook)
            if not committed.is_file():
                stale.append(f"{notebook} missing")
                continue
            ours = [(c.cell_type, c.source) for c in read(committed).cells]
            theirs = [(c.cell_type, c.source) for c in read(fresh.release_notebook(assignment, notebook)).cells]
            if ours != theirs:
                stale.append(notebook)
    return stale
