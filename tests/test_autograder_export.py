"""Grades out of a real gradebook: grading/grades.csv (one row per student), the same file from
plain `nbgrader export`, and the Canvas and Moodle import files written from a roster.

The toy course (tests/autograder_fixtures/toy_course.py) is released and graded with nbgrader:
ada (the reference answer), bob (the blank release) and cy (an answer that fails a hidden check);
then dee, whose grading process dies, so that her notebook could not be graded. `nbgrader export`
runs as a command, from the course's root folder, before a grader scores ada's written answer by
hand; `python -m autograder export` runs after.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from autograder_fixtures.toy_course import ASSIGNMENT, AUTO_MAX, EXPECTED, WRITTEN_POINTS, make_course, scenarios
from nbgrader.api import Gradebook

from autograder import cli
from autograder.nbgrader_glue.config import COURSE_ID
from autograder.nbgrader_glue.course import with_package_on_path
from autograder.sandbox.bubblewrap import sandbox_status
from autograder.term import engine, grading
from autograder.term.export import CSV_STATUS

CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 3, 60
MAX_TOTAL = AUTO_MAX + WRITTEN_POINTS
FAILED = f"{ASSIGNMENT}: {CSV_STATUS['failed']}"
HEADER = ["student", ASSIGNMENT, "total", "max_total", "hand_grading", "status"]

pytestmark = pytest.mark.skipif(not sandbox_status()[0], reason=f"no sandbox here: {sandbox_status()[1]}")


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def by_student(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def nbgrader(root: Path, *arguments: str) -> None:
    """The `nbgrader` command itself, run from the course's root folder."""
    command = [str(Path(sys.executable).parent / "nbgrader"), *arguments]
    subprocess.run(command, cwd=root, check=True, capture_output=True, env=with_package_on_path(dict(os.environ)))


def submit(folder: Path, students: dict[str, str], texts: dict[str, str]) -> Path:
    for student, scenario in students.items():
        (folder / student).mkdir(parents=True)
        (folder / student / f"{ASSIGNMENT}.ipynb").write_text(texts[scenario])
    return folder


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-course")
    course = make_course(root, cell_timeout=CELL_TIMEOUT, notebook_timeout=NOTEBOOK_TIMEOUT)
    texts = scenarios(course)
    # The course's nbgrader configuration, as the repository's root nbgrader_config.py gives it.
    (root / "nbgrader_config.py").write_text(f"from autograder.nbgrader_glue.config import course_config\nget_config().merge(course_config({str(root)!r}))\n")
    first = submit(tmp_path_factory.mktemp("first"), {"ada": "reference", "bob": "blank", "cy": "hidden-check-fails"}, texts)
    grading.grade(first, course=course, jobs=2, progress=False)
    # dee's grading process dies (the local engine's workers are threads of this process)
    second = submit(tmp_path_factory.mktemp("second"), {"dee": "reference"}, texts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.Worker, "grade", lambda self, *args, **kwargs: (-9, "killed"))
        grading.grade(second, course=course, progress=False)
    grades_csv = course.grading / "grades.csv"
    graded = grades_csv.read_bytes()

    # plain `nbgrader export`, from the course's root folder, in place of what `grade` wrote
    grades_csv.unlink()
    before = sorted(p.name for p in root.iterdir())
    nbgrader(root, "export")
    exported = grades_csv.read_bytes() if grades_csv.is_file() else b""
    added = sorted(set(p.name for p in root.iterdir()) - set(before))
    nbgrader(root, "export", "--to", "elsewhere.csv")
    exported_to = (root / "elsewhere.csv").read_bytes()
    (root / "elsewhere.csv").unlink()

    # a grader scores ada's written answer by hand, as formgrader records it
    with Gradebook(course.db_url, COURSE_ID) as gb:
        written = gb.find_grade("explain", ASSIGNMENT, ASSIGNMENT, "ada")
        written.manual_score, written.needs_manual_grade = 1.0, False
        gb.db.commit()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["export", "--course-dir", str(root)]) == 0
    return SimpleNamespace(
        course=course,
        root=root,
        graded=graded,
        exported=exported,
        exported_to=exported_to,
        added=added,
        after_hand_grading=by_student(grades_csv),
        printed=printed.getvalue(),
    )


def test_grades_csv_has_one_row_per_student_with_the_gradebooks_points(course, tmp_path):
    path = tmp_path / "graded.csv"
    path.write_bytes(course.graded)
    assert read_csv(path)[0] == HEADER
    rows = by_student(path)
    assert list(rows) == ["ada", "bob", "cy", "dee"]  # one row each, in order
    for student, scenario in (("ada", "reference"), ("bob", "blank"), ("cy", "hidden-check-fails")):
        points = sum(EXPECTED[scenario][0].values())
        assert float(rows[student][ASSIGNMENT]) == float(rows[student]["total"]) == points, student
        assert float(rows[student]["max_total"]) == MAX_TOTAL and rows[student]["status"] == "graded", student
    # a written answer awaits a grader; bob's, the release's text untouched, scores 0 without one (nbgrader's rule)
    assert [rows[student]["hand_grading"] for student in ("ada", "bob", "cy")] == ["pending", "done", "pending"]


def test_a_notebook_that_could_not_be_graded_has_no_points_not_a_zero(course, tmp_path):
    path = tmp_path / "graded.csv"
    path.write_bytes(course.graded)
    dee = by_student(path)["dee"]
    assert dee[ASSIGNMENT] == "" and dee["total"] == "" and float(dee["max_total"]) == MAX_TOTAL
    assert dee["status"] == FAILED


def test_grading_by_hand_shows_in_the_points_and_ends_pending(course):
    rows = course.after_hand_grading
    assert float(rows["ada"][ASSIGNMENT]) == float(rows["ada"]["total"]) == AUTO_MAX + 1.0  # auto + manual
    assert rows["ada"]["hand_grading"] == "done"
    assert rows["cy"]["hand_grading"] == "pending"
    assert rows["dee"]["status"] == FAILED  # what the grading run found outlives a later export
    assert f"wrote {course.course.grading / 'grades.csv'}" in course.printed


def test_plain_nbgrader_export_writes_the_same_grades_csv_and_nothing_in_the_current_folder(course):
    assert course.exported == course.graded
    assert course.added == []  # no grades.csv (nor anything else) in the folder nbgrader ran in
    assert course.exported_to == course.graded  # --to still chooses where


ROSTER = (
    "\ufeff email , student_id ,name, lms_id ,section\n"  # a BOM, spaces, another order, a column more
    ' ada@example.edu , ada ,"Lovelace, Ada", 1001 ,A\n'
    "cy@example.edu,cy,Cy Hidden,1003,A\n"
    "\n"
    "dee@example.edu,dee,Dee Dies,1004,B\n"
    "eve@example.edu,eve,Eve Absent,1005,B\n"
)


def test_a_roster_gives_the_canvas_and_moodle_import_files(course, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    assert cli.main(["export", "--course-dir", str(course.root), "--roster", str(roster)]) == 0
    out = capsys.readouterr().out
    grading_folder = course.course.grading
    for name in ("grades.csv", "canvas-grades.csv", "moodle-grades.csv"):
        assert f"wrote {grading_folder / name}" in out
    full = AUTO_MAX + 1.0
    assert read_csv(grading_folder / "canvas-grades.csv") == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT],
        ["Points Possible", "", "", "", "", f"{MAX_TOTAL:g}"],
        ["Lovelace, Ada", "1001", "", "ada@example.edu", "", f"{full:g}"],
        ["Cy Hidden", "1003", "", "cy@example.edu", "", "3"],
        ["Dee Dies", "1004", "", "dee@example.edu", "", ""],
        ["Eve Absent", "1005", "", "eve@example.edu", "", "0"],
    ]
    assert read_csv(grading_folder / "moodle-grades.csv") == [
        ["Full name", "ID number", "Email address", ASSIGNMENT],
        ["Lovelace, Ada", "1001", "ada@example.edu", f"{full:g}"],
        ["Cy Hidden", "1003", "cy@example.edu", "3"],
        ["Dee Dies", "1004", "dee@example.edu", ""],
        ["Eve Absent", "1005", "eve@example.edu", "0"],
    ]
    # bob is graded but not on the roster; eve is on the roster and handed nothing in
    assert "Not on the roster, so not in the LMS files (grades.csv has them): bob." in out
    assert "On the roster with no submission in the gradebook, given 0 in the LMS files: eve." in out
    assert f"Could not be graded, empty in the LMS files (an import would clear the grade there): dee {ASSIGNMENT}." in out
    assert "Answers still to grade by hand (formgrader), their points not yet counted: cy." in out
    assert list(by_student(grading_folder / "grades.csv")) == ["ada", "bob", "cy", "dee"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("student_id,name,email\nada,Ada,ada@example.edu\n", "line 1: the roster has no column lms_id (its header has student_id,name,email)"),
        ("name;email\n", "line 1: the roster has no columns student_id, name, email, lms_id (its header has name;email)"),
        ("", "line 1: the roster has no columns student_id, name, email, lms_id (its header has nothing)"),
        ("student_id,name,email,lms_id\nada,Ada,a@x,1\n ,Bob,b@x,2\n", "line 3: no student_id"),
        ("student_id,name,email,lms_id\nada,Ada,a@x,1\nada,Ada again,a@x,1\n", "line 3: student_id 'ada' is already on line 2"),
    ],
    ids=["a-column-missing", "not-comma-separated", "empty", "a-student-without-id", "a-student-twice"],
)
def test_a_roster_that_cannot_be_used_says_where_and_what_and_writes_nothing(course, tmp_path, capsys, text, message):
    roster = tmp_path / "roster.csv"
    roster.write_text(text, encoding="utf-8")
    grades_csv = course.course.grading / "grades.csv"
    written = grades_csv.stat().st_mtime_ns
    assert cli.main(["export", "--course-dir", str(course.root), "--roster", str(roster)]) == 2
    assert f"{roster}, {message}" in capsys.readouterr().err
    assert grades_csv.stat().st_mtime_ns == written


def test_a_gradebook_made_here_records_the_schema_revision_that_alembic_names(tmp_path):
    """Gradebooks are made without nbgrader's `alembic heads` process (config.schema_version_in_process):
    the revision read in this process is the one that command prints, and a new gradebook holds it."""
    from nbgrader.dbutil import _temp_alembic_ini
    from sqlalchemy import text

    from autograder.nbgrader_glue import config

    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'probe.db'}") as alembic_ini:
        alembic = Path(sys.executable).with_name("alembic")
        printed = subprocess.run([str(alembic), "-c", alembic_ini, "heads"], capture_output=True, text=True, check=True).stdout.split()[0]
    assert config.gradebook_schema_version() == printed
    config.schema_version_in_process()
    with Gradebook(f"sqlite:///{tmp_path / 'new.db'}", COURSE_ID) as gb:
        recorded = gb.db.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert recorded == printed
