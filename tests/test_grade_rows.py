"""Points and columns out of a real nbgrader gradebook (SQLite), without grading anything: which
assignments count, one function for the points, and CSV cells that a spreadsheet never runs."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

from nbgrader.api import Gradebook

from autograder.nbgrader_glue.config import COURSE_ID, quiet_gradebook_warnings
from autograder.nbgrader_glue.course import Course
from autograder.term import export, grading

quiet_gradebook_warnings()


def make_gradebook(path, submissions: dict[str, dict[str, tuple[float, float]]]) -> str:
    """Two assignments (week1, week2) of one notebook each, 10 points in one autograded cell;
    `submissions`: student -> assignment -> (auto score, late penalty)."""
    url = f"sqlite:///{path}"
    with Gradebook(url, COURSE_ID) as gb:
        for assignment in ("week1", "week2"):
            gb.add_assignment(assignment, duedate=datetime(2026, 1, 1))
            gb.add_notebook(assignment, assignment)
            gb.add_grade_cell("test-a", assignment, assignment, max_score=10, cell_type="code")
        for student, by_assignment in submissions.items():
            gb.add_student(student)
            for assignment, (score, penalty) in by_assignment.items():
                gb.add_submission(assignment, student, timestamp=datetime(2026, 1, 1) + timedelta(hours=1))
                grade = gb.find_grade("test-a", assignment, assignment, student)
                grade.auto_score = score
                notebook = gb.find_submission_notebook(assignment, assignment, student)
                notebook.late_submission_penalty = penalty
                gb.db.commit()
    return url


def rows_of(url):
    with Gradebook(url, COURSE_ID) as gb:
        return export.grade_rows(gb, {})


def test_only_assignments_someone_handed_in_are_columns(tmp_path):
    url = make_gradebook(tmp_path / "gb.db", {"ada": {"week1": (10, 0)}, "bob": {"week1": (4, 0)}})
    rows = rows_of(url)
    assert [list(row.points) for row in rows] == [["week1"], ["week1"]]
    assert [row.max_total for row in rows] == [10, 10] and [row.status for row in rows] == ["graded", "graded"]
    # the grade table counts the same: week2 was never handed in, so it is no column there either
    scores = grading.gradebook_scores(Course(root=tmp_path, db_path=tmp_path / "gb.db"))
    assert {s.assignment for s in scores["ada"]} == {"week1"}


def test_a_later_release_adds_its_column_with_its_first_submission(tmp_path):
    url = make_gradebook(tmp_path / "gb.db", {"ada": {"week1": (10, 0), "week2": (7, 0)}, "bob": {"week1": (4, 0)}})
    rows = {row.student: row for row in rows_of(url)}
    assert list(rows["bob"].points) == ["week1", "week2"] and rows["bob"].points["week2"] == 0.0
    assert rows["bob"].statuses["week2"] == "missing" and rows["ada"].max_total == 20


def test_a_late_penalty_never_takes_points_below_zero_in_the_csv_or_the_table(tmp_path):
    url = make_gradebook(tmp_path / "gb.db", {"ada": {"week1": (3, 5)}})
    assert rows_of(url)[0].points["week1"] == 0.0
    scores = grading.gradebook_scores(Course(root=tmp_path, db_path=tmp_path / "gb.db"))
    assert [s.points for s in scores["ada"]] == [0.0]


def test_no_csv_cell_begins_a_formula(tmp_path):
    url = make_gradebook(tmp_path / "gb.db", {'=HYPERLINK("http://x")': {"week1": (10, 0)}, "-2+3": {"week1": (1, 0)}, "@SUM(A1)": {"week1": (2, 0)}})
    rows = rows_of(url)
    path = export.write_grades_csv(tmp_path / "grades.csv", rows)
    roster = [export.RosterStudent(row.student, "+cmd|' /C calc'!A0", "=1+1@x.org", "@lms") for row in rows]
    grades = export.lms_grades(rows, roster)
    canvas = export.write_canvas_csv(tmp_path / "canvas.csv", grades)
    moodle = export.write_moodle_csv(tmp_path / "moodle.csv", grades)
    for written in (path, canvas, moodle):
        with open(written, newline="", encoding="utf-8") as handle:
            cells = [cell for line in csv.reader(handle) for cell in line]
        assert cells and not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")], written.name
        assert any(cell.startswith("'") for cell in cells), written.name
