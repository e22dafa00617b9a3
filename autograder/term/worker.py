"""Grade one student in a private copy of the course directory (run as a separate process).

`python -m autograder.term.worker JOB.json` is what `autograder.term.grading.grade` starts for each
student, several at a time with --jobs. The job file names a workspace that holds
submitted/<student>/..., a copy of the gradebook and a link to the source notebooks; the worker
runs nbgrader's autograde and generate_feedback there through nbgrader's Python API, records a
zero for notebooks that could not be read, and writes what happened to the job's result file.
Each notebook's runner is a copy of the worker's warm sandbox, one at a time
(autograder.checker.core.warm_sandbox). Only the workspace is written to: the parent process merges it into the course afterwards, one
student at a time, so parallel workers never share a gradebook.
"""

from __future__ import annotations

import html
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TextIO

from autograder.checker.core import warm_sandbox
from autograder.nbgrader_glue import config
from autograder.nbgrader_glue.course import Course
from autograder.protocol.limits import Limits

LOG_TAIL = 4000


def run_job(job: dict) -> dict:
    workspace = Path(job["workspace"])
    course = Course(
        root=workspace,
        source_directory="source",
        release_directory="release",
        grading_directory="grading",
        db_path=workspace / "gradebook.db",
        limits=Limits.from_dict(job["limits"]),
        secret_file=Path(job["secret_file"]) if job.get("secret_file") else None,
        check_modules=tuple(tuple(pair) for pair in job.get("check_modules", ())),
        status_file=Path(job["status"]) if job.get("status") else None,
    )
    student = job["student"]
    api = course.api(log_level=logging.INFO)
    results, full_log = {}, []
    for assignment in job["autograde"]:
        results[assignment], log = autograde_one(api, course, student, assignment, job.get("manual", {}).get(assignment, {}))
        full_log.append(f"==== {assignment}: {results[assignment]['status']}\n{log}")
    if job.get("log"):
        Path(job["log"]).write_text("\n".join(full_log))
    for item in job["unreadable"]:
        assignment, notebook, reason = item["assignment"], item["notebook"], item["reason"]
        if assignment not in job["autograde"]:
            record_zero(course, student, assignment)
            results[assignment] = {"status": "unreadable", "log": reason}
        write_unreadable_feedback(course, student, assignment, notebook, item["filename"], reason)
    return results


def autograde_one(api, course: Course, student: str, assignment: str, manual: dict) -> tuple[dict, str]:
    """nbgrader's autograde and generate_feedback of one assignment: ({status, log tail}, full log)."""
    seed_manual_grades(course, student, assignment, manual)
    outcome = api.autograde(assignment, student, force=True, create=True)
    log = outcome.get("log", "") + outcome.get("error", "")
    if not outcome["success"]:
        # nbgrader gives up on a whole notebook when, for instance, its kernel does not start
        # in time on a busy machine; one more try before the student is reported as failed.
        outcome = api.autograde(assignment, student, force=True, create=True)
        log += "\n==== second try\n" + outcome.get("log", "") + outcome.get("error", "")
    if outcome["success"]:
        feedback = api.generate_feedback(assignment, student, force=True)
        log += feedback.get("log", "") + feedback.get("error", "")
        status = "graded" if feedback["success"] else "failed"
    else:
        status = "failed"
    return {"status": status, "log": log[-LOG_TAIL:]}, log


def seed_manual_grades(course: Course, student: str, assignment: str, manual: dict) -> None:
    """Put what graders gave this student by hand into the workspace's gradebook before autograding,
    so that the feedback written here shows it (autograding keeps manual scores)."""
    if not manual:
        return
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue.config import COURSE_ID

    with Gradebook(course.db_url, COURSE_ID) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student)
        for notebook, parts in manual.items():
            for name, (manual_score, extra_credit) in parts["grades"].items():
                grade = gb.find_grade(name, notebook, assignment, student)
                grade.manual_score, grade.extra_credit = manual_score, extra_credit
            for name, manual_comment in parts["comments"].items():
                gb.find_comment(name, notebook, assignment, student).manual_comment = manual_comment
        gb.db.commit()


def record_zero(course: Course, student: str, assignment: str) -> None:
    """What nbgrader records for a notebook that was not handed in: zero on every graded cell."""
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue.config import COURSE_ID

    with Gradebook(course.db_url, COURSE_ID) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()


def write_unreadable_feedback(course: Course, student: str, assignment: str, notebook: str, filename: str, reason: str) -> Path:
    """A feedback page in place of nbgrader's for a file that is not a readable notebook."""
    path = course.feedback / student / assignment / f"{notebook}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>"
        f"{html.escape(notebook)}: not graded</title></head><body>\n"
        f"<h1>{html.escape(notebook)}</h1>\n"
        f"<p><strong>Score: 0</strong>. The file you handed in, <code>{html.escape(filename)}</code>, "
        f"could not be graded: {html.escape(reason)}.</p>\n"
        "<p>Open it in JupyterLab: if it does not open, hand in a notebook saved from JupyterLab "
        "(File &gt; Save Notebook) and ask your instructor to grade it again.</p>\n</body></html>\n"
    )
    return path


def run_and_record(job_path: Path) -> None:
    """Run one job file: write its result file, and the full nbgrader log beside it."""
    job = json.loads(Path(job_path).read_text())
    results = run_job(job)
    Path(job["result"]).write_text(json.dumps(results, indent=1))


def serve(requests: TextIO, replies: TextIO) -> int:
    """Grade job after job: read a job file's path per line, answer "done PATH" or "failed PATH".

    One worker process grades many students in turn, which saves nbgrader's start-up (about 2 s)
    per student; the parent still gives each student a time limit and replaces a worker it had to
    kill.
    """
    for line in requests:
        job_path = line.strip()
        if not job_path:
            continue
        try:
            run_and_record(Path(job_path))
        except Exception:  # a job that breaks the worker's own code: report it, keep serving
            traceback.print_exc()
            print(f"failed {job_path}", file=replies, flush=True)
        else:
            print(f"done {job_path}", file=replies, flush=True)
    return 0


def end_with_parent(every: float = 1.0) -> None:
    """Kill this process group (the grading process and the sandboxes it started) once the process
    that started it is gone: a lost cluster worker leaves no grading running on."""
    import signal
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config.quiet_gradebook_warnings()
    if argv == ["--serve"]:
        end_with_parent()
        # Replies go to a private copy of stdout; file descriptor 1, which kernels inherit and
        # where C libraries and os.system() write, joins stderr (the log) so it cannot garble them.
        replies = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        with warm_sandbox():  # the runners' start-up (torch, IPython, matplotlib) once per worker
            return serve(sys.stdin, replies)
    if len(argv) != 1:
        print(
            "usage: python -m autograder.term.worker JOB.json | --serve   (started by `python -m autograder grade`)\n"
            "example: python -m autograder.term.worker /tmp/autograder-grade-x/workspaces/ada/job.json",
            file=sys.stderr,
        )
        return 2
    with warm_sandbox():
        run_and_record(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
