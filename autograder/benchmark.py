"""How long grading takes: one complete submission, and N submissions with 1 job and with 2.

    python -m autograder.benchmark --students 4

Copies the source notebooks into a scratch course, releases them, hands in the reference
solution of every notebook for each of N students, and grades the same folder once per value of
--jobs, in one run so that the figures are comparable. Prints seconds per run, seconds per
student, and the speed-up of each run over the first.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from autograder.course import Course, release
from autograder.examples import build_examples, write_examples
from autograder.grading import grade


def benchmark(*, students: int = 4, jobs: tuple[int, ...] = (1, 2), course: Course | None = None, workdir: Path | None = None) -> dict:
    course = course or Course()
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="autograder-benchmark-"))
    results = {"students": students, "runs": []}
    try:
        for n_jobs in jobs:
            root = workdir / f"jobs-{n_jobs}"
            shutil.copytree(course.source, root / course.source_directory)
            scratch = Course(root=root, limits=course.limits)
            release(course=scratch)
            reference = next(e for e in build_examples(scratch, mistakes=(), alternatives=()) if e.student == "reference")
            submissions = root / "submissions"
            for i in range(students):
                reference.student = f"student-{i + 1}"
                write_examples([reference], submissions)
            run = grade(submissions, course=scratch, jobs=n_jobs, progress=False)
            results["runs"].append(
                {
                    "jobs": n_jobs,
                    "seconds": round(run.seconds, 1),
                    "student_seconds": [round(r.seconds, 1) for r in run.students],
                    "points": [r.auto_total for r in run.students],
                }
            )
        first = results["runs"][0]["seconds"]
        for entry in results["runs"]:
            entry["speedup"] = round(first / entry["seconds"], 2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.benchmark",
        description="Time the grading of N complete reference submissions with each number of jobs, in one run.",
        epilog="example:\n  python -m autograder.benchmark --students 4 --jobs 1 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--students", type=int, default=4, help="complete submissions to grade (default: 4)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="numbers of jobs to compare (default: 1 2)")
    args = parser.parse_args(argv)
    print(json.dumps(benchmark(students=args.students, jobs=tuple(args.jobs)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
