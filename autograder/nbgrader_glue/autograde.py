"""nbgrader's autograde stage, as this course runs it (see autograder/nbgrader_glue/config.py).

- `RestoreCells` (sanitize step): nbgrader's OverwriteCells, made robust to tampering. It rebuilds
  every graded cell's nbgrader metadata from the gradebook before nbgrader's checks run, puts
  deleted test cells back, and writes a note into the notebook above each cell it had to repair,
  so the student's feedback says what happened.
- `CheckedExecute` (execute step, in place of nbgrader's Execute): the student's cells run in a
  sandboxed runner and every graded cell's outcome is the checker's verdict
  (`autograder.checker.notebook`).
- `ShowRubrics` (last steps): a locked cell with the model answer and rubric after each written
  answer, for formgrader; the feedback stage takes them out again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import fields

from nbformat.notebooknode import NotebookNode, from_dict
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearOutput, NbGraderPreprocessor, OverwriteCells
from traitlets import Bool, Dict, Float, Integer, Unicode

from autograder.nbgrader_glue import regions
from autograder.protocol.limits import Limits

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NOTE_MARKER = "grader_note"  # cell metadata key of the notes RestoreCells inserts
DUPLICATE_MARKER = "grader_duplicate"  # set by RestoreCells on a second copy of a course cell, which it drops


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


# ---------------------------------------------------------------------------------------------
# sanitize: restore graded cells and their metadata


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells, which also repairs tampered nbgrader metadata and reports repairs.

    nbgrader's own OverwriteCells already restores the source of edited locked cells (by checksum)
    and, with `add_missing_cells`, re-inserts deleted test cells. But a submission whose graded
    cells' metadata were edited (points changed, a test cell unmarked as locked or turned into a
    solution cell, an unknown or duplicated grade_id, a wrong schema) either slips past that check
    or makes nbgrader abort the whole notebook. Here every cell that carries a known grade_id gets
    its metadata rebuilt from the gradebook first; unknown and duplicated ids lose theirs.
    """

    def preprocess(self, nb: NotebookNode, resources: dict):
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source_nb = gb.find_notebook(notebook_id, assignment_id)
            grade_points = {cell.name: float(cell.max_score) for cell in source_nb.grade_cells}
            task_points = {cell.name: float(cell.max_score) for cell in source_nb.task_cells}
            solution_ids = {cell.name for cell in source_nb.solution_cells}
            canonical = {}
            for cell in source_nb.source_cells:
                meta = {
                    "grade": cell.name in grade_points,
                    "grade_id": cell.name,
                    "locked": bool(cell.locked),
                    "schema_version": 3,
                    "solution": cell.name in solution_ids,
                    "task": cell.name in task_points,
                    "checksum": cell.checksum,
                    "cell_type": cell.cell_type,
                }
                if cell.name in grade_points or cell.name in task_points:
                    meta["points"] = grade_points.get(cell.name, task_points.get(cell.name))
                canonical[cell.name] = meta
            # the course's cells in the source's order, as the release has them (solutions cleared)
            course_cells = [(cell.name, cell.cell_type, cell.source) for cell in source_nb.source_cells]

        self.notes: dict[str, list[str]] = defaultdict(list)
        seen = set()
        for cell in nb.cells:
            metadata = cell.setdefault("metadata", NotebookNode())
            if "nbgrader" not in metadata:
                continue
            nbgrader_meta = metadata["nbgrader"]
            grade_id = nbgrader_meta.get("grade_id") if isinstance(nbgrader_meta, dict) else None
            if not isinstance(grade_id, str) or grade_id not in canonical or grade_id in seen:
                del metadata["nbgrader"]
                if isinstance(grade_id, str) and grade_id in seen:
                    self.log.warning("Cell %s appears more than once; only the first copy is graded", grade_id)
                    if canonical[grade_id]["locked"]:  # a second copy of a course cell is the course's, not the student's: dropped
                        metadata[DUPLICATE_MARKER] = grade_id
                continue
            seen.add(grade_id)
            wanted = canonical[grade_id]
            changed = [
                key
                for key in ("grade", "solution", "locked", "task", "points")
                if key in wanted and _differs(nbgrader_meta.get(key, False if key != "points" else None), wanted[key])
            ]
            if changed:
                self.log.warning("Cell %s: nbgrader metadata %s changed; restored from the gradebook", grade_id, ", ".join(changed))
                self.notes[grade_id].append("its grading metadata had been changed (" + ", ".join(changed) + "); the original was restored")
            metadata["nbgrader"] = from_dict(dict(wanted))

        nb.cells = self._course_cells_in_place(nb.cells, course_cells, canonical)
        self.changed_attributes: dict[str, set[str]] = defaultdict(set)
        submitted_sources = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in nb.cells if "nbgrader" in cell.metadata}
        nb, resources = super().preprocess(nb, resources)

        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id is None:
                continue
            if grade_id not in seen:
                self.notes[grade_id].append("it was missing from the submitted notebook; the original was put back and run")
            # A test cell's checksum differs from its release version's whenever it has hidden
            # tests; only a difference from the release text is an edit.
            if "checksum" in self.changed_attributes[grade_id] and _normalised(submitted_sources.get(grade_id, "")) != _normalised(
                regions.outside(cell.source, regions.HIDDEN_TESTS)
            ):
                self.notes[grade_id].append("it had been edited in the submitted notebook; the original was restored and run")
            if "cell_type" in self.changed_attributes[grade_id]:
                self.notes[grade_id].append("its cell type had been changed; it was changed back")
        nb.cells = self._with_notes(nb.cells)
        return nb, resources

    def _course_cells_in_place(self, cells: list, course_cells: list[tuple[str, str, str]], canonical: dict) -> list:
        """Every course cell once, in the source notebook's order: a deleted one comes back from the
        gradebook (as released), a moved one goes back to its place, a second copy of a read-only or
        test cell is dropped. The student's own cells stay after the course cell they followed.

        nbgrader's own `add_missing_cells` puts back only graded cells, after the previous graded
        cell, and stops the whole notebook (KeyError) when the cell before a deleted one is a
        read-only cell: a student who deleted a cell by accident got no grade at all."""
        submitted: dict[str, NotebookNode] = {}
        followers: dict[str | None, list] = defaultdict(list)  # the student's own cells after each course cell
        last = None
        for cell in cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in canonical:
                last = grade_id
                submitted[grade_id] = cell
            elif DUPLICATE_MARKER in cell.get("metadata", {}):
                self.notes[cell.metadata[DUPLICATE_MARKER]].append("it appeared more than once; the second copy was removed")
            else:
                followers[last].append(cell)
        order = [name for name, _, _ in course_cells]
        present = [grade_id for grade_id in order if grade_id in submitted]
        handed_in = [grade_id for grade_id in submitted]  # dicts keep the submitted order
        moved = {grade_id for grade_id in present if _neighbours(present, grade_id) != _neighbours(handed_in, grade_id)} if present != handed_in else set()
        out = list(followers[None])
        for name, cell_type, source in course_cells:
            if name in submitted:
                out.append(submitted[name])
                if name in moved:
                    self.notes[name].append("it had been moved; it was put back in its place")
            else:
                self.log.warning("Cell %s is missing; restored from the source notebook", name)
                make = new_code_cell if cell_type == "code" else new_markdown_cell
                restored = make(source, metadata={"nbgrader": dict(canonical[name])}, id=note_id(f"restored {name}"))
                if not canonical[name]["solution"]:
                    restored.metadata.update(editable=False, deletable=False)
                out.append(restored)
            out += followers.get(name, [])
        return out

    def add_missing_grade_cells(self, nb, resources):
        return nb, resources  # done, for every course cell, by _course_cells_in_place

    def add_missing_task_cells(self, nb, resources):
        return nb, resources

    def report_change(self, name, attr, old, new):
        super().report_change(name, attr, old, new)
        self.changed_attributes[name].add(attr)

    def _with_notes(self, cells):
        out = []
        for cell in cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in self.notes:
                kind = "Test cell" if utils.is_grade(cell) and utils.is_locked(cell) else "Cell"
                text = f"**Grader's note.** {kind} `{grade_id}`: " + "; ".join(self.notes[grade_id]) + "."
                out.append(new_markdown_cell(text, metadata={NOTE_MARKER: True}, id=note_id(text)))
            out.append(cell)
        return out


def _neighbours(order: list[str], grade_id: str) -> tuple[str | None, str | None]:
    index = order.index(grade_id)
    return (order[index - 1] if index else None, order[index + 1] if index + 1 < len(order) else None)


def _normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def _differs(got, wanted) -> bool:
    if isinstance(wanted, bool):
        return bool(got) != wanted
    try:
        return float(got) != float(wanted)
    except (TypeError, ValueError):
        return True


# ---------------------------------------------------------------------------------------------
# execute: the student's code in the sandbox, the graded cells' outcomes from the checker


STATUS_SEPARATOR = "\t"


def write_status(path: str, notebook: str, step: str) -> None:
    """For the progress display of `grade` (autograder.term.progress): `notebook` is at `step`
    ("cell 3/40", "check test-x") since now."""
    import time

    with open(path, "w") as handle:
        handle.write(f"{notebook}: {step}{STATUS_SEPARATOR}{time.time():.1f}\n")


class SandboxError(RuntimeError):
    """Grading was asked to use the sandbox, and the sandbox cannot start here."""


class CheckedExecute(NbGraderPreprocessor):
    """nbgrader's execute step, replaced: `autograder.checker.notebook.run_and_check`.

    The notebook's cells run in the student's runner (bubblewrap sandbox); every graded code cell
    gets the checker's verdict as its only output, so nbgrader's SaveAutoGrades records points
    that the student's process had no say in. With `sandbox` off the notebook is still graded by
    the checker, but the runner can read what the grader's user can; a note at the top of the
    notebook (and so of its feedback) says so.
    """

    # One trait per limit, named, typed and defaulted as in Limits (its one home); `limits()` reads them back.
    for _limit in fields(Limits):
        locals()[_limit.name] = {"int": Integer, "float": Float, "bool": Bool}[_limit.type](
            getattr(Limits(), _limit.name), help=Limits.describe(_limit.name)
        ).tag(config=True)
    del _limit
    secret_file = Unicode("", help="File holding the course secret from which each student's hidden inputs are drawn").tag(config=True)
    check_modules = Dict(help="Extra notebook -> checks module entries (see autograder.checker.checks.registry)").tag(config=True)
    status_file = Unicode("", help="File where the current cell or check is written, for a progress display").tag(config=True)
    hidden = Bool(True, help="Run the checks' hidden parts (False for a student's `python -m autograder check`)").tag(config=True)
    source_directory = Unicode("", help="the course's source folder, whose notebooks mark the cells not run while grading").tag(config=True)

    def limits(self) -> Limits:
        """This notebook's limits, from the traits (which nbgrader's configuration sets)."""
        return Limits(**{limit.name: getattr(self, limit.name) for limit in fields(Limits)})

    def preprocess(self, nb, resources):
        from autograder.checker.notebook import run_and_check
        from autograder.sandbox.bubblewrap import sandbox_status

        if self.sandbox:
            ok, reason = sandbox_status()
            if not ok:
                raise SandboxError(f"the sandbox for student code cannot start: {reason}. {NO_SANDBOX_ADVICE}")
        notebook = resources["nbgrader"]["notebook"]
        student = resources["nbgrader"].get("student") or "student"
        status = self.status_file

        def progress(text: str) -> None:
            if status:
                write_status(status, notebook, text)

        result = run_and_check(
            nb,
            notebook=notebook,
            student=student,
            secret=course_secret(self.secret_file),
            limits=self.limits(),
            hidden=self.hidden,
            check_modules=dict(self.check_modules),
            not_run=course_not_run_cells(self.source_directory, resources),
            progress=progress,
        )
        for failure in result.cell_failures:
            self.log.warning("%s, %s: %s", student, notebook, failure)
        for incident in result.incidents:  # (the grader's trouble, recovered from: no point lost)
            self.log.warning("%s, %s: grader: %s", student, notebook, incident)
        from autograder.sandbox.bubblewrap import cgroup_fallbacks

        fallbacks = cgroup_fallbacks(self.limits())
        if fallbacks:  # this machine cannot hold the sandbox's processes together to a total: say what stands in
            self.log.warning("%s, %s: no cgroup for the per-student totals; %s", student, notebook, "; ".join(fallbacks))
        if not self.sandbox:
            nb.cells.insert(0, new_markdown_cell(NOT_SANDBOXED_NOTE, metadata={NOTE_MARKER: True}, id=note_id(NOT_SANDBOXED_NOTE)))
        return nb, resources


def course_not_run_cells(source_directory: str, resources: dict) -> dict[str, str]:
    """cell id -> why it is not run while grading, from the course's source notebook (never from the
    submission, whose tags a student can edit); {} without a source notebook: every cell runs."""
    import os

    import nbformat

    from autograder.checker.notebook import not_run_cells

    path = os.path.join(source_directory, resources["nbgrader"]["assignment"], f"{resources['nbgrader']['notebook']}.ipynb")
    if not source_directory or not os.path.isfile(path):
        return {}
    return not_run_cells(nbformat.read(path, as_version=4))


class ClearOutputExceptOwnRuns(ClearOutput):
    """nbgrader's ClearOutput, except for the course cells not run while grading: their outputs
    from the student's own run stay, for CheckedExecute to show as the student's (text and images
    only, marked so; `autograder.checker.notebook.own_run_outputs`)."""

    source_directory = Unicode("", help="the course's source folder (see CheckedExecute.source_directory)").tag(config=True)

    def preprocess(self, nb, resources):
        from autograder.checker.notebook import skipped

        not_run = course_not_run_cells(self.source_directory, resources)
        for index, cell in enumerate(nb.cells):
            if skipped(cell, not_run) is None:
                nb.cells[index], resources = self.preprocess_cell(cell, resources, index)
        return nb, resources


NO_SANDBOX_ADVICE = (
    "Grade on a Linux machine with unprivileged user namespaces, or pass --no-sandbox to `python -m autograder grade` "
    "(student code then runs unconfined, and every report says so)."
)
NOT_SANDBOXED_NOTE = (
    "**Grader's note.** This notebook was graded *without the sandbox* (`--no-sandbox`): the points were still "
    "decided by the course's checker, but the student's code could read the grader's files."
)


def note_id(text: str) -> str:
    """A grader's note's cell id, from its text: the same submission graded twice gives the same
    notebook and feedback, byte for byte (nbformat's own ids are random)."""
    import hashlib

    return "note-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def course_secret(path: str) -> str:
    """The course's grading secret, created (readable by the owner only) on first use. Each
    student's hidden inputs derive from it and the student's id: unknown to the runner in
    advance, the same at every regrade."""
    import os
    import secrets

    if not path:
        return ""
    try:
        with open(path) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    value = secrets.token_hex(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another grading process made it first
        with open(path) as handle:
            return handle.read().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    return value


# ---------------------------------------------------------------------------------------------
# formgrader: the model answer and rubric beside each written answer, for the grader only
RUBRIC_MARKER = "grader_rubric"  # cell metadata key of the cells ShowRubrics inserts


class ShowRubrics(NbGraderPreprocessor):
    """After each answer graded by hand, a locked markdown cell with the source notebook's model
    answer and rubric (the answer cell's solution region in `solutions/`), so that a grader in
    formgrader sees them beside the student's answer. Autograded copies only: the release never
    had the region, and generate_feedback drops these cells (DropGraderOnlyCells)."""

    source_directory = Unicode("", help="the course's source folder; no rubrics when empty or missing").tag(config=True)

    def preprocess(self, nb, resources):
        rubrics = self.source_rubrics(resources["nbgrader"]["assignment"], resources["nbgrader"]["notebook"])
        if not rubrics:
            return nb, resources
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if utils.is_grade(cell) and utils.is_solution(cell) and cell.cell_type == "markdown" and grade_id in rubrics:
                rubric = new_markdown_cell(
                    "---\n\n**For the grader only, never shown to the student: the model answer and rubric.**\n\n" + rubrics[grade_id] + "\n\n---",
                    metadata={"editable": False, "deletable": False, RUBRIC_MARKER: grade_id},
                )
                rubric.id = note_id(f"rubric {grade_id}")
                cells.append(rubric)
        nb.cells = cells
        return nb, resources

    def source_rubrics(self, assignment: str, notebook: str) -> dict[str, str]:
        """grade_id -> solution region of each written answer in the source notebook."""
        import os

        import nbformat

        path = os.path.join(self.source_directory, assignment, f"{notebook}.ipynb")
        if not self.source_directory or not os.path.isfile(path):
            return {}
        rubrics = {}
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "markdown" and utils.is_grade(cell) and utils.is_solution(cell) and regions.has(cell.source, regions.SOLUTION):
                answer = regions.inside(cell.source, regions.SOLUTION)
                rubrics[grade_id] = "\n".join(
                    line for line in answer.split("\n") if regions.MARK_SCHEME.begin not in line and regions.MARK_SCHEME.end not in line
                ).strip()
        return rubrics
