"""What grading runs and how long it waits: `autograder.checker.notebook.run_and_check` on a tiny notebook.

- The course cells not run while grading are the ones the course's own notebook tags, found by cell
  id: a student who removes the tag cannot make such a cell run, one who adds it to their own cell
  cannot skip it. The skipped cell keeps the student's own outputs (inert ones only), marked so.
- A check's budget is CPU seconds of the runner: a looping function costs it once; a sleeping one is
  stopped by the wall-clock backstop; a check that comes after one that ran out of time is not run,
  and no later check calls a function that ran out of time again.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.checker.core import WALL_BACKSTOP
from autograder.checker.notebook import NOT_RUN_TAG, OWN_RUN_TEXT, not_run_cells, run_and_check
from tests.autograder_fixtures.budget_checks import BUDGET

MODULES = {"budgets": "tests.autograder_fixtures.budget_checks"}


def graded(grade_id):
    return new_code_cell(f"# {grade_id}", metadata={"nbgrader": {"grade": True, "grade_id": grade_id, "locked": True, "points": 1}})


def notebook(slow_body: str, *, train_tags=(NOT_RUN_TAG,), own_tags=()):
    train = new_code_cell("raise SystemExit('the course cell ran')", metadata={"tags": list(train_tags)})
    train.id = "train"
    own = new_code_cell("helper = 1", metadata={"tags": list(own_tags)})
    own.id = "student-own"
    solution = new_code_cell(
        f"def slow(x):\n    {slow_body}\n\ndef other(x):\n    return x * helper", metadata={"nbgrader": {"solution": True, "grade_id": "slow"}}
    )
    return new_notebook(
        cells=[
            new_code_cell("import time"),
            own,
            solution,
            graded("test_slow"),
            graded("test_after_slow"),
            graded("test_other"),
            graded("test_slow_again"),
            train,
        ]
    )


def grade(submission, course):
    from autograder.protocol.limits import Limits

    return run_and_check(
        submission, notebook="budgets", student="s", secret="s", limits=Limits(sandbox=False), check_modules=MODULES, not_run=not_run_cells(course)
    )


def test_the_course_notebook_decides_which_cells_do_not_run_and_the_students_outputs_stay_marked():
    course = notebook("return x * x")
    # The student removed the course's tag (and wrote an endless loop there), and tagged their own cell.
    submission = notebook("return x * x", train_tags=(), own_tags=(NOT_RUN_TAG,))
    train = submission.cells[-1]
    train.source = "while True:\n    pass"
    train.outputs = [
        new_output("stream", name="stdout", text="loss 0.01\n"),
        new_output("display_data", data={"text/html": "<script>alert(1)</script>", "text/plain": "<Figure>"}),
        new_output("error", ename="ValueError", evalue="from my run", traceback=[]),
    ]
    result = grade(submission, course)
    assert {grade_id: verdict.passed for grade_id, verdict in result.verdicts.items()} == {
        "test_slow": True,
        "test_after_slow": True,
        "test_other": True,
        "test_slow_again": True,
    }
    first, *kept = train.outputs
    assert "Not run while grading: this cell only teaches" in first.text and OWN_RUN_TEXT in first.text
    assert [output.get("text") or output.data for output in kept] == ["loss 0.01\n", {"text/plain": "<Figure>"}, "ValueError: from my run\n"]
    assert train.execution_count is None


@pytest.mark.parametrize("body, clock", [("while True:\n        pass", "CPU time"), ("time.sleep(10**6)", "wall time")])
def test_a_function_that_never_returns_costs_one_budget_and_the_checks_after_it_do_not_run(body, clock):
    course = notebook("return x * x")
    started = time.monotonic()
    result = grade(notebook(body), course)
    seconds = time.monotonic() - started
    slow, after, other, again = (result.verdicts[name] for name in ("test_slow", "test_after_slow", "test_other", "test_slow_again"))
    # (a loop on a machine so busy that it gets under a third of a core meets the wall clock first)
    assert not slow.passed and slow.timed_out and (f"s of {clock}" in slow.message or "s of wall time" in slow.message), slow.message
    assert not after.passed and "Not checked: it uses code whose own check ran out of time (test_slow)" in after.message
    assert other.passed
    # a function that never returned is not called again by a later check that does not come `after`
    assert not again.passed and "`slow` did not finish in an earlier check" in again.message and again.seconds < 1
    # one budget (at most its wall-clock backstop), and none for the checks that would call it again
    # (the whole grading's wall time also counts runner start-ups, which a busy machine stretches)
    assert slow.seconds < WALL_BACKSTOP * BUDGET + 2 and after.seconds == 0, (slow.seconds, after.seconds, seconds)


def test_the_budget_clock_is_the_cpu_time_of_the_runners_processes():
    from autograder.checker.core import Runner
    from autograder.protocol.limits import Limits

    with Runner(Limits(sandbox=False)) as runner:
        runner.run_cell("", timeout=120)
        before = runner.cpu_seconds()
        # a child process's work counts too, once it has ended
        runner.run_cell("import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import time\\nwhile time.process_time() < 1.0: pass'])", timeout=120)
        after_child = runner.cpu_seconds()
        runner.run_cell("import time\ntime.sleep(1.0)", timeout=120)
        after_sleep = runner.cpu_seconds()
    assert after_child - before >= 1.0 - 0.02, (before, after_child)  # /proc counts CPU time in 10 ms ticks
    assert after_sleep - after_child < 0.5, (after_child, after_sleep)


def test_the_return_checks_reference_episodes_are_computed_once_and_kept_by_their_data(tmp_path, monkeypatch):
    import torch

    from autograder.checker.checks import closing_the_loop as checks

    monkeypatch.setattr(checks, "CACHE_DIRECTORY", tmp_path)
    monkeypatch.setattr(checks, "_EPISODES", type(checks._EPISODES)())
    torch.set_num_threads(1)
    data = checks.visible_dataset()
    for key in data:  # a dataset the reference model can train on: a few dozen transitions
        data[key] = np.tile(data[key], (20, 1))
    started = time.process_time()
    first = checks.reference_episode(data, 0)
    computed = time.process_time() - started
    assert len(list(tmp_path.glob("loop-episode-*.npz"))) == 1
    checks._EPISODES.clear()  # another grading process: from the cache folder
    started = time.process_time()
    again = checks.reference_episode(data, 0)
    assert time.process_time() - started < computed / 5
    assert np.array_equal(again["states"], first["states"]) and again["episode_return"] == first["episode_return"]
    live = checks._real_episode(checks._train_reference(data, 0), 0)
    assert np.array_equal(live["states"], first["states"]) and live["terminated"] == first["terminated"]
    other = {**data, "actions": data["actions"] + 0.001}  # other data: another key
    assert checks.reference_key(other, 0) != checks.reference_key(data, 0) != checks.reference_key(data, 1)


def test_the_cells_not_run_while_grading_are_free_course_cells():
    # Free cells (no nbgrader metadata) define nothing the checks call (tests/test_visible_checks_agree.py
    # grades with all of them left out): so skipping the tagged ones changes no verdict.
    import nbformat

    from autograder.nbgrader_glue.course import Course

    course = Course()
    for assignment in course.assignments:
        for notebook in course.notebooks(assignment):
            nb = nbformat.read(str(course.source_notebook(assignment, notebook)), as_version=4)
            tagged = not_run_cells(nb)
            assert tagged, f"{notebook}: no cell is tagged {NOT_RUN_TAG}"
            for cell in nb.cells:
                if cell.get("id") in tagged:
                    assert cell.cell_type == "code" and "nbgrader" not in cell.metadata, (
                        f"{notebook}, cell {cell.id}: tagged {NOT_RUN_TAG} but not a free course cell"
                    )


def test_nbgraders_sanitize_step_keeps_only_the_outputs_of_the_cells_the_course_does_not_run(tmp_path):
    import nbformat

    from autograder.nbgrader_glue.autograde import ClearOutputExceptOwnRuns, course_not_run_cells

    course = notebook("return x * x")
    (tmp_path / "budgets").mkdir()
    nbformat.write(course, str(tmp_path / "budgets" / "budgets.ipynb"))
    resources = {"nbgrader": {"assignment": "budgets", "notebook": "budgets"}}
    assert course_not_run_cells(str(tmp_path), resources) == {"train": not_run_cells(course)["train"]}
    assert course_not_run_cells(str(tmp_path / "elsewhere"), resources) == {}  # no source notebook: every cell runs

    submission = notebook("return x * x", train_tags=(), own_tags=(NOT_RUN_TAG,))
    for cell in submission.cells:
        cell.outputs, cell.execution_count = [new_output("stream", name="stdout", text="printed\n")], 1
    cleaned, _ = ClearOutputExceptOwnRuns(source_directory=str(tmp_path)).preprocess(submission, resources)
    kept = {cell.id for cell in cleaned.cells if cell.outputs}
    assert kept == {"train"}  # the course's tag counts; the student's own tag does not
