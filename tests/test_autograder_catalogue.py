"""The example submissions, graded once for the session by the README's main job (`demo`), with
two jobs, against the course's real notebooks.

- the reference gets full marks, the blank release zero;
- every mistake of the catalogue loses the points of exactly its checks, the first of which shows
  the mistake's hint in the student's feedback, and keeps full points everywhere else;
- every correct alternative gets full marks;
- feedback never shows a hidden test's source.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.course import Course
from autograder.demo import cell_points, demo
from autograder.examples.catalogue import ALTERNATIVES, MISTAKES
from autograder.preprocessors import release_text

COURSE = Course()
pytestmark = pytest.mark.skipif(not COURSE.assignments, reason="no source notebooks in solutions/")


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    out = io.StringIO()
    run, mismatches = demo(workdir=tmp_path_factory.mktemp("demo"), jobs=2, progress=False, stream=out)
    return SimpleNamespace(run=run, mismatches=mismatches, table=out.getvalue(), course=Course(root=run.csv_path.parent.parent))


def autograded_cells(course: Course, student: str, assignment: str) -> dict[str, dict]:
    """grade_id -> the autograded code grade cell (outputs included)."""
    path = course.autograded / student / assignment / f"{assignment}.ipynb"
    cells = json.loads(path.read_text())["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in cells if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"}


def lost_cells(course: Course, student: str, assignment: str) -> set[str]:
    from nbgrader.utils import determine_grade
    from nbformat import from_dict

    lost = set()
    for grade_id, cell in autograded_cells(course, student, assignment).items():
        cell = from_dict(cell)
        cell.source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
        score, max_score = determine_grade(cell)
        if score < max_score:
            lost.add(grade_id)
    return lost


def feedback_text(course: Course, student: str, assignment: str) -> str:
    page = (course.feedback / student / assignment / f"{assignment}.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", page[page.find("<body") :]))


def hidden_lines(course: Course, assignment: str) -> list[str]:
    """Distinctive lines of the hidden tests of an assignment's source notebook."""
    import nbformat

    release = nbformat.read(str(course.release_notebook(assignment, assignment)), as_version=4)
    visible = {line.strip() for cell in release.cells for line in cell.source.split("\n")}
    lines = []
    for cell in nbformat.read(str(course.source_notebook(assignment, assignment)), as_version=4).cells:
        if "BEGIN HIDDEN TESTS" in cell.source:
            hidden = set(cell.source.split("\n")) - set(release_text(cell.source).split("\n"))
            lines += [line.strip() for line in hidden if line.strip() not in visible and len(line.strip()) > 25 and "HIDDEN TESTS" not in line]
    return lines


def test_every_example_gets_the_points_it_should(graded):
    assert graded.mismatches == [], graded.table


def test_the_reference_gets_full_marks_and_the_blank_release_zero(graded):
    reference, blank = graded.run.student("reference"), graded.run.student("blank")
    assert [s.status for s in reference.scores] == ["graded"] * 3
    assert all(s.auto_points == s.auto_max_points > 0 for s in reference.scores)
    assert all(s.auto_points == 0 for s in blank.scores)
    assert [s.status for s in blank.scores] == ["graded"] * 3  # zero because it was graded, not because grading failed


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: f"{m.notebook[:2]}-{m.name}")
def test_a_mistake_loses_exactly_the_points_of_its_checks_with_its_hint(graded, mistake):
    student = f"{mistake.notebook[:2]}-{mistake.name}"
    assert lost_cells(graded.course, student, mistake.notebook) == set(mistake.checks), mistake.what
    first_check = autograded_cells(graded.course, student, mistake.notebook)[mistake.checks[0]]
    messages = " ".join(o.get("evalue", "") for o in first_check["outputs"] if o["output_type"] == "error")
    assert mistake.hint in messages
    assert mistake.hint in feedback_text(graded.course, student, mistake.notebook)
    expected = sum(p for cell, p in cell_points(graded.course, mistake.notebook, mistake.notebook).items() if cell not in mistake.checks)
    assert graded.run.student(student).score(mistake.notebook).auto_points == expected


@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=lambda a: f"{a.notebook[:2]}-alt-{a.name}")
def test_a_correct_solution_written_differently_gets_full_marks(graded, alternative):
    student = f"{alternative.notebook[:2]}-alt-{alternative.name}"
    assert lost_cells(graded.course, student, alternative.notebook) == set(), alternative.what
    score = graded.run.student(student).score(alternative.notebook)
    assert score.auto_points == score.auto_max_points


def _outputs(cell: dict) -> list[str]:
    """A cell's text outputs, without lines that report timings."""
    texts = []
    for output in cell.get("outputs", []):
        text = output.get("text") or output.get("data", {}).get("text/plain") or output.get("evalue") or ""
        text = "".join(text) if isinstance(text, list) else text
        texts += [line for line in text.splitlines() if not re.search(r"\bms\b|seconds|it/s|s/it", line)]
    return texts


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: f"{m.notebook[:2]}-{m.name}")
def test_grading_is_deterministic_across_processes(graded, mistake):
    """Up to the changed cell, a mistake's notebook is the reference's: seeded, one thread, no GPU,
    its cells must print exactly what the reference's printed in another process (training losses
    included)."""
    import nbformat

    student = f"{mistake.notebook[:2]}-{mistake.name}"
    path = lambda who: graded.course.autograded / who / mistake.notebook / f"{mistake.notebook}.ipynb"
    mine, reference = (nbformat.read(str(path(who)), as_version=4).cells for who in (student, "reference"))
    changed = next(i for i, (a, b) in enumerate(zip(mine, reference)) if a.source != b.source)
    compared = [i for i in range(changed) if mine[i].cell_type == "code" and mine[i].get("outputs")]
    assert compared, "no executed cell before the changed one"
    for i in compared:
        assert _outputs(mine[i]) == _outputs(reference[i]), f"cell {i} of {student}"


def test_the_catalogue_covers_every_notebook_and_enough_mistakes(graded):
    assert len(MISTAKES) >= 12 and len(ALTERNATIVES) >= 3
    assert {m.notebook for m in MISTAKES} == set(COURSE.assignments)


def test_feedback_never_shows_hidden_test_source(graded):
    pages = 0
    for assignment in COURSE.assignments:
        secret = hidden_lines(graded.course, assignment)
        assert secret, f"{assignment} has no hidden tests to check"
        for folder in sorted(graded.course.feedback.glob(f"*/{assignment}")):
            text = feedback_text(graded.course, folder.parent.name, assignment)
            leaked = [line for line in secret if line in text]
            assert not leaked, f"{folder}: {leaked[:3]}"
            pages += 1
    assert pages >= len(MISTAKES) + len(ALTERNATIVES) + 6


def test_grades_csv_has_a_row_per_student_and_notebook(graded):
    with open(graded.run.csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert set(rows[0]) == {"student", "notebook", "points", "max_points", "total"}
    assert len(rows) == len(graded.run.students) * len(COURSE.assignments)
    reference = {row["notebook"]: row for row in rows if row["student"] == "reference"}
    assert sum(float(r["points"]) for r in reference.values()) == float(reference[COURSE.assignments[0]]["total"]) > 0


def test_the_table_lists_every_student(graded):
    for report in graded.run.students:
        assert report.student in graded.table
    assert "MISMATCH" not in graded.table
