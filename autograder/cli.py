"""`python -m autograder`: release, bundle, check, grade, demo. Each subcommand parses its arguments and
calls one keyword-only function, which owns the defaults."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = {
    "release": "python -m autograder release\n  python -m autograder release --assignment 01_deterministic_cem",
    "bundle": "python -m autograder bundle\n  python -m autograder bundle --assignment 01_deterministic_cem --output build/week1.zip",
    "check": "python -m autograder check notebooks/01_deterministic_cem/01_deterministic_cem.ipynb",
    "grade": (
        "python -m autograder grade ~/Downloads/submissions --jobs 2\n  python -m autograder grade grading/submitted --csv grades.csv\n"
        "  python -m autograder grade ~/Downloads/submissions --scheduler tcp://head:8786 --db-url postgresql://grader@dbhost/course"
    ),
    "demo": "python -m autograder demo\n  python -m autograder demo --jobs 2 --workdir /tmp/mbrl-demo",
    "feedback": "python -m autograder feedback\n  python -m autograder feedback --student ada --student grace",
    "export": "python -m autograder export\n  python -m autograder export --roster roster.csv",
}


def _example(name: str) -> str:
    return "example:\n  " + EXAMPLES[name]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="The course's autograder, on top of nbgrader: release the notebooks, check a notebook, grade submissions.",
        epilog="example:\n  python -m autograder demo\n\nRun `python -m autograder COMMAND --help` for each command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description, epilog=_example(name), formatter_class=argparse.RawDescriptionHelpFormatter)
        return sub

    release = command(
        "release",
        "regenerate notebooks/ from solutions/",
        "Regenerate the student notebooks (notebooks/) from the source notebooks (solutions/) with nbgrader generate_assignment, and record the assignments in the gradebook.",
    )
    release.add_argument("--assignment", action="append", metavar="NAME", help="only this assignment (repeatable; default: all)")
    _course_dir(release)
    _gradebook(release)

    bundle = command(
        "bundle",
        "the student bundle: release notebooks, mbrl_helpers, data, requirements; no answers",
        (
            "Write the zip file (or folder) that students get: the release notebooks (notebooks/), the mbrl_helpers "
            "package, the data files (data/), requirements.txt and a pyproject, so that `pip install -r "
            "requirements.txt` inside it makes `import mbrl_helpers` work. Never solutions/, mbrl_reference/, "
            "autograder/ or grading/; refused when a bundled file holds a line of a graded solution."
        ),
    )
    bundle.add_argument(
        "--output", "-o", type=Path, default=None, metavar="PATH", help="a .zip file, or else a folder (default: build/mbrl-course-student.zip)"
    )
    bundle.add_argument("--assignment", action="append", metavar="NAME", help="only this released assignment (repeatable; default: every one in notebooks/)")
    bundle.add_argument(
        "--skip-leak-check", action="store_true", help="write the bundle even when a bundled file holds a line of a graded solution (listed as a warning)"
    )
    _course_dir(bundle)

    check = command(
        "check",
        "run a notebook's visible tests: pass/fail, points, hints",
        "Run your notebook from top to bottom, as the grader will, and print each graded cell's result, points and hint. Only the visible tests run here; the hidden ones run when your notebook is graded.",
    )
    check.add_argument("notebook", type=Path, metavar="NOTEBOOK", help="the .ipynb file to check")
    _course_dir(check)
    _limits(check)

    grade = command(
        "grade",
        "autograde a folder of submissions: feedback, gradebook, grades.csv",
        (
            "Autograde every student in SUBMISSIONS_DIR with nbgrader: one sub-folder per student, nbgrader's own "
            "submitted/ layout, one zip file per student as an LMS exports them, or loose <student>_*.ipynb files. "
            "Writes grading/autograded/, HTML feedback in grading/feedback/<student>/, the gradebook "
            "(grading/gradebook.db) and grades.csv."
        ),
    )
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR", help="folder of submissions")
    grade.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="students graded at once on this machine, each in its own process (default: 1)")
    grade.add_argument("--csv", type=Path, default=None, metavar="PATH", help="where to write the grades (default: grading/grades.csv)")
    grade.add_argument(
        "--student-pattern",
        default=None,
        metavar="REGEX",
        help="regular expression with a (?P<student>...) group that finds the student id in folder, zip or file names",
    )
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    _course_dir(grade)
    _limits(grade)
    _sandbox(grade)
    _gradebook(grade)
    _cluster(grade)
    grade.add_argument(
        "--check-module",
        action="append",
        default=[],
        metavar="NOTEBOOK=MODULE",
        help="the checks of a notebook beyond the course's own (repeatable), e.g. 05_extra=mycourse.checks.extra",
    )

    feedback = command(
        "feedback",
        "after grading by hand: write the feedback again, with the manual scores and comments",
        (
            "Write again, with nbgrader generate_feedback --force, the HTML feedback of every student who has a score or "
            "comment given by hand (in formgrader or the gradebook), so that their pages show it. Run it after hand-grading."
        ),
    )
    feedback.add_argument("--student", action="append", metavar="ID", help="only this student, graded by hand or not (repeatable)")
    feedback.add_argument("--all", action="store_true", help="every student with an autograded notebook")
    _course_dir(feedback)
    _gradebook(feedback)

    export = command(
        "export",
        "grading/grades.csv from the gradebook, and with a roster the Canvas and Moodle import files",
        (
            "Write grading/grades.csv from the gradebook: one row per student, a column of points per assignment "
            "(manual scores included), total, max_total, hand_grading (pending or done) and status. With --roster, also "
            "grading/canvas-grades.csv and grading/moodle-grades.csv, for the gradebook import of Canvas and of Moodle."
        ),
    )
    export.add_argument(
        "--roster",
        type=Path,
        default=None,
        metavar="ROSTER.csv",
        help="CSV with the columns student_id,name,email,lms_id (student_id: the name submissions are filed under; lms_id: Canvas's user ID or Moodle's ID number)",
    )
    _course_dir(export)
    _gradebook(export)

    demo = command(
        "demo",
        "release, grade the example submissions, print the grade table",
        (
            "Build the release in a scratch course directory, autograde the bundled example submissions (the reference "
            "solution, the blank release, a catalogue of wrong submissions with one mistake each, and correct ones written "
            "differently) and print the grade table with the points each was expected to get."
        ),
    )
    demo.add_argument("--jobs", "-j", type=int, default=2, metavar="N", help="students graded at once (default: 2)")
    demo.add_argument("--workdir", type=Path, default=None, metavar="DIR", help="scratch course directory (default: grading/demo, replaced)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    _course_dir(demo)
    _limits(demo)
    _sandbox(demo)
    _gradebook(demo)
    _cluster(demo)
    return parser


def _course_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--course-dir", type=Path, default=None, metavar="DIR", help="the course's root folder (default: this repository)")


def _gradebook(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db-url",
        default=None,
        metavar="URL",
        help="the gradebook, as nbgrader's CourseDirectory.db_url (default: sqlite:///grading/gradebook.db), e.g. postgresql://grader:PASSWORD@dbhost/course",
    )


def _cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="grade on this Dask cluster: its scheduler's address (tcp://host:8786) or scheduler file (default: a local cluster of --jobs workers)",
    )


def _sandbox(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code without the bubblewrap sandbox (where it cannot start: no user namespaces, not Linux); every report then says so",
    )


def _limits(parser: argparse.ArgumentParser) -> None:
    """One flag per limit of `Limits` (its name with dashes), its default and help from there."""
    from dataclasses import fields

    from autograder.protocol.limits import Limits

    for limit in fields(Limits):
        if limit.type == "bool":
            continue  # --no-sandbox, see _sandbox
        default = getattr(Limits(), limit.name)
        metavar = "S" if limit.name.endswith("timeout") else "MB" if limit.name.endswith("_mb") else "N"
        parser.add_argument(
            "--" + limit.name.replace("_", "-"),
            type={"int": int, "float": float}[limit.type],
            default=default,
            metavar=metavar,
            help=f"{Limits.describe(limit.name).split(';')[0].split(':')[0]} (default: {default})",
        )


def course_from(args: argparse.Namespace):
    from dataclasses import fields

    from autograder.nbgrader_glue.course import ROOT, Course
    from autograder.protocol.limits import Limits

    given = {limit.name: getattr(args, limit.name) for limit in fields(Limits) if hasattr(args, limit.name)}
    limits = Limits(**given, sandbox=not getattr(args, "no_sandbox", False))
    check_modules = []
    for pair in getattr(args, "check_module", []):
        notebook, sep, module = pair.partition("=")
        if not sep or not notebook or not module:
            raise SystemExit(f"--check-module wants NOTEBOOK=MODULE, e.g. 05_extra=mycourse.checks.extra; got {pair!r}")
        check_modules.append((notebook, module))
    return Course(root=args.course_dir or ROOT, limits=limits, gradebook_url=getattr(args, "db_url", None), check_modules=tuple(check_modules))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    course = course_from(args)
    if args.command == "release":
        from autograder.nbgrader_glue.course import release

        which = ", ".join(args.assignment or course.assignments)
        print(f"releasing {which} with nbgrader generate_assignment (about 10 s each)...", flush=True)
        for path in release(course=course, assignments=args.assignment):
            print(f"released {path.relative_to(course.root)}")
        return 0
    if args.command == "bundle":
        return bundle_command(args, course)
    if args.command == "check":
        from autograder.term.check import check

        print(f"checking {args.notebook}: its cells run in the sandbox, then the visible checks (a minute or so)...", flush=True)
        return check(args.notebook, course=course).exit_code
    if args.command == "grade":
        from autograder.nbgrader_glue.autograde import SandboxError
        from autograder.term.grading import format_table, grade

        try:
            run = grade(
                args.submissions,
                course=course,
                jobs=args.jobs,
                csv_path=args.csv,
                student_pattern=args.student_pattern,
                progress=not args.no_progress,
                scheduler=args.scheduler,
            )
        except SandboxError as error:
            print(error, file=sys.stderr)
            return 2
        print(format_table(run))
        where = f"on the Dask cluster at {args.scheduler}" if args.scheduler else f"with {args.jobs} job(s)"
        print(f"\n{len(run.students)} students graded in {run.seconds:.0f} s {where}; grades: {run.csv_path}; feedback: {course.feedback}")
        return 0
    if args.command == "feedback":
        from autograder.term.feedback import feedback

        pages = feedback(course=course, students=args.student, everyone=args.all)
        for page in pages:
            print(f"{page.student} {page.assignment}: " + ("written" if page.written else f"FAILED: {page.error}"))
        written = sum(p.written for p in pages)
        print(
            f"{written} feedback page{'s' * (written != 1)} written in {course.feedback}"
            if pages
            else "No feedback to write: nobody has been graded by hand yet."
        )
        return 0 if all(p.written for p in pages) else 1
    if args.command == "export":
        from autograder.term.export import ExportError, export

        try:
            written = export(course=course, roster=args.roster)
        except ExportError as error:
            print(error, file=sys.stderr)
            return 2
        for path in written.files:
            print(f"wrote {path}")
        for note in written.notes:
            print(f"\n{note}")
        return 0
    if args.command == "demo":
        from autograder.term.demo import demo

        _, mismatches = demo(course=course, workdir=args.workdir, jobs=args.jobs, progress=not args.no_progress, scheduler=args.scheduler)
        return 1 if mismatches else 0
    return 2  # unreachable: argparse requires a command


def bundle_command(args: argparse.Namespace, course) -> int:
    from autograder.term.bundle import BundleError, build_bundle, format_leaks

    try:
        bundle = build_bundle(course=course, output=args.output, assignments=args.assignment, check_leaks=not args.skip_leak_check)
    except BundleError as error:
        print(error, file=sys.stderr)
        return 2
    if bundle.leaks:  # only with --skip-leak-check: said even so, the instructor chose to ship them
        print("warning: the bundle holds lines of graded solutions:\n" + format_leaks(list(bundle.leaks)), file=sys.stderr)
    print(f"wrote {bundle.path} ({bundle.size_bytes / 1e6:.1f} MB, {len(bundle.files)} files): assignments {', '.join(bundle.assignments)}")
    for name in bundle.files:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
