"""Grade one notebook: its cells run in the student's runner, its test cells get the checker's verdicts.

    verdicts = run_and_check(nb, notebook="01_deterministic_cem", student="ada", secret=..., limits=...)

1. Every code cell that is not a graded test cell runs, in order, in the runner (in the sandbox),
   except course cells tagged `not-run-while-grading` (they need the student's other notebooks);
   its outputs (prints, plots, errors) become the cell's outputs, for the feedback. A cell that
   runs past its time or kills the runner gets an error output; the runner is started again with
   the earlier cells and the notebook goes on.
2. Every graded code cell (test cells, and any autograded answer cell) gets its outputs from the
   checker alone: its check's message when it passes, an error with the hint when it fails. What
   the student's code would have printed there is never looked at; nbgrader then scores the cell
   from these outputs (an error output scores zero).

The same function serves `nbgrader autograde` (through `autograder.preprocessors.CheckedExecute`)
and `python -m autograder check` (hidden=False: the visible parts of the checks only).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

from nbformat.notebooknode import NotebookNode, from_dict

from autograder.checker import Context, Runner, RunnerFailed, Verdict, machine_slowdown, run_check
from autograder.checks import registry
from autograder.sandbox import RunnerLimits

NO_CHECK = "This graded cell has no trusted check in the course's checker, so it cannot earn points; tell your instructor."
# A course cell with this tag needs what the grader does not give a notebook (another notebook of the
# student's, as notebook 4 loads notebook 3) and earns no points: it is not run, and says so.
NOT_RUN_TAG = "not-run-while-grading"
NOT_RUN_TEXT = "Not run while grading: this cell needs your other notebooks, which the grader does not load (each notebook is graded on its own). Your points come from the checks."


@dataclass
class NotebookGrading:
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    cell_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An error output as a kernel writes it: it zeroes a graded cell, and shows in the feedback."""
    return from_dict({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]})


def passed_output(message: str) -> NotebookNode:
    return from_dict({"output_type": "stream", "name": "stdout", "text": f"{message}\n"})


def is_graded_code(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade"))


def is_not_run_while_grading(cell) -> bool:
    """A course cell (not one the student fills in) tagged NOT_RUN_TAG."""
    meta = cell.get("metadata", {})
    return NOT_RUN_TAG in (meta.get("tags") or []) and not meta.get("nbgrader", {}).get("solution")


def run_and_check(
    nb: NotebookNode,
    *,
    notebook: str,
    student: str,
    secret: str,
    limits: RunnerLimits = RunnerLimits(),
    sandbox: bool = True,
    hidden: bool = True,
    cell_timeout: float = 300,
    notebook_timeout: float = 1200,
    max_restarts: int = 3,
    check_modules: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    log=None,
) -> NotebookGrading:
    """Run `nb`'s cells in a runner, then decide its graded cells; `nb`'s outputs are replaced."""
    import torch

    # The checker's own torch work (reference plans, expected values) on one thread: with several
    # gradings on a few cores, OpenMP threads spin against each other and run many times slower.
    torch.set_num_threads(1)
    started = time.monotonic()
    deadline = started + notebook_timeout
    result = NotebookGrading()
    checks = registry(notebook, check_modules)
    say = progress or (lambda text: None)
    restarts = 0
    with Runner(limits, sandbox=sandbox, log=log) as runner:
        execution_count = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            cell.execution_count = None
            if is_graded_code(cell) or not cell.source.strip():
                continue
            if is_not_run_while_grading(cell):
                cell.outputs = [passed_output(NOT_RUN_TEXT)]
                continue
            if time.monotonic() > deadline or restarts > max_restarts:
                why = f"the notebook used up its {notebook_timeout:.0f} s of grading time" if restarts <= max_restarts else f"the process running it failed {restarts} times"
                cell.outputs = [error_output("NotRun", f"Not run: {why}.")]
                continue
            say(f"cell {index + 1}/{len(nb.cells)}")
            execution_count += 1
            try:
                ran = runner.run_cell(cell.source, timeout=max(1.0, min(cell_timeout, deadline - time.monotonic())))
            except RunnerFailed as error:
                restarts += 1
                runner.restart()
                name = "CellTimeoutError" if "did not finish" in str(error) else "DeadKernelError"
                cell.outputs = [error_output(name, f"This cell could not finish: {error}. The grader started your code again from the top and went on after this cell.")]
                result.cell_failures.append(f"cell {index + 1}: {error}")
                continue
            cell.execution_count = execution_count
            cell.outputs = [from_dict(output) for output in ran.outputs]
        slowdown = machine_slowdown() if checks is not None else 1.0
        for cell in nb.cells:
            if not is_graded_code(cell):
                continue
            grade_id = cell.metadata["nbgrader"].get("grade_id", "")
            check = checks.checks.get(grade_id) if checks is not None else None
            if check is None:
                cell.outputs = [error_output("NotGraded", NO_CHECK)]
                result.verdicts[grade_id] = Verdict(grade_id, False, NO_CHECK)
                continue
            if time.monotonic() > deadline:
                verdict = Verdict(grade_id, False, f"Not checked: the notebook used up its {notebook_timeout:.0f} s of grading time.")
            else:
                say(f"check {grade_id}")
                context = Context(student=student, notebook=notebook, secret=secret, hidden=hidden)
                budget = min(check.budget * slowdown, max(1.0, deadline - time.monotonic()))
                verdict = run_check(replace(check, budget=budget), runner, context)
                failed_before = [earlier for earlier in check.after if earlier in result.verdicts and not result.verdicts[earlier].passed]
                if not verdict.passed and failed_before:
                    verdict.message = (
                        f"This check uses code whose own check failed earlier ({', '.join(failed_before)}): fix that first, "
                        f"this one may then pass too. What failed here: {verdict.message}"
                    )
            result.verdicts[grade_id] = verdict
            cell.outputs = [passed_output(verdict.message) if verdict.passed else error_output("CheckFailed", verdict.message)]
    result.seconds = time.monotonic() - started
    return result
