"""How long the autograder takes: complete submissions graded with 1 job and with 2, in one run.

    python -m benchmarks.grading --students 4 --json

Copies the source notebooks into a scratch course, releases them with nbgrader, hands in the
reference solution of every notebook for each of N students, and grades that same folder once per
value of --jobs, one after the other, so that the figures share the machine's conditions.
Targets on a 2-core CPU: one complete submission (all three notebooks) graded in under 600 s
(`student_seconds` of the 1-job run), and `speedup` of 2 jobs over 1 at least 1.6 on 4 students.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from autograder.course import Course, release
from autograder.examples import build_examples, write_examples
from autograder.grading import grade


def grading_times(*, students: int = 4, jobs: tuple[int, ...] = (1, 2), course: Course | None = None, workdir: Path | None = None) -> dict:
    """Seconds to grade `students` complete reference submissions with each number of jobs."""
    course = course or Course()
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="grading-benchmark-"))
    report = {"students": students, "notebooks": [], "runs": []}
    try:
        for n_jobs in jobs:
            root = workdir / f"jobs-{n_jobs}"
            shutil.copytree(course.source, root / course.source_directory)
            scratch = Course(
                root=root, source_directory=course.source_directory, release_directory=course.release_directory, limits=course.limits, check_modules=course.check_modules
            )
            release(course=scratch)
            reference = next(e for e in build_examples(scratch, mistakes=(), alternatives=(), cheats=(), victim=False) if e.student == "reference")
            report["notebooks"] = sorted(notebook for _, notebook in reference.notebooks)
            submissions = root / "submissions"
            for i in range(students):
                reference.student = f"student-{i + 1}"
                write_examples([reference], submissions)
            run = grade(submissions, course=scratch, jobs=n_jobs, progress=False)
            seconds = [r.seconds for r in run.students]
            report["runs"].append(
                {
                    "jobs": n_jobs,
                    "seconds": round(run.seconds, 1),
                    "student_seconds": [round(s, 1) for s in seconds],
                    "median_student_seconds": round(statistics.median(seconds), 1),
                    "points": [r.auto_total for r in run.students],
                    "max_points": [sum(s.auto_max_points for s in r.scores) for r in run.students],
                }
            )
        first = report["runs"][0]["seconds"]
        for entry in report["runs"]:
            entry["speedup"] = round(first / entry["seconds"], 2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.grading",
        description="Time the grading of N complete reference submissions with each number of jobs, in one run.",
        epilog="example:\n  python -m benchmarks.grading --students 4 --jobs 1 2 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--students", type=int, default=4, help="complete submissions to grade (default: 4)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="numbers of jobs to compare; speed-ups are over the first (default: 1 2)")
    parser.add_argument("--course-dir", type=Path, default=None, metavar="DIR", help="course root whose solutions/ are graded (default: this repository)")
    parser.add_argument("--json", action="store_true", help="print the JSON object on one line")
    args = parser.parse_args(argv)
    course = Course(root=args.course_dir) if args.course_dir else None
    report = grading_times(students=args.students, jobs=tuple(args.jobs), course=course)
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
