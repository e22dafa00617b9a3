"""From a folder of submissions to grades, feedback and a CSV, with nbgrader doing the grading.

    grade(Path("downloads/"), jobs=2)

1. Collect: every student's notebooks are found (autograder.collect) and copied into the course's
   grading/submitted/<student>/<assignment>/, nbgrader's own layout.
2. Grade: each student is graded in a private workspace holding a copy of the gradebook, by a
   worker process (autograder.worker) outside this one; `jobs` workers run at once, each grading
   one student after another, each kernel on one CPU thread. A worker that exceeds a student's
   time limit is killed with its kernels and replaced; that student is reported as failed.
3. Merge: as each worker finishes, the parent process copies its autograded notebooks and HTML
   feedback into grading/autograded/ and grading/feedback/, and its automatic scores into the
   course's gradebook, one student at a time. Manual scores and comments already in the gradebook,
   and every other student's grades, are left as they are.
4. Report: grading/grades.csv (student, notebook, points, max_points, total) for every student in
   the gradebook, and the table of this run's students.
"""
from __future__ import annotations

import csv
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import config
from autograder.collect import StudentSubmission, collect_submissions
from autograder.course import Course, ensure_gradebook, with_package_on_path
from autograder.worker import quiet_gradebook_warnings

# The worker (nbgrader and the checker) computes on one thread: several run at once on few cores.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
CSV_COLUMNS = ("student", "notebook", "points", "max_points", "total", "status")


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
) -> GradingRun:
    """Autograde every student in `submissions`; write feedback, the gradebook and grades.csv.

    `jobs` students are graded at once, each in its own process. `csv_path` defaults to
    grading/grades.csv in the course. A student whose grading fails, whatever the reason, gets a
    clear status in the report and leaves the gradebook as it was for them.
    """
    course = course or Course()
    started = time.perf_counter()
    if course.limits.sandbox:
        from autograder.preprocessors import NO_SANDBOX_ADVICE, SandboxError
        from autograder.sandbox import sandbox_status

        ok, reason = sandbox_status()
        if not ok:
            raise SandboxError(f"Not grading: the sandbox for student code cannot start here: {reason}. {NO_SANDBOX_ADVICE}")
    ensure_gradebook(course)
    scratch = Path(tempfile.mkdtemp(prefix="autograder-grade-"))
    try:
        students = collect_submissions(Path(submissions), course=course, student_pattern=student_pattern, workdir=scratch)
        place_submissions(students, course, source=Path(submissions))
        lock = threading.Lock()
        (course.grading / "logs").mkdir(parents=True, exist_ok=True)
        workers = WorkerPool(course.grading / "logs")
        reports = []
        bar = _progress_bar(len(students), progress)
        watch = ProgressWatch(bar)
        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as threads:
                # Students with the most notebooks first, so that no long grading is left to run alone at the end.
                queue = sorted(students, key=lambda submission: -len(submission.notebooks))
                futures = [
                    threads.submit(_grade_student_or_report, submission, course=course, scratch=scratch, lock=lock, pool=workers, watch=watch)
                    for submission in queue
                ]
                for future in as_completed(futures):
                    reports.append(future.result())
                    bar.update(1)
        finally:
            watch.stop()
            bar.close()
            workers.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    csv_path = Path(csv_path) if csv_path is not None else course.grading / "grades.csv"
    scores = gradebook_scores(course, also=[report.student for report in reports])
    for report in reports:
        report.scores = scores[report.student]
        for score in report.scores:
            status = report.statuses.get(score.assignment)
            if status is not None and status != "graded":
                score.status = status
            elif status == "graded" and not course.limits.sandbox:
                score.status = "graded without sandbox"
    write_grades_csv(course, csv_path, scores)
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


def _grade_student_or_report(submission: StudentSubmission, **kwargs) -> StudentReport:
    """grade_student, with an unexpected error reported for this student instead of ending the run."""
    try:
        return grade_student(submission, **kwargs)
    except Exception as error:  # the run goes on for the other students
        report = StudentReport(submission.student, problems=[f"grading stopped with an error: {type(error).__name__}: {error}"])
        report.statuses = {assignment: "failed" for assignment in submission.assignments}
        return report


def grade_student(submission: StudentSubmission, *, course: Course, scratch: Path, lock: threading.Lock, pool: WorkerPool, watch: "ProgressWatch | None" = None) -> StudentReport:
    """Grade one student in a worker process, then merge the results into the course."""
    started = time.perf_counter()
    student = submission.student
    report = StudentReport(student, problems=list(submission.problems))
    statuses = report.statuses
    if not submission.notebooks:
        report.problems.append("no notebook of this course was found")
        return report
    workspace = scratch / "workspaces" / student
    ws_course = Course(root=workspace, source_directory="source", release_directory="release", grading_directory="grading", db_path=workspace / "gradebook.db")
    (workspace / "grading").mkdir(parents=True)
    (workspace / "source").symlink_to(course.source, target_is_directory=True)
    autograde, unreadable = set(), []
    for (assignment, notebook), submitted in sorted(submission.notebooks.items()):
        if submitted.error is not None:
            unreadable.append({"assignment": assignment, "notebook": notebook, "filename": submitted.path.name, "reason": submitted.error})
            report.problems.append(f"{notebook}: {submitted.error}")
            continue
        target = ws_course.submitted / student / assignment / f"{notebook}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(submitted.path, target)
        timestamp = submitted.path.parent / "timestamp.txt"
        if timestamp.is_file():
            shutil.copyfile(timestamp, target.parent / "timestamp.txt")
        autograde.add(assignment)
    with lock:
        copy_sqlite(course.gradebook, ws_course.gradebook)
    log_path = course.grading / "logs" / f"{student}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    job = {
        "log": str(log_path),
        "workspace": str(workspace),
        "student": student,
        "autograde": sorted(autograde),
        "unreadable": unreadable,
        "limits": asdict(course.limits),
        "result": str(workspace / "result.json"),
        "secret_file": str(course.secret_path),
        "check_modules": [list(pair) for pair in course.check_modules],
        "status": str(workspace / "status.txt"),
    }
    job_path = workspace / "job.json"
    job_path.write_text(json.dumps(job, indent=1))
    n_notebooks = len(submission.notebooks)
    hard_limit = 120 + n_notebooks * (course.limits.notebook_timeout + 120)
    if watch is not None:
        watch.begin(student, Path(job["status"]))
    try:
        returncode = run_worker(pool, job_path, timeout=hard_limit)
    finally:
        if watch is not None:
            watch.end(student)
    results = json.loads(Path(job["result"]).read_text()) if Path(job["result"]).is_file() else {}
    if returncode != 0 or not results:
        report.problems.append(f"the grading process failed (exit code {returncode}); see {log_path}")
        for assignment in sorted(autograde | {u["assignment"] for u in unreadable}):
            statuses[assignment] = "failed"
        report.seconds = time.perf_counter() - started
        return report
    merged = [a for a, r in results.items() if r["status"] in ("graded", "unreadable")]
    for assignment, result in results.items():
        statuses[assignment] = result["status"]
        if result["status"] == "failed":
            report.problems.append(f"{assignment}: nbgrader could not grade it; see {log_path}")
    with lock:
        merge_gradebook(ws_course, course, student, merged)
        for folder in (ws_course.autograded, ws_course.feedback):
            main_folder = course.autograded if folder == ws_course.autograded else course.feedback
            for assignment in sorted(autograde | {u["assignment"] for u in unreadable}):
                produced = folder / student / assignment
                if produced.is_dir() and assignment in merged:
                    destination = main_folder / student / assignment
                    if destination.exists():
                        shutil.rmtree(destination)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copytree(produced, destination)
    shutil.rmtree(workspace, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


class Worker:
    """A long-lived `python -m autograder.worker --serve` process that grades one student at a time."""

    def __init__(self, log_path: Path):
        self.log = open(log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.worker", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,  # its own process group: a kill reaches its kernels too
            env=with_package_on_path({**os.environ, "PYTHONUNBUFFERED": "1", **ONE_THREAD}),
        )

    def grade(self, job_path: Path, timeout: float) -> int:
        """0 when the job ran; otherwise the worker is dead (killed on timeout) and an error code."""
        try:
            self.process.stdin.write(f"{job_path}\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self.process.poll() or -1
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.log.write(f"\n{job_path}: killed after {timeout:.0f} s\n")
            self.kill()
            return -signal.SIGKILL
        reply = self.process.stdout.readline().strip()
        if reply == f"done {job_path}":
            return 0
        if not reply:  # the worker died
            self.kill()
            return self.process.returncode or -1
        return 1

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self._release()

    def close(self) -> None:
        """Let the worker finish (end of its input), or kill it after 30 s."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (subprocess.TimeoutExpired, OSError):
                self.kill()
        self._release()

    def _release(self) -> None:
        for stream in (self.process.stdin, self.process.stdout, self.log):
            try:
                stream.close()
            except OSError:
                pass


class WorkerPool:
    """Worker processes shared by the grading threads; a worker that failed is replaced."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.idle: list[Worker] = []
        self.lock = threading.Lock()
        self.started = 0

    def grade(self, job_path: Path, timeout: float) -> int:
        with self.lock:
            if self.idle:
                worker = self.idle.pop()
            else:
                self.started += 1
                worker = Worker(self.log_dir / f"worker-{self.started}.log")
        code = worker.grade(job_path, timeout)
        if worker.process.poll() is None:
            with self.lock:
                self.idle.append(worker)
        else:
            worker.kill()
        return code

    def close(self) -> None:
        with self.lock:
            for worker in self.idle:
                worker.close()
            self.idle = []


def run_worker(pool: WorkerPool, job_path: Path, *, timeout: float) -> int:
    """Grade one job in the pool (a function of its own, so that tests can stand in for it)."""
    return pool.grade(job_path, timeout)


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite database (sqlite3's online backup)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def merge_gradebook(from_course: Course, into_course: Course, student: str, assignments: list[str]) -> None:
    """Copy one student's automatic scores for `assignments` from a worker's gradebook.

    Only what autograding produces is copied: the submission and its timestamp, auto scores, the
    needs-manual-grade flags, automatic comments and late penalties. Manual scores, manual
    comments and every other student's rows in the course's gradebook are not touched.
    """
    from nbgrader.api import Gradebook, MissingEntry

    if not assignments:
        return
    quiet_gradebook_warnings()
    with Gradebook(from_course.db_url, config.COURSE_ID) as src, Gradebook(into_course.db_url, config.COURSE_ID) as dst:
        source_student = src.find_student(student)
        try:
            dst.find_student(student)
        except MissingEntry:
            dst.update_or_create_student(
                student,
                first_name=source_student.first_name,
                last_name=source_student.last_name,
                email=source_student.email,
                lms_user_id=source_student.lms_user_id,
            )
        for assignment in assignments:
            submission = src.find_submission(assignment, student)
            target = dst.update_or_create_submission(assignment, student, timestamp=submission.timestamp)
            for notebook in submission.notebooks:
                target_notebook = dst.find_submission_notebook(notebook.name, assignment, student)
                target_notebook.late_submission_penalty = notebook.late_submission_penalty
                for grade in notebook.grades:
                    target_grade = dst.find_grade(grade.name, notebook.name, assignment, student)
                    target_grade.auto_score = grade.auto_score
                    target_grade.needs_manual_grade = grade.needs_manual_grade or target_grade.manual_score is not None
                for comment in notebook.comments:
                    dst.find_comment(comment.name, notebook.name, assignment, student).auto_comment = comment.auto_comment
            del target
        dst.db.commit()


def gradebook_scores(course: Course, also: list[str] = ()) -> dict[str, list[NotebookScore]]:
    """Every student's score on every notebook of the course, from the gradebook; students in
    `also` that the gradebook does not know get a row per notebook marked "missing"."""
    from nbgrader.api import Gradebook, MissingEntry

    scores: dict[str, list[NotebookScore]] = {}
    with Gradebook(course.db_url, config.COURSE_ID) as gb:
        assignments = sorted(gb.assignments, key=lambda a: a.name)
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
                            float(submitted.score - (submitted.late_submission_penalty or 0)),
                            float(submitted.max_score),
                            float(auto),
                            float(auto_max),
                            "graded",
                            bool(submitted.needs_manual_grade),
                        )
                    )
            scores[student_id] = rows
    return scores


def write_grades_csv(course: Course, path: Path, scores: dict[str, list[NotebookScore]] | None = None) -> Path:
    """grades.csv: one row per student and notebook; total is the student's sum over notebooks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scores = gradebook_scores(course) if scores is None else scores
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for student, rows in sorted(scores.items()):
            total = sum(row.points for row in rows)
            for row in rows:
                writer.writerow([student, row.notebook, _number(row.points), _number(row.max_points), _number(total), CSV_STATUS.get(row.status, row.status)])
    return path


CSV_STATUS = {
    "failed": "failed: could not be graded, not a zero (see grading/logs/)",
    "unreadable": "unreadable: not a notebook, scored 0",
    "missing": "missing: not handed in",
}


def _number(value: float) -> str:
    return f"{value:g}"


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
                row.append(f"{_number(score.auto_points)}/{_number(score.auto_max_points)}")
        auto_max = sum(s.auto_max_points for s in report.scores)
        row.append(f"{_number(report.auto_total)}/{_number(auto_max)}")
        if expected is not None:
            want = expected.get(report.student)
            wrong = report.student in mismatched if mismatched is not None else want is not None and abs(want - report.auto_total) > 1e-9
            row += ["?" if want is None else _number(want), "" if want is None else ("MISMATCH" if wrong else "ok")]
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(r, widths)).rstrip() for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"{r.student}: {p}" for r in run.students for p in r.problems]
    written = sum(s.max_points - s.auto_max_points for s in (run.students[0].scores if run.students else []))
    footer = [f"'-': not handed in. Written answers ({_number(written)} points per student) await manual grading."] if written else []
    if any(s.status == "graded without sandbox" for r in run.students for s in r.scores):
        footer.append("NOT SANDBOXED: this run used --no-sandbox; the checker decided the points, but student code could read the grader's files.")
    return "\n".join(lines + [""] + footer + notes)


class ProgressWatch:
    """Keeps the progress bar's text on who is being graded, where, and for how long:
    "ada 01_deterministic_cem: check test-cem-return 42 s". Each worker writes its status file."""

    def __init__(self, bar, every: float = 1.0):
        self.bar, self.active, self.lock = bar, {}, threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        if not getattr(bar, "disable", True):
            self.thread.start()

    def begin(self, student: str, status: Path) -> None:
        with self.lock:
            self.active[student] = (time.monotonic(), status)

    def end(self, student: str) -> None:
        with self.lock:
            self.active.pop(student, None)

    def text(self) -> str:
        with self.lock:
            active = list(self.active.items())
        parts = []
        for student, (since, status) in active:
            try:
                where = status.read_text().strip()
            except OSError:
                where = "starting"
            parts.append(f"{student} {where} {time.monotonic() - since:.0f} s")
        return "; ".join(parts)

    def _run(self, every: float) -> None:
        while not self.done.wait(every):
            self.bar.set_postfix_str(self.text(), refresh=True)

    def stop(self) -> None:
        self.done.set()


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="student", disable=not enabled)
