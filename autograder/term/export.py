"""Grades out of the gradebook: grading/grades.csv, one row per student, and the files that Canvas's
and Moodle's gradebooks import.

    python -m autograder export                          # grading/grades.csv
    python -m autograder export --roster roster.csv      # and grading/canvas-grades.csv, grading/moodle-grades.csv
    nbgrader export                                      # grading/grades.csv too (GradesExport, set in autograder/nbgrader_glue/config.py)

grades.csv has a column per assignment: the points the gradebook gives the student (automatic and
manual scores, extra credit, less nbgrader's late penalty), empty when the notebook could not be
graded; then total, max_total, hand_grading (pending while an answer awaits a grader) and status.

The gradebook does not know what a grading run found wrong (a notebook that could not be graded,
a file that was not a notebook, grading without the sandbox): `grade` records it per gradebook,
student and assignment in grading/grading-statuses.json, which every export reads, so that
`grade`, `python -m autograder export` and `nbgrader export` write the same grades.csv.

Nothing here imports torch or the grading engine: nbgrader imports this module at every start.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins import ExportPlugin
from traitlets import Unicode

from autograder.nbgrader_glue import config

GRADES_NAME = "grades.csv"
CANVAS_NAME = "canvas-grades.csv"
MOODLE_NAME = "moodle-grades.csv"
STATUSES_NAME = "grading-statuses.json"

ROSTER_COLUMNS = ("student_id", "name", "email", "lms_id")
# Canvas's gradebook import: these leading columns, then one column per assignment (matched to a
# Canvas assignment by title, or created), and an optional "Points Possible" row under the header.
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
# Moodle's CSV grade import: the student is found through one column mapped to a user field (email
# address or ID number), each other column is mapped to a grade item or ignored.
MOODLE_COLUMNS = ("Full name", "ID number", "Email address")

# What grades.csv says about a notebook that is not simply graded.
CSV_STATUS = {
    "failed": "failed: could not be graded, not a zero (see grading/logs/)",
    "unreadable": "unreadable: not a notebook, scored 0",
    "missing": "missing: not handed in",
}
GRADED = ("graded", "graded without sandbox")


class ExportError(Exception):
    """A roster or gradebook that cannot be exported from; the message says what to fix."""


def number_text(value: float) -> str:
    return f"{value:g}"


def submission_points(score: float, late_penalty: float | None) -> float:
    """The points of a submitted notebook or assignment, computed here and nowhere else: nbgrader's
    score (manual scores where a grader gave one, else the automatic ones, plus extra credit) less
    its late penalty, never below 0, as `nbgrader export` computes them."""
    return max(0.0, float(score) - float(late_penalty or 0))


# A spreadsheet runs a cell that begins with one of these as a formula (CSV injection): a student id,
# a roster name or a status could be "=HYPERLINK(...)". Such a cell gets a leading apostrophe,
# which Excel, LibreOffice and Google Sheets show as text and drop from the value.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """`text` as a CSV cell a spreadsheet shows and never evaluates."""
    text = str(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass
class GradeRow:
    """One student's line of grades.csv."""

    student: str
    points: dict[str, float | None]
    """assignment -> points; None when it could not be graded"""
    max_points: dict[str, float]
    statuses: dict[str, str]
    """assignment -> graded, graded without sandbox, failed, unreadable, missing"""
    hand_grading_pending: bool = False

    @property
    def total(self) -> float | None:
        """None when a notebook could not be graded: a sum without it would pass for a grade."""
        if any(value is None for value in self.points.values()):
            return None
        return sum(self.points.values())

    @property
    def max_total(self) -> float:
        return sum(self.max_points.values())

    @property
    def status(self) -> str:
        """graded (or graded without sandbox, for every assignment), else what each assignment that
        is not plainly graded is: "02_stochastic: failed: could not be graded, ..."."""
        if all(status == "graded" for status in self.statuses.values()):
            return "graded"
        if all(status == "graded without sandbox" for status in self.statuses.values()):
            return "graded without sandbox"
        return "; ".join(f"{assignment}: {CSV_STATUS.get(status, status)}" for assignment, status in self.statuses.items() if status != "graded")

    def csv_row(self) -> list[str]:
        cells = [spreadsheet_text(self.student)] + ["" if value is None else number_text(value) for value in self.points.values()]
        total = self.total
        return cells + [
            "" if total is None else number_text(total),
            number_text(self.max_total),
            "pending" if self.hand_grading_pending else "done",
            spreadsheet_text(self.status),
        ]


# -- what grading runs found, beside the gradebook ---------------------------------------------------
def statuses_path(grading_directory: Path | str) -> Path:
    return Path(grading_directory) / STATUSES_NAME


def gradebook_key(db_url) -> str:
    """The gradebook a record belongs to, from its URL (a string or SQLAlchemy URL): one course
    folder may be graded into several gradebooks (--db-url). An SQLite file by its real path; a
    server's URL without its password, which is no business of a file in grading/."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.drivername.startswith("sqlite") and url.database:
        return "sqlite:///" + os.path.realpath(url.database)
    return url.render_as_string(hide_password=True)


def read_statuses(grading_directory: Path | str, db_url) -> dict[str, dict[str, str]]:
    """student -> assignment -> what the last grading run into the gradebook at `db_url` found
    (graded, graded without sandbox, failed, unreadable); {} before the first run."""
    path = statuses_path(grading_directory)
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get(gradebook_key(db_url), {})


def record_statuses(grading_directory: Path | str, db_url, run: dict[str, dict[str, str]]) -> None:
    """Add a grading run's statuses (student -> assignment -> status) to the record of its
    gradebook: each student's assignments of this run replace what an earlier run said of them.
    Locked and replaced whole, for two runs that end at once."""
    import fcntl

    path = statuses_path(grading_directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        recorded = json.loads(path.read_text()) if path.is_file() else {}
        students = recorded.setdefault(gradebook_key(db_url), {})
        for student, statuses in run.items():
            students.setdefault(student, {}).update(statuses)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".statuses-", delete=False) as partial:
            json.dump(recorded, partial, indent=1, sort_keys=True)
        os.replace(partial.name, path)


# -- the one table: gradebook + recorded statuses ----------------------------------------------------
def grade_rows(gradebook, statuses: dict[str, dict[str, str]], *, students: list[str] = (), assignments: list[str] = ()) -> list[GradeRow]:
    """Every student of the gradebook (and of `statuses`, for one whose grading failed before it
    reached the gradebook) with their points (`submission_points`) on every assignment that anyone
    handed in, from an open nbgrader Gradebook.

    The gradebook knows every assignment of the source folder, released or not; an assignment
    nobody has handed in yet is left out (as in the LMS files), so that a course that releases one
    week at a time counts only what it released: a later week's column appears with its first
    submission. An assignment not handed in by this student scores 0; one whose last grading
    failed has no points. `students` and `assignments` restrict the table to these (nbgrader
    export's --student and --assignment); assignments named there are kept even with no submission."""
    submitted = {student.id: {s.assignment.name: s for s in student.submissions} for student in gradebook.students}
    handed_in = {name for by_assignment in submitted.values() for name in by_assignment}
    handed_in |= {name for by_assignment in statuses.values() for name in by_assignment}
    known = sorted((a for a in gradebook.assignments if a.name in handed_in), key=lambda a: a.name)
    if assignments:
        known = sorted((a for a in gradebook.assignments if a.name in set(assignments)), key=lambda a: a.name)
    max_points = {a.name: float(a.max_score) for a in known}
    rows = []
    for student in sorted(set(submitted) | set(statuses)):
        if students and student not in set(students):
            continue
        row = GradeRow(student, {}, dict(max_points), {})
        for assignment in max_points:
            submission = submitted.get(student, {}).get(assignment)
            status = statuses.get(student, {}).get(assignment, "graded")
            if submission is None and status != "failed":  # the gradebook says what was handed in
                status = "missing"
            row.statuses[assignment] = status
            if status == "failed":
                row.points[assignment] = None
            elif submission is None:
                row.points[assignment] = 0.0
            else:
                row.points[assignment] = submission_points(submission.score, submission.late_submission_penalty)
                row.hand_grading_pending |= bool(submission.needs_manual_grade)
        rows.append(row)
    return rows


def write_grades_csv(path: Path | str, rows: list[GradeRow]) -> Path:
    """grades.csv: a header, then one row per student (see GradeRow)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    assignments = list(rows[0].points) if rows else []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", *assignments, "total", "max_total", "hand_grading", "status"])
        writer.writerows(row.csv_row() for row in rows)
    return path


def course_grade_rows(course) -> list[GradeRow]:
    """grade_rows of a course (autograder.nbgrader_glue.course.Course): its gradebook and its recorded statuses."""
    from nbgrader.api import Gradebook

    if course.gradebook_url is None and not course.gradebook.is_file():
        raise ExportError(f"No gradebook at {course.gradebook}: grade the submissions first (python -m autograder grade SUBMISSIONS_DIR).")
    config.quiet_gradebook_warnings()
    with Gradebook(course.db_url, config.COURSE_ID) as gb:
        return grade_rows(gb, read_statuses(course.grading, course.db_url))


# -- the roster and the LMS files --------------------------------------------------------------------
@dataclass(frozen=True)
class RosterStudent:
    student_id: str
    """the id the submissions and the gradebook know the student by"""
    name: str
    email: str
    lms_id: str
    """the student's id in the LMS: Canvas's user ID, or Moodle's ID number"""


def read_roster(path: Path | str) -> list[RosterStudent]:
    """The roster CSV: a header with student_id,name,email,lms_id (any order, other columns
    ignored), one student per line. A byte-order mark (Excel's) and spaces around names and values
    are fine."""
    path = Path(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as error:
        raise ExportError(f"Cannot read the roster {path}: {error.strerror}.") from error
    with handle:
        try:
            return _roster_students(path, csv.reader(handle))
        except UnicodeDecodeError as error:
            raise ExportError(f"{path}: not UTF-8 text ({error.reason}); save the roster as CSV UTF-8.") from error
        except csv.Error as error:
            raise ExportError(f"{path}: not a CSV file: {error}.") from error


def _roster_students(path: Path, reader) -> list[RosterStudent]:
    header = [name.strip() for name in next(reader, [])]
    missing = [column for column in ROSTER_COLUMNS if column not in header]
    if missing:
        found = ",".join(header) if any(header) else "nothing"
        raise ExportError(
            f"{path}, line 1: the roster has no {'column' if len(missing) == 1 else 'columns'} {', '.join(missing)} (its header has {found}). "
            f"A roster's first line names its columns: {','.join(ROSTER_COLUMNS)}."
        )
    where = {column: header.index(column) for column in ROSTER_COLUMNS}
    roster, lines = [], {}
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        values = [value.strip() for value in values] + [""] * len(header)
        student = RosterStudent(**{column: values[index] for column, index in where.items()})
        if not student.student_id:
            raise ExportError(f"{path}, line {reader.line_num}: no student_id; every student of the roster needs the id their submissions are filed under.")
        if student.student_id in lines:
            raise ExportError(f"{path}, line {reader.line_num}: student_id {student.student_id!r} is already on line {lines[student.student_id]}.")
        lines[student.student_id] = reader.line_num
        roster.append(student)
    return roster


@dataclass
class LmsGrades:
    """The assignments and points that go to the LMS, one row per roster student, and what the
    instructor should know before importing them."""

    assignments: list[str]
    max_points: dict[str, float]
    rows: list[tuple[RosterStudent, dict[str, float | None]]]
    notes: list[str] = field(default_factory=list)


def lms_grades(rows: list[GradeRow], roster: list[RosterStudent]) -> LmsGrades:
    """The roster's students with their points, for the LMS files.

    Only roster students are written (an LMS cannot take a student it does not know: Moodle stops
    the whole import at the first one). An assignment nobody has handed in yet is left out, so that
    importing mid-term does not give every student a 0 for the assignments still to come.

    A roster student with no submission at all gets 0 on each assignment written, as a student of
    the gradebook gets 0 on an assignment they did not hand in (nbgrader's rule, and grades.csv's):
    the same missing work, the same grade. Left empty, Canvas and Moodle would clear any grade
    entered there and show the student as ungraded. The notes name these students, so that one
    whose submission was filed under another name is caught before the import.
    """
    by_student = {row.student: row for row in rows}
    handed_in = [a for a in (rows[0].points if rows else {}) if any(row.statuses[a] != "missing" for row in rows)]
    max_points = {a: rows[0].max_points[a] for a in handed_in}
    lms_rows, no_submission, failed, pending = [], [], [], []
    for student in roster:
        row = by_student.get(student.student_id)
        if row is None:
            no_submission.append(student.student_id)
            lms_rows.append((student, {a: 0.0 for a in handed_in}))
            continue
        lms_rows.append((student, {a: row.points[a] for a in handed_in}))
        failed += [f"{student.student_id} {a}" for a in handed_in if row.points[a] is None]
        if row.hand_grading_pending:
            pending.append(student.student_id)
    on_roster = {student.student_id for student in roster}
    not_on_roster = [row.student for row in rows if row.student not in on_roster]
    notes = []
    if not_on_roster:
        notes.append(
            f"Not on the roster, so not in the LMS files (grades.csv has them): {', '.join(not_on_roster)}. "
            "Add them to the roster if they are students of the course."
        )
    if no_submission:
        notes.append(
            f"On the roster with no submission in the gradebook, given 0 in the LMS files: {', '.join(no_submission)}. "
            "If one of them did hand in, the name of their submission does not match their student_id."
        )
    if failed:
        notes.append(
            f"Could not be graded, empty in the LMS files (an import would clear the grade there): {', '.join(failed)}. "
            "Grade them again (see grading/logs/) before importing."
        )
    if pending:
        notes.append(f"Answers still to grade by hand (formgrader), their points not yet counted: {', '.join(pending)}.")
    return LmsGrades(handed_in, max_points, lms_rows, notes)


def _cell(value: float | None) -> str:
    return "" if value is None else number_text(value)


def write_canvas_csv(path: Path | str, grades: LmsGrades) -> Path:
    """Canvas's gradebook import: Student, ID (Canvas's user ID: the roster's lms_id), SIS User ID
    (empty), SIS Login ID (the roster's email: where login IDs are emails, a student whose lms_id is
    missing is still found), Section (empty); a "Points Possible" row; a column per assignment."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CANVAS_COLUMNS, *grades.assignments])
        writer.writerow(["Points Possible", "", "", "", "", *(number_text(grades.max_points[a]) for a in grades.assignments)])
        for student, points in grades.rows:
            writer.writerow([*map(spreadsheet_text, (student.name, student.lms_id, "", student.email, "")), *(_cell(points[a]) for a in grades.assignments)])
    return Path(path)


def write_moodle_csv(path: Path | str, grades: LmsGrades) -> Path:
    """Moodle's CSV grade import: Full name, ID number (the roster's lms_id), Email address, a
    column per assignment. At import, map from "Email address" (or "ID number") to the user field
    of that name, and each assignment column to its grade item."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*MOODLE_COLUMNS, *grades.assignments])
        for student, points in grades.rows:
            writer.writerow([*map(spreadsheet_text, (student.name, student.lms_id, student.email)), *(_cell(points[a]) for a in grades.assignments)])
    return Path(path)


@dataclass
class Export:
    files: list[Path]
    notes: list[str]


def record_roster_names(course, roster: list[RosterStudent]) -> None:
    """The roster's names and emails into the gradebook's students, so that formgrader shows
    "Lovelace, Ada" instead of "None, None". The last word of a name is the last name."""
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue import config

    config.quiet_gradebook_warnings()
    with Gradebook(course.db_url, config.COURSE_ID) as gb:
        known = {student.id for student in gb.students}  # a roster student with no submission stays out of the gradebook
        for student in roster:
            if student.student_id in known and student.name:
                first, _, last = student.name.rpartition(" ")
                gb.update_or_create_student(
                    student.student_id, first_name=first or None, last_name=last, email=student.email or None, lms_user_id=student.lms_id or None
                )


def export(*, course=None, roster: Path | None = None) -> Export:
    """Write grading/grades.csv from the course's gradebook; with a roster, also
    grading/canvas-grades.csv and grading/moodle-grades.csv. The roster is read first: a roster
    that cannot be used writes nothing."""
    from autograder.nbgrader_glue.course import Course

    course = course or Course()
    students = read_roster(roster) if roster is not None else None
    if students is not None:
        record_roster_names(course, students)
    rows = course_grade_rows(course)
    files = [write_grades_csv(course.grading / GRADES_NAME, rows)]
    notes = []
    if students is not None:
        grades = lms_grades(rows, students)
        files += [write_canvas_csv(course.grading / CANVAS_NAME, grades), write_moodle_csv(course.grading / MOODLE_NAME, grades)]
        notes = grades.notes
    return Export(files, notes)


# -- plain `nbgrader export` -------------------------------------------------------------------------
class GradesExport(ExportPlugin):
    """nbgrader's exporter for this course (ExportApp.plugin_class in autograder/nbgrader_glue/config.py): plain
    `nbgrader export` writes the course's grading/grades.csv, the same file as `grade` and
    `python -m autograder export`, instead of nbgrader's own CSV in the current folder. `--to PATH`
    writes it there instead; --student and --assignment keep only these rows and columns.
    nbgrader's own CSV: `nbgrader export --exporter nbgrader.plugins.CsvExportPlugin`."""

    grading_directory = Unicode("", help="the course's grading folder, which holds grades.csv and the grading runs' statuses").tag(config=True)

    def export(self, gradebook) -> None:
        folder = Path(self.grading_directory or ".")
        destination = Path(self.to) if self.to else folder / GRADES_NAME
        rows = grade_rows(
            gradebook, read_statuses(folder, gradebook.engine.url), students=[str(s) for s in self.student], assignments=[str(a) for a in self.assignment]
        )
        self.log.info("Exporting grades to %s", destination)
        write_grades_csv(destination, rows)
