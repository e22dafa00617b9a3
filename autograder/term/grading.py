"""From a folder of submissions to grades, feedback and a CSV, with nbgrader doing the grading.

    grade(Path("downloads/"), jobs=2)                                # on this machine
    grade(Path("downloads/"), scheduler="tcp://head:8786")            # on a Dask cluster
    grade(Path("downloads/"), course=Course(db_url="postgresql://...")) # into a server gradebook

1. Collect: every student's notebooks are found (autograder.term.collect) and copied into the course's
   grading/submitted/<student>/<assignment>/, nbgrader's own layout.
2. Grade: each student goes to the grading engine (autograder.term.engine: Dask, a local cluster of
   `jobs` workers unless a scheduler is named) as plain data, and is graded there in a private
   workspace by a grading process with a time limit. Students with the most notebooks go first.
3. Merge: as each student's outcome comes back, this process, and only this one, writes it into
   the course: the autograded notebooks and HTML feedback into grading/autograded/ and
   grading/feedback/, the automatic scores into the gradebook in one transaction. Manual scores
   and comments already in the gradebook, and every other student's grades, are left as they are.
   A student whose grading failed (time limit, a lost worker) is reported as failed and keeps
   what the gradebook had.
4. Report: what the run found per student and assignment is recorded beside the gradebook, and
   grading/grades.csv (autograder.term.export: one row per student, a column per assignment) is written
   for every student in the gradebook, with the table of this run's students.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from autograder.nbgrader_glue import config
from autograder.nbgrader_glue.config import quiet_gradebook_warnings
from autograder.nbgrader_glue.course import Course, ensure_gradebook
from autograder.term import engine, export
from autograder.term.collect import StudentSubmission, collect_submissions
from autograder.term.progress import Progress


@dataclass
class NotebookScore:
    assignment: str
    notebook: str
    points: float
    max_points: float
    auto_points: float
    auto_max_points: float
    status: str
    """graded, unreadable, failed (nbgrader could not grade it), missing (not handed in)"""
    needs_manual_grade: bool = False


@dataclass
class StudentReport:
    student: str
    scores: list[NotebookScore] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    """assignment -> what this run did with it: graded, unreadable, failed"""
    seconds: float = 0.0
    """how long the worker took"""
    merge_seconds: float = 0.0
    """how long writing the outcome into the course took (the only part that is not spread over workers)"""

    @property
    def total(self) -> float:
        return sum(score.points for score in self.scores)

    @property
    def auto_total(self) -> float:
        return sum(score.auto_points for score in self.scores)

    def score(self, notebook: str) -> NotebookScore:
        return next(s for s in self.scores if s.notebook == notebook)


@dataclass
class GradingRun:
    students: list[StudentReport]
    csv_path: Path
    seconds: float
    jobs: int

    def student(self, student: str) -> StudentReport:
        return next(s for s in self.students if s.student == student)


def grade(
    submissions: Path,
    *,
    course: Course | None = None,
    jobs: int = 1,
    csv_path: Path | None = None,
    student_pattern: str | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    client=None,
) -> GradingRun:
    """Autograde every student in `submissions`; write feedback, the gradebook and grades.csv.

    The students are graded on a local Dask cluster of `jobs` workers, or on the cluster whose
    `scheduler` (address or scheduler file) is given, or through `client` (a distributed.Client).
    `csv_path` defaults to grading/grades.csv in the course. A student whose grading fails,
    whatever the reason, gets a clear status in the report and leaves the gradebook as it was for
    them.
    """
    from autograder.nbgrader_glue.autograde import course_secret

    course = course or Course()
    started = time.perf_counter()
    if course.limits.sandbox:
        from autograder.nbgrader_glue.autograde import NO_SANDBOX_ADVICE, SandboxError
        from autograder.sandbox.bubblewrap import sandbox_status

        ok, reason = sandbox_status()
        if not ok:
            raise SandboxError(f"Not grading: the sandbox for student code cannot start here: {reason}. {NO_SANDBOX_ADVICE}")
    ensure_gradebook(course)
    template = template_gradebook(course)
    secret = course_secret(str(course.secret_path))
    scratch = Path(tempfile.mkdtemp(prefix="autograder-grade-"))
    try:
        students = collect_submissions(Path(submissions), course=course, student_pattern=student_pattern, workdir=scratch)
        place_submissions(students, course, source=Path(submissions))
        (course.grading / "logs").mkdir(parents=True, exist_ok=True)
        status_dir = scratch / "status"
        status_dir.mkdir()
        shown = Progress({s.student: len(s.notebooks) for s in students}, status_dir, jobs=jobs, enabled=progress)
        try:
            with contextlib.ExitStack() as stack:
                if client is None:
                    client = stack.enter_context(engine.open_engine(scheduler=scheduler, jobs=jobs))
                shown.jobs = max(1, sum(client.nthreads().values()))
                reports = grade_on(
                    client,
                    students,
                    course=course,
                    template=template,
                    secret=secret,
                    status_dir=status_dir,
                    done=lambda r: shown.finished(r.student, len(r.statuses), r.seconds),
                )
        finally:
            shown.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    csv_path = Path(csv_path) if csv_path is not None else course.grading / export.GRADES_NAME
    run_statuses = {
        report.student: {a: "graded without sandbox" if s == "graded" and not course.limits.sandbox else s for a, s in report.statuses.items()}
        for report in reports
    }
    export.record_statuses(course.grading, course.db_url, run_statuses)  # what nbgrader export and later runs need to know
    scores = gradebook_scores(course, also=[report.student for report in reports])
    for report in reports:
        report.scores = scores[report.student]
        for score in report.scores:
            score.status = run_statuses[report.student].get(score.assignment, score.status)
    export.write_grades_csv(csv_path, export.course_grade_rows(course))
    reports.sort(key=lambda r: r.student)
    return GradingRun(reports, csv_path, time.perf_counter() - started, jobs)


def place_submissions(students: list[StudentSubmission], course: Course, source: Path) -> None:
    """Copy each student's notebooks into grading/submitted/<student>/<assignment>/<notebook>.ipynb."""
    same_place = source.resolve() == course.submitted.resolve()
    for student in students:
        for assignment in student.assignments:
            folder = course.submitted / student.student / assignment
            if not same_place:
                if folder.exists():
                    shutil.rmtree(folder)
                folder.mkdir(parents=True)
                if assignment in student.timestamps:
                    (folder / "timestamp.txt").write_text(student.timestamps[assignment] + "\n")
            for (a, notebook), submitted in student.notebooks.items():
                if a != assignment:
                    continue
                target = folder / f"{notebook}.ipynb"
                if submitted.path.resolve() != target.resolve():
                    shutil.copyfile(submitted.path, target)
                submitted.path = target


def template_gradebook(course: Course) -> bytes:
    """An SQLite gradebook that knows the course's assignments and no student: what a worker
    grades against. Generated once per version of the source notebooks (cached in grading/cache/);
    the due dates come from the course's gradebook, for late penalties."""
    from nbgrader.api import Gradebook

    config.schema_version_in_process()

    digest = hashlib.sha256()
    for assignment in course.assignments:
        for notebook in course.notebooks(assignment):
            digest.update(f"{assignment}/{notebook}\0".encode() + course.source_notebook(assignment, notebook).read_bytes())
    cached = course.grading / "cache" / f"assignments-{digest.hexdigest()[:16]}.db"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".partial-{os.getpid()}")
        partial.unlink(missing_ok=True)
        ensure_gradebook(
            Course(
                root=course.root,
                source_directory=course.source_directory,
                release_directory=course.release_directory,
                grading_directory=course.grading_directory,
                db_path=partial,
            )
        )
        os.replace(partial, cached)  # whole or not at all, also for two runs at once
    with tempfile.TemporaryDirectory(prefix="autograder-template-") as folder:
        template = Path(folder) / "gradebook.db"
        shutil.copyfile(cached, template)
        with Gradebook(course.db_url, config.COURSE_ID) as course_gb, Gradebook("sqlite:///" + str(template), config.COURSE_ID) as gb:
            for assignment in course_gb.assignments:
                if assignment.duedate is not None:
                    gb.update_or_create_assignment(assignment.name, duedate=assignment.duedate)
        return template.read_bytes()


def student_task(submission: StudentSubmission, *, course: Course, secret: str, status_dir: Path) -> dict:
    """One student, as the plain data a worker grades (see autograder.term.engine.grade_task)."""
    notebooks, unreadable = [], []
    for (assignment, notebook), submitted in sorted(submission.notebooks.items()):
        if submitted.error is not None:
            unreadable.append({"assignment": assignment, "notebook": notebook, "filename": submitted.path.name, "reason": submitted.error})
            continue
        notebooks.append(
            {
                "assignment": assignment,
                "notebook": notebook,
                "text": submitted.path.read_text(errors="replace"),
                "timestamp": submission.timestamps.get(assignment),
            }
        )
    return {
        "student": submission.student,
        "course_root": str(course.root),
        "source_directory": course.source_directory,
        "notebooks": notebooks,
        "autograde": sorted({item["assignment"] for item in notebooks}),
        "unreadable": unreadable,
        "limits": asdict(course.limits),
        "secret": secret,
        "check_modules": [list(pair) for pair in course.check_modules],
        "status_path": str(status_dir / submission.student),
        # the whole student's time limit: each notebook's, and room for nbgrader around them
        "timeout": 120 + len(submission.notebooks) * (course.limits.notebook_timeout + 120),
    }


def grade_on(
    client, students: list[StudentSubmission], *, course: Course, template: bytes, secret: str, status_dir: Path, done=lambda report: None
) -> list[StudentReport]:
    """Send the students to the engine, and merge each outcome into the course as it comes back.

    Students with the most notebooks go first, so that no long grading is left to run alone at the
    end, then in name order. The queue stays here: a student is sent when a worker thread is free
    (Dask does not keep the order of tasks submitted one by one), so the order holds, and a large
    course's notebooks are not all in the scheduler's memory at once."""
    from distributed import as_completed

    reports = []
    # Sent with each student rather than scattered once: Dask cancels the tasks that depend on
    # scattered data when a worker holding it dies, where a lost student should be retried.
    template_data = zlib.compress(template)
    queue = sorted(students, key=lambda submission: -len(submission.notebooks))
    for submission in [s for s in queue if not s.notebooks]:
        report = new_report(submission)
        report.problems.append("no notebook of this course was found")
        reports.append(report)
        done(report)
    waiting = iter([s for s in queue if s.notebooks])
    in_flight, running = {}, as_completed()

    def send_next() -> bool:
        submission = next(waiting, None)
        if submission is None:
            return False
        task = student_task(submission, course=course, secret=secret, status_dir=status_dir)
        task["manual"] = manual_grades(course, submission.student)
        future = client.submit(engine.grade_task, task, template_data, key=f"grade-{submission.student}-{uuid.uuid4().hex[:8]}", pure=False)
        in_flight[future] = submission
        running.add(future)
        return True

    def fill() -> None:  # one student per worker thread (the cluster may grow or shrink meanwhile)
        while len(in_flight) < max(1, sum(client.nthreads().values())) and send_next():
            pass

    fill()
    for future in running:
        submission = in_flight.pop(future)
        fill()
        try:
            outcome = future.result()
        except Exception as error:  # distributed.KilledWorker once its allowed failures are used up, or the engine's own error
            report = failed_report(submission, course, f"the grading engine gave up on this student: {type(error).__name__}: {error}")
        else:
            merge_started = time.perf_counter()
            try:
                report = merge_outcome(outcome, submission, course)
            except Exception as error:  # the run goes on for the other students
                report = failed_report(submission, course, f"its grades could not be saved: {type(error).__name__}: {error}")
            report.merge_seconds = time.perf_counter() - merge_started
        reports.append(report)
        done(report)
    return reports


def new_report(submission: StudentSubmission) -> StudentReport:
    """A student's report, with what collecting their files found wrong."""
    unreadable = [f"{notebook}: {submitted.error}" for (_, notebook), submitted in sorted(submission.notebooks.items()) if submitted.error is not None]
    return StudentReport(submission.student, problems=list(submission.problems) + unreadable)


def failed_report(submission: StudentSubmission, course: Course, problem: str) -> StudentReport:
    report = new_report(submission)
    report.problems.append(problem)
    report.statuses = {assignment: "failed" for assignment in submission.assignments}
    (course.grading / "logs" / f"{submission.student}.log").write_text(problem + "\n")
    return report


def merge_outcome(outcome: dict, submission: StudentSubmission, course: Course) -> StudentReport:
    """Write one student's outcome into the course: log, gradebook (one transaction), autograded
    notebooks and feedback. A failed outcome writes the log only."""
    student = submission.student
    report = new_report(submission)
    report.seconds = outcome.get("seconds", 0.0)
    log_path = course.grading / "logs" / f"{student}.log"
    log_path.write_text(outcome["log"])
    results = outcome["results"]
    all_assignments = sorted(submission.assignments)
    if outcome["returncode"] != 0 or not results:
        why = outcome.get("reason") or f"the grading process failed (exit code {outcome['returncode']}); see {log_path}"
        report.problems.append(why)
        report.statuses = {assignment: "failed" for assignment in all_assignments}
        return report
    for assignment, result in results.items():
        report.statuses[assignment] = result["status"]
        if result["status"] == "failed":
            report.problems.append(f"{assignment}: nbgrader could not grade it; see {log_path}")
    merge_gradebook(course, student, outcome["gradebook"], unchanged=unchanged_answers(course, student, outcome["files"]))
    for assignment in outcome["gradebook"]:
        for kind, folder in (("autograded", course.autograded), ("feedback", course.feedback)):
            destination = folder / student / assignment
            if destination.exists():
                shutil.rmtree(destination)
            prefix = f"{kind}/{assignment}/"
            for name, data in outcome["files"].items():
                if name.startswith(prefix):
                    path = destination / name[len(prefix) :]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
    return report


def manual_grades(course: Course, student: str) -> dict:
    """What graders gave a student by hand, as plain data for the worker, whose feedback must show
    it: per assignment and notebook, each grade's manual score and extra credit and each comment's
    manual text (only the parts a grader set)."""
    from nbgrader.api import Gradebook, MissingEntry

    manual: dict = {}
    with Gradebook(course.db_url, config.COURSE_ID) as gb:
        try:
            submissions = gb.find_student(student).submissions
        except MissingEntry:
            return manual
        for submission in submissions:
            for notebook in submission.notebooks:
                grades = {g.name: [g.manual_score, g.extra_credit] for g in notebook.grades if g.manual_score is not None or g.extra_credit}
                comments = {c.name: c.manual_comment for c in notebook.comments if c.manual_comment}
                if grades or comments:
                    manual.setdefault(submission.assignment.name, {})[notebook.name] = {"grades": grades, "comments": comments}
    return manual


def written_answers(notebook: bytes) -> dict[str, str]:
    """grade_id -> source of an autograded notebook's answers graded by hand (solution and grade cells)."""
    answers = {}
    for cell in json.loads(notebook).get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade") and meta.get("grade_id"):
            source = cell.get("source", "")
            answers[meta["grade_id"]] = "".join(source) if isinstance(source, list) else source
    return answers


def unchanged_answers(course: Course, student: str, files: dict[str, bytes]) -> set[tuple[str, str, str]]:
    """(assignment, notebook, grade_id) of the answers graded by hand whose text is the same as in
    the autograded notebook already in the course: the one a grader saw."""
    unchanged = set()
    for name, data in files.items():
        kind, assignment, filename = name.split("/", 2)
        previous = course.autograded / student / assignment / filename
        if kind != "autograded" or not filename.endswith(".ipynb") or not previous.is_file():
            continue
        try:
            before, after = written_answers(previous.read_bytes()), written_answers(data)
        except ValueError:  # not JSON: treat every answer as changed
            continue
        notebook = filename[: -len(".ipynb")]
        unchanged |= {(assignment, notebook, grade_id) for grade_id, text in after.items() if before.get(grade_id) == text}
    return unchanged


def merge_gradebook(course: Course, student: str, recorded: dict, attempts: int = 5, unchanged: set[tuple[str, str, str]] = frozenset()) -> None:
    """Write one student's automatic scores (engine.read_auto_grades) into the course's gradebook,
    in one transaction, retried when another grading run holds the database.

    Only what autograding produces is written: the submission and its timestamp, auto scores, the
    needs-manual-grade flags, automatic comments and late penalties. Manual scores, manual
    comments and every other student's rows are not touched. An answer graded by hand that is in
    `unchanged` (the same text as when it was graded) stays graded; any other cell with a manual
    score is flagged for review, as nbgrader does.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import IntegrityError, OperationalError

    if not recorded:
        return
    quiet_gradebook_warnings()
    for attempt in range(attempts):
        try:
            with Gradebook(course.db_url, config.COURSE_ID) as gb:
                try:
                    gb.find_student(student)
                except MissingEntry:
                    gb.update_or_create_student(student)
                for assignment, submitted in recorded.items():
                    timestamp = datetime.fromisoformat(submitted["timestamp"]) if submitted["timestamp"] else None
                    gb.update_or_create_submission(assignment, student, timestamp=timestamp)
                    for notebook, parts in submitted["notebooks"].items():
                        target_notebook = gb.find_submission_notebook(notebook, assignment, student)
                        target_notebook.late_submission_penalty = parts["late_submission_penalty"]
                        for name, (auto_score, needs_manual_grade) in parts["grades"].items():
                            grade = gb.find_grade(name, notebook, assignment, student)
                            grade.auto_score = auto_score
                            if grade.manual_score is None or (assignment, notebook, name) not in unchanged:
                                grade.needs_manual_grade = needs_manual_grade or grade.manual_score is not None
                        for name, auto_comment in parts["comments"].items():
                            gb.find_comment(name, notebook, assignment, student).auto_comment = auto_comment
                gb.db.commit()
            return
        except (OperationalError, IntegrityError):  # the database was busy, or another run created the student first
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * 2**attempt)


def gradebook_scores(course: Course, also: list[str] = ()) -> dict[str, list[NotebookScore]]:
    """Every student's score on every notebook that anyone handed in (as grades.csv counts them:
    an assignment not yet released is no column), from the gradebook; students in `also` that the
    gradebook does not know get a row per notebook marked "missing"."""
    from nbgrader.api import Gradebook, MissingEntry

    scores: dict[str, list[NotebookScore]] = {}
    with Gradebook(course.db_url, config.COURSE_ID) as gb:
        assignments = sorted((a for a in gb.assignments if a.submissions), key=lambda a: a.name)
        students = sorted({s.id for s in gb.students} | set(also))
        for student_id in students:
            rows = []
            for assignment in assignments:
                for notebook in sorted(assignment.notebooks, key=lambda n: n.name):
                    auto_max = sum(cell.max_score for cell in notebook.grade_cells if cell.cell_type == "code")
                    try:
                        submitted = gb.find_submission_notebook(notebook.name, assignment.name, student_id)
                    except MissingEntry:
                        rows.append(NotebookScore(assignment.name, notebook.name, 0.0, notebook.max_score, 0.0, auto_max, "missing"))
                        continue
                    auto = sum(g.score for g in submitted.grades if g.cell.cell_type == "code")
                    rows.append(
                        NotebookScore(
                            assignment.name,
                            notebook.name,
                            export.submission_points(submitted.score, submitted.late_submission_penalty),
                            float(submitted.max_score),
                            float(auto),
                            float(auto_max),
                            "graded",
                            bool(submitted.needs_manual_grade),
                        )
                    )
            scores[student_id] = rows
    return scores


def format_table(run: GradingRun, expected: dict[str, float] | None = None, mismatched: set[str] | None = None) -> str:
    """The grade table: automatically graded points per notebook, written answers pending. With
    `expected`, a column of expected points, marked MISMATCH for the students in `mismatched`
    (default: those whose points differ from the expected ones)."""
    notebooks = sorted({score.notebook for report in run.students for score in report.scores})
    short = {nb: nb.split("_", 1)[0] if nb[:2].isdigit() else nb for nb in notebooks}
    header = ["student"] + [short[nb] for nb in notebooks] + ["auto total"]
    if expected is not None:
        header += ["expected", ""]
    rows = []
    for report in run.students:
        row = [report.student]
        for nb in notebooks:
            score = next((s for s in report.scores if s.notebook == nb), None)
            if score is None or score.status == "missing":
                row.append("-")
            elif not score.status.startswith("graded"):
                row.append(score.status)
            else:
                row.append(f"{export.number_text(score.auto_points)}/{export.number_text(score.auto_max_points)}")
        auto_max = sum(s.auto_max_points for s in report.scores)
        row.append(f"{export.number_text(report.auto_total)}/{export.number_text(auto_max)}")
        if expected is not None:
            want = expected.get(report.student)
            differs = want is not None and abs(want - report.auto_total) > 1e-9
            wrong = report.student in mismatched if mismatched is not None else differs
            verdict = "MISMATCH" if wrong else ("fewer, allowed" if differs else "ok")  # "ok" only when the points match
            row += ["?" if want is None else export.number_text(want), "" if want is None else verdict]
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(r, widths)).rstrip() for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"{r.student}: {p}" for r in run.students for p in r.problems]
    written = sum(s.max_points - s.auto_max_points for s in (run.students[0].scores if run.students else []))
    waiting = sum(any(s.needs_manual_grade for s in r.scores) for r in run.students)
    footer = []
    if written:
        footer.append(
            f"'-': not handed in. Written answers: {export.number_text(written)} points per student, graded by hand in formgrader; "
            + (f"students with answers still to grade: {waiting} of {len(run.students)}." if waiting else "all graded.")
        )
    if any(s.status == "graded without sandbox" for r in run.students for s in r.scores):
        footer.append("NOT SANDBOXED: this run used --no-sandbox; the checker decided the points, but student code could read the grader's files.")
    return "\n".join(lines + [""] + footer + notes)
