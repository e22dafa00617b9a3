"""What a student runs before submitting: their notebook graded on its visible tests.

    check(Path("notebooks/01_deterministic_cem/01_deterministic_cem.ipynb"))

The notebook is autograded by nbgrader exactly as the instructor's grading does (the same
runner, limits and checker), but in a throw-away course directory whose source is the release
notebook, and with the visible parts of the checks only: passing here is necessary, not
sufficient. The report lists every graded cell with pass/fail, its points and, when it fails,
the message of the check that failed (the hint).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from autograder.nbgrader_glue.autograde import strip_ansi
from autograder.nbgrader_glue.config import quiet_gradebook_warnings
from autograder.nbgrader_glue.course import Course, identify_notebook, notebook_grade_ids, release
from autograder.term.collect import read_notebook

STUDENT = "me"


@dataclass
class CellCheck:
    cell_id: str
    description: str
    points: float | None
    """None for a written answer (graded by hand)"""
    max_points: float
    hint: str = ""

    @property
    def status(self) -> str:
        if self.points is None:
            return "manual"
        return "PASS" if self.points >= self.max_points else "FAIL"


@dataclass
class CheckReport:
    notebook: Path
    assignment: str = ""
    cells: list[CellCheck] = field(default_factory=list)
    error: str | None = None
    """why the notebook could not be checked at all"""

    @property
    def points(self) -> float:
        return sum(c.points for c in self.cells if c.points is not None)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.cells if c.points is not None)

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.status != "FAIL" for c in self.cells)

    @property
    def exit_code(self) -> int:
        return 2 if self.error else (0 if self.passed else 1)


def check(notebook: Path, *, course: Course | None = None, stream: TextIO | None = None) -> CheckReport:
    """Run a student's notebook with its visible tests; print and return pass/fail, points, hints."""
    course = course or Course()
    quiet_gradebook_warnings()
    notebook = Path(notebook)
    report = CheckReport(notebook)
    parsed, error = read_notebook(notebook) if notebook.is_file() else (None, f"there is no file {notebook}")
    known = {}
    for assignment in course.assignments:
        for nb in course.notebooks(assignment):
            path = course.release_notebook(assignment, nb)
            if path.is_file():
                known[(assignment, nb)] = notebook_grade_ids(read_notebook(path)[0] or {})
    key = identify_notebook(notebook, parsed, known) if error is None else None
    if error is None and key is None:
        error = f"{notebook.name} is not one of this course's notebooks ({', '.join(nb for _, nb in sorted(known)) or 'no release notebooks found: run python -m autograder release'})"
    if error is not None:
        report.error = error
        print(f"Cannot check {notebook}: {error}.", file=stream, flush=True)
        return report
    assignment, notebook_id = key
    report.assignment = assignment
    print(f"Checking {notebook.name} ({notebook_id}) with its visible tests; this runs the whole notebook...", file=stream, flush=True)
    from dataclasses import replace

    from autograder.sandbox.bubblewrap import sandbox_status

    sandboxed, why_not = sandbox_status()
    if not sandboxed:
        print(f"(Your code runs without the grader's sandbox here: {why_not}. That changes nothing for you.)", file=stream, flush=True)
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        scratch = Course(
            root=Path(tmp),
            source_directory="source",
            release_directory="release",
            grading_directory="grading",
            limits=replace(course.limits, sandbox=sandboxed),
            check_modules=course.check_modules,
            visible_only=True,
        )
        (scratch.source / assignment).mkdir(parents=True)
        shutil.copyfile(course.release_notebook(assignment, notebook_id), scratch.source_notebook(assignment, notebook_id))
        release(course=scratch, assignments=[assignment])
        submitted = scratch.submitted / STUDENT / assignment / f"{notebook_id}.ipynb"
        submitted.parent.mkdir(parents=True)
        shutil.copyfile(notebook, submitted)
        outcome = scratch.api().autograde(assignment, STUDENT, force=True, create=True)
        graded = scratch.autograded / STUDENT / assignment / f"{notebook_id}.ipynb"
        if not outcome["success"] or not graded.is_file():
            report.error = "nbgrader could not run it:\n" + outcome.get("log", "") + outcome.get("error", "")
            print(f"Cannot check {notebook}: {report.error}", file=stream, flush=True)
            return report
        report.cells = graded_cells(graded)
    print(format_report(report), file=stream, flush=True)
    return report


def graded_cells(path: Path) -> list[CellCheck]:
    """Each grade cell of an autograded notebook: points as nbgrader scores them, and the hint."""
    import nbformat
    from nbgrader import utils

    cells = []
    for cell in nbformat.read(str(path), as_version=4).cells:
        if not utils.is_grade(cell):
            continue
        meta = cell.metadata.nbgrader
        if cell.cell_type != "code" or utils.is_solution(cell):
            cells.append(CellCheck(meta["grade_id"], "written answer, graded by hand", None, float(meta["points"])))
            continue
        points, max_points = utils.determine_grade(cell)
        cells.append(CellCheck(meta["grade_id"], describe(cell.source), points, max_points, failure_message(cell) if points < max_points else ""))
    return cells


def describe(source: str) -> str:
    """A test cell's first comment line, which says what it checks."""
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("#"):
            text = line.lstrip("#").strip()
            return text.removeprefix("Checks:").strip()
        if line:
            break
    return ""


def failure_message(cell) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "CheckFailed":
                return strip_ansi(output.get("evalue", ""))
            message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip().rstrip(":")
            return strip_ansi(message)
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return "the cell wrote to stderr (a test cell that does scores zero): " + strip_ansi(output.get("text", "")).strip()[:300]
    return ""


def format_report(report: CheckReport) -> str:
    width = max([len(c.cell_id) for c in report.cells] + [4])
    lines = []
    for c in report.cells:
        points = f"-/{c.max_points:g}" if c.points is None else f"{c.points:g}/{c.max_points:g}"
        lines.append(f"  {c.status:6s} {points:>6s}  {c.cell_id:{width}s}  {c.description}".rstrip())
        if c.hint:
            lines.append(f"  {'':6s} {'':>6s}  hint: {c.hint}")
    written = sum(c.max_points for c in report.cells if c.points is None)
    summary = f"Visible tests: {report.points:g}/{report.max_points:g} points."
    if written:
        summary += f" Written answers ({written:g} points) are graded by hand."
    summary += " Hidden tests run when your notebook is graded."
    return "\n".join(lines + [summary])
