"""How fast the autograder grades: complete submissions with 1 worker and with 2, in one run.

    python -m benchmarks.grading --students 4 --json              # the local engine (--jobs N)
    python -m benchmarks.grading --students 4 --cluster --json    # a scheduler and N worker processes

Copies the source notebooks into a scratch course, releases them with nbgrader, hands in the
reference solution of every notebook for each of N students, and grades that same folder once per
number of workers, one after the other, so that the figures share the machine's conditions. With
--cluster each run starts a real Dask cluster of separate processes (autograder.term.engine.
process_cluster), as on several machines. Reports submissions per minute, the speed-up over the
first run, and the projection for 1,000 students on W workers from the last run's rate per worker
(as if each worker had a core of its own, which the speed-up checks on this machine).

Wall time depends on what else the machine runs, so each run also reports the CPU seconds of the
whole process tree (this process, the grading processes, nbgrader, every student's runner, killed
or not: benchmarks.cpu.TreeClock, a cpuacct cgroup; `cpu_clock` names the clock, getrusage where
no cgroup can be made) per submission, the busy time of the whole machine per submission (whatever
else runs is in it too), and the load average before and after it, and `host_probe_seconds`: the CPU seconds of a fixed
piece of planning before and after the run (benchmarks.cpu.host_probe_seconds), how fast this
shared machine was at the time.
`student_cpu_seconds` splits the tree's CPU at the moments each student's grades arrived: with one
job the students are graded one after the other, so each gap is one student's cost, the first one
with the run's start-up (the engine, the worker's imports, its warm sandbox, the gradebook).
Targets on a 2-core CPU: one complete submission (all four notebooks) graded in at most 20 s of CPU
(the median of `student_cpu_seconds` of the 1-worker run), and `speedup` of 2 workers over 1 at least
1.6 on 4 students.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from unittest import mock

from autograder.examples import build_examples, write_examples
from autograder.nbgrader_glue.course import Course, released_copy
from autograder.term.engine import process_cluster
from autograder.term.grading import grade
from autograder.term.progress import Progress
from benchmarks.cpu import TreeClock, host_probe_seconds, machine_cpu_seconds

PROJECTED_WORKERS = (1, 2, 8, 32, 128)


def grading_times(
    *, students: int = 4, jobs: tuple[int, ...] = (1, 2), course: Course | None = None, workdir: Path | None = None, cluster: bool = False
) -> dict:
    """Seconds to grade `students` complete reference submissions with each number of workers."""
    course = course or Course()
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="grading-benchmark-"))
    clock = TreeClock()
    report = {"students": students, "cpu_clock": clock.source, "engine": "process cluster" if cluster else "local", "notebooks": [], "runs": []}
    try:
        for n_jobs in jobs:
            root = workdir / f"jobs-{n_jobs}"
            scratch = released_copy(course, root)
            reference = next(e for e in build_examples(scratch, mistakes=(), alternatives=(), cheats=(), victim=False) if e.student == "reference")
            report["notebooks"] = sorted(notebook for _, notebook in reference.notebooks)
            submissions = root / "submissions"
            for i in range(students):
                reference.student = f"student-{i + 1}"
                write_examples([reference], submissions)
            probe_before = host_probe_seconds()
            load_before, cpu_before, machine_before = os.getloadavg(), clock.seconds(), machine_cpu_seconds()
            finished_at: list[float] = []  # the clock when each student's grades arrived: with 1 job, one student's CPU is the gap
            with (
                mock.patch.object(Progress, "finished", recording(Progress.finished, finished_at, clock)),
                process_cluster(root / "cluster", workers=n_jobs) if cluster else contextlib.nullcontext() as scheduler_file,
            ):
                run = grade(submissions, course=scratch, jobs=n_jobs, progress=False, scheduler=str(scheduler_file) if cluster else None)
            machine_seconds = machine_cpu_seconds() - machine_before
            cpu_seconds = clock.seconds() - cpu_before
            seconds = [r.seconds for r in run.students]
            report["runs"].append(
                {
                    "jobs": n_jobs,
                    "seconds": round(run.seconds, 1),
                    "cpu_seconds": round(cpu_seconds, 1),
                    "cpu_seconds_per_submission": round(cpu_seconds / students, 1),
                    "machine_cpu_seconds_per_submission": round(machine_seconds / students, 1),
                    "student_cpu_seconds": [round(b - a, 1) for a, b in zip([cpu_before, *finished_at], finished_at)],
                    "host_probe_seconds": [round(probe_before, 2), round(host_probe_seconds(), 2)],
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "submissions_per_minute": round(students / run.seconds * 60, 3),
                    "student_seconds": [round(s, 1) for s in seconds],
                    "median_student_seconds": round(statistics.median(seconds), 1),
                    "median_merge_seconds": round(statistics.median(r.merge_seconds for r in run.students), 3),
                    "points": [r.auto_total for r in run.students],
                    "checks_failed": failed_checks(scratch),
                    "max_points": [sum(s.auto_max_points for s in r.scores) for r in run.students],
                }
            )
        first = report["runs"][0]["seconds"]
        for entry in report["runs"]:
            entry["speedup"] = round(first / entry["seconds"], 2)
        last = report["runs"][-1]
        per_worker = last["submissions_per_minute"] / last["jobs"]
        report["projection_1000_students_hours"] = {str(w): round(1000 / (per_worker * w) / 60, 3) for w in PROJECTED_WORKERS}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def recording(finished, times: list[float], clock: TreeClock):
    """Progress.finished that first appends the clock's reading to `times`."""

    def record(self, *args):
        times.append(clock.seconds())
        return finished(self, *args)

    return record


def failed_checks(course: Course) -> dict[str, list[str]]:
    """Every autograded cell that scored less than its points, by student: a reference submission
    should have none, so any is a check that failed a correct solution."""
    from nbgrader.api import Gradebook

    from autograder.nbgrader_glue.config import COURSE_ID

    failed: dict[str, list[str]] = {}
    with Gradebook(course.db_url, COURSE_ID) as gb:
        for student in gb.students:
            for submission in gb.student_submissions(student.id):
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if grade.auto_score is not None and grade.auto_score < grade.max_score:
                            failed.setdefault(student.id, []).append(f"{notebook.name}/{grade.name}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.grading",
        description="Time the grading of N complete reference submissions with each number of jobs, in one run.",
        epilog="example:\n  python -m benchmarks.grading --students 4 --jobs 1 2 --cluster --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--students", type=int, default=4, help="complete submissions to grade (default: 4)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="numbers of workers to compare; speed-ups are over the first (default: 1 2)")
    parser.add_argument(
        "--cluster", action="store_true", help="grade on a Dask scheduler and worker processes started for each run (default: the local engine)"
    )
    parser.add_argument("--course-dir", type=Path, default=None, metavar="DIR", help="course root whose solutions/ are graded (default: this repository)")
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    args = parser.parse_args(argv)
    course = Course(root=args.course_dir) if args.course_dir else None
    report = grading_times(students=args.students, jobs=tuple(args.jobs), course=course, cluster=args.cluster)
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
