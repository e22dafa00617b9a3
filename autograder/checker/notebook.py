"""Grade one notebook: its cells run in the student's runner, its test cells get the checker's verdicts.

    verdicts = run_and_check(nb, notebook="01_deterministic_cem", student="ada", secret=..., limits=...)

1. Every code cell that is not a graded test cell runs, in order, in the runner (in the sandbox),
   except the course cells that only teach (training, demo episodes, plots) or need the student's
   other notebooks: the cells tagged `not-run-while-grading` in the course's *source* notebook
   (`not_run_cells`), found in the submission by cell id. A tag in the submission counts for
   nothing: a student can neither skip a cell nor force one to run. Such a cell keeps the outputs
   of the student's own run (plain text and images only), under a line that says so and why the
   grader did not run it. The checks need none of these cells: they call the student's
   definitions with the checker's own fixed weights and data.
   Each other cell's outputs (prints, plots, errors) become the cell's outputs, for the feedback.
   A cell may use `cell_timeout` CPU seconds of the runner (WALL_BACKSTOP times as many of wall
   time); one that runs past them or kills the runner gets an error output, and the notebook goes
   on in a fresh runner.
2. Every graded code cell (test cells, and any autograded answer cell) gets its outputs from the
   checker alone: its check's message when it passes, an error with the hint when it fails. What
   the student's code would have printed there is never looked at; nbgrader then scores the cell
   from these outputs (an error output scores zero). A check may use its budget of CPU seconds
   (`Check.budget`); a check that comes `after` one that ran out of time is not run, and says why.

The same function serves `nbgrader autograde` (through `autograder.nbgrader_glue.autograde.CheckedExecute`)
and `python -m autograder check` (hidden=False: the visible parts of the checks only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nbformat.notebooknode import NotebookNode, from_dict

from autograder.checker.checks import registry
from autograder.checker.core import WALL_BACKSTOP, Context, Runner, RunnerFailed, Verdict, run_check, submission_hash
from autograder.protocol.limits import Limits

NO_CHECK = "This graded cell has no trusted check in the course's checker, so it cannot earn points; tell your instructor."
# A course cell tagged so in the source notebook earns no points and the checks need nothing it
# makes: it only teaches (training, demo episodes, plots), or needs what the grader does not give a
# notebook (another notebook of the student's, as notebook 4 loads notebook 3). It is not run.
NOT_RUN_TAG = "not-run-while-grading"
NOT_RUN_TEXT = "Not run while grading: {reason}. Your points come from the checks, which call your definitions with the course's fixed weights and data."
OWN_RUN_TEXT = "Output below is from your own run, not from grading:"
TEACHES = "this cell only teaches (training, demo episodes, plots, data for them); the checks use fixed weights, not what it makes"
NEEDS_OTHER_NOTEBOOKS = "this cell needs your other notebooks, which the grader does not load (each notebook is graded on its own)"
# Outputs of the student's own run that the feedback may show: inert text and raster images only.
OWN_RUN_MIMETYPES = ("text/plain", "image/png", "image/jpeg")
OWN_RUN_MAX_CHARS = 1_000_000  # of one cell's kept outputs (images are long base64 strings): a flood is cut


@dataclass
class NotebookGrading:
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    cell_failures: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    """the runner's own troubles it recovered from (Runner.incidents), for the grading log"""
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
    """A course cell (not one the student fills in) tagged NOT_RUN_TAG: read only in the course's
    own notebooks (`not_run_cells`), never in a submission."""
    meta = cell.get("metadata", {})
    return NOT_RUN_TAG in (meta.get("tags") or []) and not meta.get("nbgrader", {}).get("solution")


def not_run_reason(source: str) -> str:
    """Why a tagged course cell is not run, from its text in the course's notebook."""
    return NEEDS_OTHER_NOTEBOOKS if "load_own_code" in source else TEACHES


def not_run_cells(course_nb: NotebookNode) -> dict[str, str]:
    """cell id -> why it is not run, for the cells of the course's own notebook (source or release)
    tagged NOT_RUN_TAG. Pass it to `run_and_check` as `not_run`: never read it from a submission."""
    return {
        cell["id"]: not_run_reason(cell.source)
        for cell in course_nb.cells
        if cell.get("cell_type") == "code" and cell.get("id") and is_not_run_while_grading(cell)
    }


def skipped(cell, not_run: dict[str, str]) -> str | None:
    """The reason `cell` of a submission is not run, or None: a course cell whose id the course's
    notebook tags (answer and graded cells always run or are checked, whatever their id)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("solution") or meta.get("grade"):
        return None
    return not_run.get(cell.get("id"))


def own_run_outputs(outputs: list, reason: str) -> list[NotebookNode]:
    """A not-run cell's outputs in the feedback: why it was not run, then what the student's own
    run had shown (inert text and images only, errors as text), marked as theirs."""
    kept, size = [], 0
    for output in outputs or []:
        kind = output.get("output_type")
        if kind == "stream":
            item = {"output_type": "stream", "name": "stdout", "text": str(output.get("text", ""))}
        elif kind == "error":
            item = {"output_type": "stream", "name": "stdout", "text": f"{str(output.get('ename', ''))[:200]}: {str(output.get('evalue', ''))[:2000]}\n"}
        elif kind in ("execute_result", "display_data") and isinstance(output.get("data"), dict):
            data = {key: value for key, value in output["data"].items() if key in OWN_RUN_MIMETYPES and isinstance(value, str)}
            if not data:
                continue
            item = {"output_type": "display_data", "data": data, "metadata": {}}
        else:
            continue
        size += sum(len(text) for text in (item.get("text", ""), *item.get("data", {}).values()))
        if size > OWN_RUN_MAX_CHARS:
            break
        kept.append(from_dict(item))
    note = NOT_RUN_TEXT.format(reason=reason)
    return [passed_output(f"{note}\n{OWN_RUN_TEXT}" if kept else note), *kept]


def run_and_check(
    nb: NotebookNode,
    *,
    notebook: str,
    student: str,
    secret: str,
    limits: Limits = Limits(),
    hidden: bool = True,
    check_modules: dict[str, str] | None = None,
    not_run: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    log=None,
) -> NotebookGrading:
    """Run `nb`'s cells in a runner, then decide its graded cells; `nb`'s outputs are replaced.

    `not_run`: the course's `not_run_cells` of this notebook (None: every cell runs).
    `limits`: times, memory, output caps and the sandbox of this notebook's runner."""
    import torch

    cell_timeout, notebook_timeout, max_restarts = limits.cell_timeout, limits.notebook_timeout, limits.max_restarts

    # The checker's own torch work (reference plans, expected values) on one thread: with several
    # gradings on a few cores, OpenMP threads spin against each other and run many times slower.
    torch.set_num_threads(1)
    started = time.monotonic()
    deadline = started + notebook_timeout
    result = NotebookGrading()
    checks = registry(notebook, check_modules)
    say = progress or (lambda text: None)
    restarts = 0
    not_run = not_run or {}
    # hidden inputs differ from one submitted code to the next, and repeat for the same code (Context.seed)
    submission = submission_hash([cell.source for cell in nb.cells if cell.cell_type == "code"])
    with Runner(limits, log=log) as runner:
        execution_count = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            reason = skipped(cell, not_run)
            own_outputs = list(cell.get("outputs") or [])
            cell.outputs = []
            cell.execution_count = None
            if reason is not None:
                cell.outputs = own_run_outputs(own_outputs, reason)
                continue
            if is_graded_code(cell) or not cell.source.strip():
                continue
            if time.monotonic() > deadline or restarts > max_restarts:
                why = (
                    f"the notebook used up its {notebook_timeout:.0f} s of grading time"
                    if restarts <= max_restarts
                    else f"the process running it failed {restarts} times"
                )
                cell.outputs = [error_output("NotRun", f"Not run: {why}.")]
                continue
            say(f"cell {index + 1}/{len(nb.cells)}")
            execution_count += 1
            try:
                ran = runner.run_cell(cell.source, timeout=max(1.0, min(cell_timeout, (deadline - time.monotonic()) / WALL_BACKSTOP)))
            except RunnerFailed as error:
                restarts += 1
                runner.restart()
                name = "CellTimeoutError" if error.kind == RunnerFailed.TIMEOUT else "DeadKernelError"
                cell.outputs = [
                    error_output(name, f"This cell could not finish: {error}. The grader started your code again from the top and went on after this cell.")
                ]
                result.cell_failures.append(f"cell {index + 1}: {error}")
                continue
            cell.execution_count = execution_count
            cell.outputs = [from_dict(output) for output in ran.outputs]
        if checks is not None and time.monotonic() < deadline:
            # The snapshot the checks' copies are made from, taken now: a runner started again after
            # a failed cell (start-up and replay) costs no check its budget.
            try:
                runner.snapshot()
            except RunnerFailed as error:
                result.cell_failures.append(f"after the cells: {error}")
        timed_out: list[str] = []  # checks that ran out of time, and those not run after them
        for cell in nb.cells:
            if not is_graded_code(cell):
                continue
            grade_id = cell.metadata["nbgrader"].get("grade_id", "")
            check = checks.checks.get(grade_id) if checks is not None else None
            if check is None:
                cell.outputs = [error_output("NotGraded", NO_CHECK)]
                result.verdicts[grade_id] = Verdict(grade_id, False, NO_CHECK)
                continue
            stuck = [earlier for earlier in check.after if earlier in timed_out]
            if time.monotonic() > deadline:
                verdict = Verdict(grade_id, False, f"Not checked: the notebook used up its {notebook_timeout:.0f} s of grading time.")
            elif stuck:
                # It would call the same code again and wait out its own budget too.
                verdict = Verdict(
                    grade_id,
                    False,
                    f"Not checked: it uses code whose own check ran out of time ({', '.join(stuck)}). Make that code finish, and this check runs.",
                    timed_out=True,
                )
            else:
                say(f"check {grade_id}")
                context = Context(student=student, notebook=notebook, secret=secret, hidden=hidden, submission=submission)
                budget = min(check.budget, max(1.0, (deadline - time.monotonic()) / WALL_BACKSTOP))
                verdict = run_check(replace(check, budget=budget), runner, context)
                failed_before = [earlier for earlier in check.after if earlier in result.verdicts and not result.verdicts[earlier].passed]
                if not verdict.passed and failed_before:
                    verdict.message = (
                        f"This check uses code whose own check failed earlier ({', '.join(failed_before)}): fix that first, "
                        f"this one may then pass too. What failed here: {verdict.message}"
                    )
            if verdict.timed_out:
                timed_out.append(grade_id)
            result.verdicts[grade_id] = verdict
            cell.outputs = [passed_output(verdict.message) if verdict.passed else error_output("CheckFailed", verdict.message)]
        result.incidents = list(runner.incidents)
    result.seconds = time.monotonic() - started
    return result
