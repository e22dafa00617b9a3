"""Grading survives what students hand in: endless loops, memory hogs, runners that crash or kill
themselves, deleted or edited test cells, tampered metadata, files that are not notebooks.

A small real nbgrader course (tests/autograder_fixtures/toy_course.py, checked by
tests/autograder_fixtures/toy_checks.py) is released with nbgrader, then graded twice through the
command line, `python -m autograder grade`, with two jobs: first two students without the sandbox
(--no-sandbox), one of whom then gets a manual score; then, in the sandbox, one student per
scenario, in every layout the grader accepts, together with a re-submission of the first. The assertions read the SQLite gradebook, grades.csv and the
HTML feedback. Student code runs in the sandboxed runner; the test cells are never run: each
one's points are the checker's verdict.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import html
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from autograder_fixtures import toy_checks
from autograder_fixtures.toy_course import ASSIGNMENT, AUTO_MAX, CHECK_MODULES, EXPECTED, WRITTEN_POINTS, make_course, scenarios, toy_course
from nbgrader.api import Gradebook

from autograder import cli
from autograder.nbgrader_glue.config import COURSE_ID
from autograder.nbgrader_glue.course import with_package_on_path
from autograder.sandbox.bubblewrap import sandbox_status

CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 3, 60
LIMITS = ["--cell-timeout", str(CELL_TIMEOUT), "--notebook-timeout", str(NOTEBOOK_TIMEOUT)]

pytestmark = pytest.mark.skipif(not sandbox_status()[0], reason=f"no sandbox here: {sandbox_status()[1]}")


def main(argv: list[str]) -> int:
    """`python -m autograder ARGV`, in this process, on a course that has the toy's checks: the
    command line itself only knows the course's three notebooks."""
    course_from = cli.course_from
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "course_from", lambda args: dataclasses.replace(course_from(args), check_modules=CHECK_MODULES))
        return cli.main(argv)


def grade_cli(course_root: Path, submissions: Path, *options: str) -> None:
    assert main(["grade", str(submissions), "--course-dir", str(course_root), "--jobs", "2", "--no-progress", *LIMITS, *options]) == 0


def auto_scores(db_url: str, student: str) -> dict[str, float]:
    with Gradebook(db_url, COURSE_ID) as gb:
        notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        return {grade.name: grade.auto_score for grade in notebook.grades if grade.cell.cell_type == "code"}


def gradebook_rows(db_url: str, student: str) -> dict:
    with Gradebook(db_url, COURSE_ID) as gb:
        notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        grades = {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in notebook.grades}
        comments = {c.name: (c.auto_comment, c.manual_comment) for c in notebook.comments}
        return {"grades": grades, "comments": comments, "timestamp": notebook.assignment.timestamp}


def page_text(path: Path) -> str:
    page = Path(path).read_text()
    body = page[page.find("<body") :]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def feedback_text(course, student: str) -> str:
    return page_text(course.feedback / student / ASSIGNMENT / f"{ASSIGNMENT}.html")


def read_csv(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy-course")
    course = make_course(root, cell_timeout=CELL_TIMEOUT, notebook_timeout=NOTEBOOK_TIMEOUT)
    texts = scenarios(course)

    # First batch: two students, graded without the sandbox (--no-sandbox); a grader then scores
    # one's written answer by hand.
    first = tmp_path_factory.mktemp("first-batch")
    for student in ("earlier", "kept", "rewritten"):
        (first / student).mkdir()
        (first / student / f"{ASSIGNMENT}.ipynb").write_text(texts["reference"])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        grade_cli(root, first, "--no-sandbox")
    first_rows = read_csv(course.grading / "grades.csv")
    with Gradebook(course.db_url, COURSE_ID) as gb:
        for student, score in (("earlier", 1.0), ("kept", 0.5), ("rewritten", 1.0)):
            written = gb.find_grade("explain", ASSIGNMENT, ASSIGNMENT, student)
            written.manual_score, written.needs_manual_grade = score, False  # as formgrader records a score
            gb.find_comment("explain", ASSIGNMENT, ASSIGNMENT, student).manual_comment = f"graded by hand for {student}"
        gb.db.commit()
    before = {student: gradebook_rows(course.db_url, student) for student in ("earlier", "kept", "rewritten")}

    # Second batch, in the sandbox: one student per scenario, in every layout, and "earlier" again.
    second = tmp_path_factory.mktemp("second-batch")
    layouts = {}
    for name, text in texts.items():
        if name == "reference":  # an LMS zip: a sub-folder, and macOS junk beside the notebook
            with zipfile.ZipFile(second / "reference.zip", "w") as zf:
                zf.writestr("submission/toy.ipynb", text)
                zf.writestr("__MACOSX/submission/._toy.ipynb", "junk")
            layouts[name] = "zip"
        elif name == "blank":  # a loose file named <student>_<anything>.ipynb
            (second / "blank_toy.ipynb").write_text(text)
            layouts[name] = "loose file"
        elif name == "deleted-test-cell":  # nbgrader's submitted/<student>/<assignment>/ with a timestamp
            (second / name / ASSIGNMENT).mkdir(parents=True)
            (second / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(text)
            (second / name / ASSIGNMENT / "timestamp.txt").write_text("2030-01-01 12:00:00.000000 UTC")
            layouts[name] = "nbgrader"
        elif name == "edited-test-cell":  # renamed by a download: recognised by its graded cells
            (second / name).mkdir()
            (second / name / "My notebook (1).ipynb").write_text(text)
            layouts[name] = "renamed"
        else:
            (second / name).mkdir()
            (second / name / f"{ASSIGNMENT}.ipynb").write_text(text)
            layouts[name] = "folder"
    (second / "earlier").mkdir()
    (second / "earlier" / f"{ASSIGNMENT}.ipynb").write_text(texts["reference"])
    # handed in again with another written answer than the one graded by hand
    rewritten = nbformat.reads(texts["reference"], as_version=4)
    next(cell for cell in rewritten.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "explain").source += "\nOn second thought, more."
    (second / "rewritten").mkdir()
    (second / "rewritten" / f"{ASSIGNMENT}.ipynb").write_text(nbformat.writes(rewritten))
    grade_cli(root, second)
    rows = read_csv(course.grading / "grades.csv")
    return SimpleNamespace(course=course, before=before, first_table=printed.getvalue(), first_rows=first_rows, rows=rows, layouts=layouts, texts=texts)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_each_scenario_loses_points_only_on_the_cells_it_breaks(toy, scenario):
    expected, _ = EXPECTED[scenario]
    assert auto_scores(toy.course.db_url, scenario) == pytest.approx(expected), f"{scenario} ({toy.layouts[scenario]})"


@pytest.mark.parametrize("scenario", sorted(s for s in EXPECTED if EXPECTED[s][1]))
def test_feedback_says_what_happened(toy, scenario):
    _, message = EXPECTED[scenario]
    assert message in feedback_text(toy.course, scenario)


def test_each_test_cell_shows_the_checkers_verdict_under_its_visible_test(toy):
    text = feedback_text(toy.course, "reference")
    assert "assert square(3) == 9, 'square(3) should be 9: multiply x by itself'" in text  # the test cell, as released
    assert "square: OK" in text and "cube: OK" in text and "square and cube: OK" in text  # the checks' messages
    text = feedback_text(toy.course, "edited-test-cell")
    assert "assert cube(2) == 8, 'cube(2) should be 8'" in text  # the visible test, restored
    assert f"CheckFailed: {toy_checks.CUBE_HINT}" in text  # the failing check's message: the hint


def test_the_hidden_part_of_a_check_decides_points_and_shows_only_its_hint(toy):
    """Hidden tests are no longer in the notebooks at all: neither in the release nor the feedback."""
    text = feedback_text(toy.course, "hidden-check-fails")
    assert f"CheckFailed: {toy_checks.CUBE_HIDDEN_HINT}" in text and f"CheckFailed: {toy_checks.CUBE_HINT}" not in text
    for student in {row["student"] for row in toy.rows} - {"invalid-json"}:
        assert "hidden test" not in feedback_text(toy.course, student).lower(), student
    assert "HIDDEN TESTS" not in (toy.course.release / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()


def test_a_check_that_calls_unfinished_code_says_so(toy):
    text = feedback_text(toy.course, "blank")
    assert "Not implemented yet" in text and "NotImplementedError" in text


def test_a_cell_that_fails_is_said_and_the_next_cells_run_in_a_fresh_runner(toy):
    text = feedback_text(toy.course, "kernel-killed")
    assert "The grader started your code again from the top and went on after this cell" in text
    assert "`cube` is not defined" in text  # the check of the cell that never finished


def test_the_grade_table_has_every_student_and_the_right_totals(toy):
    by_student = {row["student"]: row for row in toy.rows}
    assert len(toy.rows) == len(by_student) == len(EXPECTED) + 3  # one row per student
    assert set(by_student) == set(EXPECTED) | {"earlier", "kept", "rewritten"}
    assert all(list(row) == ["student", ASSIGNMENT, "total", "max_total", "hand_grading", "status"] for row in toy.rows)
    assert all(float(row["max_total"]) == AUTO_MAX + WRITTEN_POINTS for row in toy.rows)
    for scenario, (expected, _) in EXPECTED.items():
        assert float(by_student[scenario][ASSIGNMENT]) == sum(expected.values()), scenario
        assert float(by_student[scenario]["total"]) == sum(expected.values()), scenario
    assert float(by_student["earlier"][ASSIGNMENT]) == AUTO_MAX + 1.0  # manual score kept after re-grading
    assert float(by_student["kept"][ASSIGNMENT]) == AUTO_MAX + 0.5
    assert by_student["invalid-json"]["status"] == f"{ASSIGNMENT}: unreadable: not a notebook, scored 0"
    assert {by_student[scenario]["status"] for scenario in EXPECTED if scenario != "invalid-json"} == {"graded"}
    # the written answer: graded by hand (and handed in again unchanged), or awaiting a grader
    assert [by_student[student]["hand_grading"] for student in ("earlier", "kept", "rewritten", "reference")] == ["done", "done", "pending", "pending"]


def test_nothing_already_in_the_gradebook_is_lost(toy):
    assert gradebook_rows(toy.course.db_url, "kept") == toy.before["kept"]
    earlier = gradebook_rows(toy.course.db_url, "earlier")
    # the same written answer as the one graded by hand: its score stands, nothing to review
    assert earlier["grades"]["explain"][1:] == (1.0, False)
    assert earlier["comments"]["explain"][1] == "graded by hand for earlier"
    # another written answer: the hand-given score is kept, and the answer is flagged for review
    assert gradebook_rows(toy.course.db_url, "rewritten")["grades"]["explain"][1:] == (1.0, True)


def test_a_regrade_keeps_the_hand_given_score_and_comment_on_the_feedback_page(toy):
    # "earlier" was graded, then hand-graded (1 point and a comment), then graded again
    text = feedback_text(toy.course, "earlier")
    assert "graded by hand for earlier" in text
    assert f"Score: {AUTO_MAX + WRITTEN_POINTS:.1f} / {AUTO_MAX + WRITTEN_POINTS:.1f}" in text, text[:500]


def test_after_grading_by_hand_one_command_brings_the_feedback_up_to_date(toy, capsys):
    # "kept" was hand-graded after its only grading: its page does not show it yet
    page = toy.course.feedback / "kept" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert "graded by hand for kept" not in feedback_text(toy.course, "kept")
    untouched = toy.course.feedback / "blank" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    blank_page = untouched.read_text()
    assert main(["feedback", "--course-dir", str(toy.course.root)]) == 0
    out = capsys.readouterr().out
    assert "kept toy: written" in out and "blank" not in out  # only the students graded by hand
    text = feedback_text(toy.course, "kept")
    assert "graded by hand for kept" in text and f"Score: {AUTO_MAX + 0.5:.1f} / {AUTO_MAX + WRITTEN_POINTS:.1f}" in text
    assert page.is_file() and untouched.read_text() == blank_page
    assert main(["feedback", "--course-dir", str(toy.course.root), "--student", "blank"]) == 0
    assert "blank toy: written" in capsys.readouterr().out


def test_grading_the_same_submission_twice_gives_identical_scores_with_or_without_the_sandbox(toy):
    before = {cell: scores[0] for cell, scores in toy.before["earlier"]["grades"].items()}
    after = {cell: scores[0] for cell, scores in gradebook_rows(toy.course.db_url, "earlier")["grades"].items()}
    assert before == after


def test_an_untouched_submissions_log_has_no_warning(toy):
    """A log line means something an instructor should know: the reference answer's log has none."""
    log = (toy.course.grading / "logs" / "reference.log").read_text()
    assert "[INFO]" in log and "[WARNING]" not in log and "[ERROR]" not in log, log


def test_an_unreadable_notebook_gets_a_page_that_says_why(toy):
    text = feedback_text(toy.course, "invalid-json")
    assert "Score: 0" in text and "not valid JSON" in text and "line" in text


def test_every_layout_was_recognised(toy):
    assert {"zip", "loose file", "nbgrader", "renamed", "folder"} <= set(toy.layouts.values())
    for student in toy.layouts:
        assert (toy.course.submitted / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file(), student
    assert (toy.course.submitted / "deleted-test-cell" / ASSIGNMENT / "timestamp.txt").is_file()


def test_plain_nbgrader_commands_work_on_the_same_course(toy, tmp_path):
    """The course directory stays nbgrader's: its own commands read the same configuration."""
    root = toy.course.root
    (root / "nbgrader_config.py").write_text(
        "from autograder.nbgrader_glue.config import course_config\n"
        "from autograder.protocol.limits import Limits\n"
        f"get_config().merge(course_config({str(root)!r}, limits=Limits(cell_timeout={CELL_TIMEOUT}, notebook_timeout={NOTEBOOK_TIMEOUT}), "
        f"check_modules={dict(CHECK_MODULES)!r}))\n"
    )
    bin_dir = Path(sys.executable).parent
    env = with_package_on_path(dict(os.environ))
    export = tmp_path / "export.csv"
    subprocess.run([str(bin_dir / "nbgrader"), "export", "--to", str(export)], cwd=root, check=True, capture_output=True, env=env)
    with open(export) as handle:
        exported = {row["student"]: float(row["total"]) for row in csv.DictReader(handle)}
    assert exported["reference"] == AUTO_MAX and exported["kept"] == AUTO_MAX + 0.5
    assert export.read_bytes() == (root / "grading" / "grades.csv").read_bytes()  # the course's grades.csv, where --to says
    # autograde with nbgrader itself: test cells restored, the checker decides them, the runner is sandboxed
    shutil.rmtree(root / "grading" / "autograded" / "edited-test-cell")
    subprocess.run(
        [str(bin_dir / "nbgrader"), "autograde", ASSIGNMENT, "--student", "edited-test-cell", "--force"], cwd=root, check=True, capture_output=True, env=env
    )
    assert auto_scores(toy.course.db_url, "edited-test-cell") == EXPECTED["edited-test-cell"][0]
    subprocess.run(
        [str(bin_dir / "nbgrader"), "generate_feedback", ASSIGNMENT, "--student", "edited-test-cell", "--force"],
        cwd=root,
        check=True,
        capture_output=True,
        env=env,
    )
    text = feedback_text(toy.course, "edited-test-cell")
    assert "had been edited" in text and f"CheckFailed: {toy_checks.CUBE_HINT}" in text and "without the sandbox" not in text


def test_a_grading_process_that_dies_leaves_the_gradebook_as_it_was(toy, tmp_path, monkeypatch):
    import autograder.term.engine as engine
    import autograder.term.grading as grading

    # as if the grading process had been killed (the local engine's workers are threads of this process)
    monkeypatch.setattr(engine.Worker, "grade", lambda self, *args, **kwargs: (-9, "killed"))
    (tmp_path / "subs" / "unlucky").mkdir(parents=True)
    (tmp_path / "subs" / "unlucky" / f"{ASSIGNMENT}.ipynb").write_text(toy.texts["reference"])
    (tmp_path / "subs" / "kept").mkdir()
    (tmp_path / "subs" / "kept" / f"{ASSIGNMENT}.ipynb").write_text(toy.texts["blank"])
    run = grading.grade(tmp_path / "subs", course=toy.course, csv_path=tmp_path / "grades.csv", progress=False)
    unlucky, kept = run.student("unlucky"), run.student("kept")
    assert unlucky.statuses == {ASSIGNMENT: "failed"} and "exit code -9" in unlucky.problems[0]
    assert [(s.status, s.points) for s in unlucky.scores] == [("failed", 0.0)]
    assert gradebook_rows(toy.course.db_url, "kept") == toy.before["kept"]  # a failed re-grade changes nothing
    assert kept.score(ASSIGNMENT).status == "failed"
    rows = {row["student"]: row for row in read_csv(tmp_path / "grades.csv")}
    assert rows["unlucky"]["status"] == rows["kept"]["status"] == f"{ASSIGNMENT}: failed: could not be graded, not a zero (see grading/logs/)"
    assert rows["unlucky"][ASSIGNMENT] == rows["kept"][ASSIGNMENT] == ""  # no points, not a zero


def test_grading_without_the_sandbox_says_so_in_the_csv_the_table_and_the_feedback(toy):
    assert re.search(r"earlier +6/6", toy.first_table) and "NOT SANDBOXED" in toy.first_table, toy.first_table
    assert {row["student"]: row["status"] for row in toy.first_rows} == {
        "earlier": "graded without sandbox",
        "kept": "graded without sandbox",
        "rewritten": "graded without sandbox",
    }
    assert "graded without the sandbox" in feedback_text(toy.course, "kept")
    # "earlier" was graded again, in the sandbox
    assert "graded without the sandbox" not in feedback_text(toy.course, "earlier")
    assert {row["student"]: row["status"] for row in toy.rows}["earlier"] == "graded"


# -- the student's local check, on the same toy course ------------------------------------------------
def test_check_runs_the_visible_tests_only_and_prints_points_and_hints(toy, tmp_path, capsys):
    # cube(x) = |x|**3 passes the visible check (cube(2) == 8) and fails the hidden one (a negative x)
    notebook = tmp_path / "mine.ipynb"
    notebook.write_text(toy.texts["hidden-check-fails"])
    assert main(["check", str(notebook), "--course-dir", str(toy.course.root), *LIMITS]) == 0
    out = capsys.readouterr().out
    assert re.search(r"PASS +3/3 +test_cube +cube\(\) raises a number to the third power", out), out
    assert re.search(r"PASS +1/1 +test_quiet", out) and "manual" in out and "Visible tests: 6/6 points" in out


def test_check_restores_edited_visible_tests_and_shows_the_hint(toy, tmp_path, capsys):
    notebook = tmp_path / "edited.ipynb"
    notebook.write_text(toy.texts["edited-test-cell"])
    assert main(["check", str(notebook), "--course-dir", str(toy.course.root), *LIMITS]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL +0/3 +test_cube", out) and f"hint: {toy_checks.CUBE_HINT}" in out, out
    assert "Visible tests: 3/6 points" in out


def test_check_says_why_it_cannot_check(toy, tmp_path, capsys):
    broken = tmp_path / "toy.ipynb"
    broken.write_text(toy.texts["invalid-json"])
    assert main(["check", str(broken), "--course-dir", str(toy.course.root)]) == 2
    assert "not valid JSON" in capsys.readouterr().out


def test_release_regenerates_the_same_student_notebooks(toy, capsys):
    before = (toy.course.release / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert main(["release", "--course-dir", str(toy.course.root)]) == 0
    assert f"notebooks/{ASSIGNMENT}/{ASSIGNMENT}.ipynb" in capsys.readouterr().out
    assert (toy.course.release / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text() == before


# -- one student graded in this process (autograder.term.worker.run_job), with a changed grader -------------
def workspace_job(toy, tmp_path: Path, student: str, text: str, **limits) -> dict:
    """A worker's job for one student, as `grade` writes it, in a private workspace."""
    from autograder.term.grading import template_gradebook

    workspace = tmp_path / "workspace"
    (workspace / "grading" / "submitted" / student / ASSIGNMENT).mkdir(parents=True)
    (workspace / "source").symlink_to(toy.course.source, target_is_directory=True)
    (workspace / "gradebook.db").write_bytes(template_gradebook(toy.course))
    (workspace / "grading" / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(text)
    return {
        "workspace": str(workspace),
        "student": student,
        "autograde": [ASSIGNMENT],
        "unreadable": [],
        "limits": {"cell_timeout": CELL_TIMEOUT, "notebook_timeout": NOTEBOOK_TIMEOUT, **limits},
        "secret_file": str(toy.course.secret_path),
        "check_modules": [list(pair) for pair in CHECK_MODULES],
    }


def test_a_notebook_that_uses_up_its_time_budget_gets_zero_for_the_checks_it_could_not_run(toy, tmp_path, monkeypatch):
    import importlib

    from autograder.nbgrader_glue.config import quiet_gradebook_warnings
    from autograder.term.worker import run_job

    # The grader's own copy of the toy checks (this process grades): test_cube may take as long as
    # the notebook has left, so that the slow cube uses the notebook's time up.
    checks = importlib.import_module(CHECK_MODULES[0][1]).checks
    monkeypatch.setattr(checks.checks["test_cube"], "budget", 600.0)
    slow = toy.texts["reference"].replace("return x * x * x", "time.sleep(600)\\n    return x * x * x")
    job = workspace_job(toy, tmp_path, "slowpoke", slow, cell_timeout=30, notebook_timeout=10)
    quiet_gradebook_warnings()
    assert run_job(job)[ASSIGNMENT]["status"] == "graded"
    workspace = toy_course(job["workspace"])
    scores = auto_scores("sqlite:///" + str(workspace.root / "gradebook.db"), "slowpoke")
    assert scores == {"test_square": 2, "test_cube": 0, "test_quiet": 0}
    text = page_text(workspace.root / "grading" / "feedback" / "slowpoke" / ASSIGNMENT / f"{ASSIGNMENT}.html")
    assert "This check could not finish: it did not finish within" in text  # test_cube, stopped when the time was up
    assert "Not checked: the notebook used up its 10 s of grading time" in text  # test_quiet


def test_a_notebook_nbgrader_gives_up_on_once_is_graded_on_a_second_try(toy, tmp_path, monkeypatch):
    """E.g. a notebook nbgrader could not convert on a busy machine: the worker tries once more."""
    import autograder.term.worker as worker
    from autograder.nbgrader_glue import config
    from autograder.nbgrader_glue.course import Course

    real_api, failures = Course.api, []

    def api_that_fails_once(self, *args, **kwargs):
        api = real_api(self, *args, **kwargs)
        real_autograde = api.autograde

        def autograde(*a, **kw):
            if not failures:
                failures.append(1)
                return {"success": False, "log": "", "error": "RuntimeError: Kernel didn't respond in 300 seconds"}
            return real_autograde(*a, **kw)

        api.autograde = autograde
        return api

    monkeypatch.setattr(Course, "api", api_that_fails_once)
    config.quiet_gradebook_warnings()
    job = workspace_job(toy, tmp_path, "flaky", toy.texts["reference"])
    results = worker.run_job(job)
    assert failures == [1]
    assert results[ASSIGNMENT]["status"] == "graded" and "second try" in results[ASSIGNMENT]["log"]
    assert auto_scores("sqlite:///" + str(Path(job["workspace"]) / "gradebook.db"), "flaky") == EXPECTED["reference"][0]
