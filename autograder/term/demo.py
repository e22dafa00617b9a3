"""The main job: release the notebooks, autograde the example submissions, print the grade table.

    run, mismatches = demo()

Works in a scratch course directory (grading/demo/ by default) with a copy of solutions/, so the
course's own release and gradebook are not touched: nbgrader generates the release and records
the assignments, the examples are built from that release and the solutions
(autograder.examples), and `grade` autogrades them. The table shows, per student, the
automatically graded points of each notebook handed in and the points expected: full marks for
the reference, the correct alternatives and the victim, zero for the blank release, for each
mistake the full marks less the points of the checks it should fail, and for each cheat the points
of its twin (the blank release or a mistake): a cheat that scores more is a hole in grading.

The cheats (autograder.examples.cheats) are graded only with the sandbox on: without it, student
code can read the grader's files by design, and some cheats would succeed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from autograder.examples import Example, build_examples, write_examples
from autograder.examples.build import read
from autograder.examples.cheats import LEFTOVER_MARKER
from autograder.nbgrader_glue.course import Course, released_copy
from autograder.term.grading import GradingRun, format_table, grade

DEMO_SECRET = "mbrl-course-demo"


def demo(
    *,
    course: Course | None = None,
    workdir: Path | None = None,
    jobs: int = 2,
    progress: bool = True,
    stream: TextIO | None = None,
    students: Iterable[str] | None = None,
    scheduler: str | None = None,
) -> tuple[GradingRun, list[str]]:
    """Grade the bundled examples in a scratch copy of the course; return the run and the students
    whose automatic points differ from the expected ones (for a cheat: exceed its twin's) or who
    have a notebook that was not graded; processes that cheats left behind are listed there too.
    `students` grades only the examples of these names; `scheduler` names a Dask cluster to grade
    on (default: a local one of `jobs` workers)."""
    course = course or Course()
    workdir = Path(workdir) if workdir is not None else course.grading / "demo"
    if workdir.exists():
        shutil.rmtree(workdir)
    print(f"Releasing {', '.join(course.assignments)} into {workdir / course.release_directory} (nbgrader generate_assignment)...", file=stream, flush=True)
    scratch = released_copy(course, workdir, gradebook_url=course.gradebook_url, secret_file=course.secret_file)
    if course.secret_file is None:
        # The checks' hidden inputs come from the course secret: a fixed one makes the demo's table
        # the same at every run (a real course's secret is random, made on first use).
        scratch.secret_path.parent.mkdir(parents=True, exist_ok=True)
        scratch.secret_path.write_text(DEMO_SECRET + "\n")
    stale = stale_release(course, scratch)
    examples = build_examples(scratch, **({} if scratch.limits.sandbox else {"cheats": ()}))
    if students is not None:
        wanted = set(students)
        examples = [example for example in examples if example.student in wanted]
    submissions = write_examples(examples, workdir / "submissions")
    print(f"Grading {len(examples)} example students in {submissions} with {jobs} job(s)...", file=stream, flush=True)
    run = grade(submissions, course=scratch, jobs=jobs, progress=progress, scheduler=scheduler)
    expected = {example.student: expected_auto_points(example, scratch) for example in examples}
    graded = {r.student: r.auto_total for r in run.students}
    # A notebook that could not be graded counts too, even when its zero happens to be expected,
    # except for a cheat that broke its own notebook (grades.csv then says "failed", no points).
    failed = {r.student for r in run.students if any(status != "graded" for status in r.statuses.values())}
    mismatches = sorted(
        example.student
        for example in examples
        if points_mismatch(example, graded.get(example.student), expected[example.student], failed=example.student in failed)
        or (example.student in failed and example.kind != "cheat")
    )
    print(format_table(run, expected, mismatched=set(mismatches)), file=stream, flush=True)
    mismatches += [f"process left behind by a cheat: {pid} {command}" for pid, command in leftover_processes()]
    print(f"\n{len(run.students)} students graded in {run.seconds:.0f} s; grades: {run.csv_path}; feedback: {scratch.feedback}", file=stream, flush=True)
    if stale:
        print(
            "Note: notebooks/ differs from a fresh release of solutions/ (" + ", ".join(stale) + "): run `python -m autograder release`.",
            file=stream,
            flush=True,
        )
    cheats = [example for example in examples if example.kind == "cheat"]
    if cheats:
        gained = [c.student for c in cheats if c.student in graded and graded[c.student] > expected[c.student] + 1e-9]
        print(
            f"{len(cheats)} cheats graded between the victims: "
            + ("none scored more than its twin." if not gained else f"scored MORE than their twin: {', '.join(gained)}."),
            file=stream,
            flush=True,
        )
    elif not scratch.limits.sandbox:
        print("The cheats were not graded: without the sandbox student code may read the grader's files.", file=stream, flush=True)
    print(
        "Every student got the expected points." if not mismatches else f"Unexpected points, or notebooks not graded, for: {', '.join(mismatches)}",
        file=stream,
        flush=True,
    )
    return run, mismatches


def points_mismatch(example: Example, got: float | None, want: float, *, failed: bool = False) -> bool:
    """A student who was not graded, or whose points are not the expected ones: for a cheat, more
    than its twin's (or fewer, unless the cheat says why it may lose some or broke its notebook so
    that nbgrader could not grade it)."""
    if got is None:
        return True
    if example.kind == "cheat":
        return got > want + 1e-9 or (got < want - 1e-9 and not (example.source.may_score_less or failed))
    return abs(got - want) > 1e-9


def leftover_processes() -> list[tuple[int, str]]:
    """Processes still running whose command line carries the cheats' LEFTOVER_MARKER."""
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if LEFTOVER_MARKER in command and int(name) != os.getpid():
            found.append((int(name), command[:200]))
    return found


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
