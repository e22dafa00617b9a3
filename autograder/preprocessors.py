"""The nbgrader preprocessors this course adds to nbgrader's own (see autograder/config.py).

- `RestoreCells` (autograde, sanitize step): nbgrader's OverwriteCells, made robust to tampering.
  It rebuilds every graded cell's nbgrader metadata from the gradebook before nbgrader's checks
  run, puts deleted test cells back, and writes a note into the notebook above each cell it had
  to repair, so the student's feedback says what happened.
- `CheckedExecute` (autograde, execute step, in place of nbgrader's Execute): the student's
  cells run in a sandboxed runner and every graded cell's outcome is the checker's verdict
  (`autograder.notebook_run`). A cell that hangs or kills the runner gets an error output; the
  runner is started again with the earlier cells and grading goes on.
- `ShowRubrics` (autograde, last steps): a locked cell with the model answer and rubric after each
  written answer, for formgrader; `DropGraderOnlyCells` (generate_feedback) takes them out again.
- `HideHiddenTests` (generate_feedback): replaces each hidden-test region of a test cell with a
  one-line comment and drops the traceback lines that quote the test cell, keeping the error's
  type and message (the hint). The student sees which check failed and why, never its source.
- `OfflineFeedback` (generate_feedback): formulas as MathML and wrapped hints, so that a page
  reads the same with no network.
"""
from __future__ import annotations

import re
from collections import defaultdict

from nbformat.notebooknode import NotebookNode, from_dict
from nbformat.v4 import new_markdown_cell
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets import Bool, Dict, Integer, List, Unicode

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NOTE_MARKER = "grader_note"  # cell metadata key of the notes RestoreCells inserts
MARK_SCHEME_DELIMITERS = ("=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ===")  # graders' rubrics in the source


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An error output as the kernel would write it: it zeroes a grade cell, and shows in feedback."""
    return from_dict({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]})


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
                release_text(cell.source)
            ):
                self.notes[grade_id].append("it had been edited in the submitted notebook; the original was restored and run")
            if "cell_type" in self.changed_attributes[grade_id]:
                self.notes[grade_id].append("its cell type had been changed; it was changed back")
        nb.cells = self._with_notes(nb.cells)
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


def release_text(source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> str:
    """A cell's text without its begin ... end regions, delimiter lines included: by default a
    locked cell as nbgrader releases it, its hidden tests removed."""
    lines, hidden = [], False
    for line in source.split("\n"):
        if begin in line:
            hidden = True
        elif end in line:
            hidden = False
        elif not hidden:
            lines.append(line)
    return "\n".join(lines)


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


class SandboxError(RuntimeError):
    """Grading was asked to use the sandbox, and the sandbox cannot start here."""


class CheckedExecute(NbGraderPreprocessor):
    """nbgrader's execute step, replaced: `autograder.notebook_run.run_and_check`.

    The notebook's cells run in the student's runner (bubblewrap sandbox); every graded code cell
    gets the checker's verdict as its only output, so nbgrader's SaveAutoGrades records points
    that the student's process had no say in. With `sandbox` off the notebook is still graded by
    the checker, but the runner can read what the grader's user can; a note at the top of the
    notebook (and so of its feedback) says so.
    """

    cell_timeout = Integer(300, help="Seconds one cell of the student's notebook may run").tag(config=True)
    notebook_timeout = Integer(1200, help="Seconds all cells and checks of one notebook may take together").tag(config=True)
    memory_limit_mb = Integer(4096, help="Address space of the student's runner in MiB (0: no limit)").tag(config=True)
    max_restarts = Integer(3, help="Runner failures per notebook after which the remaining cells are not run").tag(config=True)
    sandbox = Bool(True, help="Run student code in the bubblewrap sandbox (refuse to grade where it cannot start)").tag(config=True)
    secret_file = Unicode("", help="File holding the course secret from which each student's hidden inputs are drawn").tag(config=True)
    check_modules = Dict(help="Extra notebook -> checks module entries (see autograder.checks.registry)").tag(config=True)
    status_file = Unicode("", help="File where the current cell or check is written, for a progress display").tag(config=True)
    hidden = Bool(True, help="Run the checks' hidden parts (False for a student's `python -m autograder check`)").tag(config=True)

    def preprocess(self, nb, resources):
        from autograder.notebook_run import run_and_check
        from autograder.sandbox import RunnerLimits, sandbox_status

        if self.sandbox:
            ok, reason = sandbox_status()
            if not ok:
                raise SandboxError(f"the sandbox for student code cannot start: {reason}. {NO_SANDBOX_ADVICE}")
        notebook = resources["nbgrader"]["notebook"]
        student = resources["nbgrader"].get("student") or "student"
        status = self.status_file

        def progress(text: str) -> None:
            if status:
                with open(status, "w") as handle:
                    handle.write(f"{notebook}: {text}\n")

        result = run_and_check(
            nb,
            notebook=notebook,
            student=student,
            secret=course_secret(self.secret_file),
            limits=RunnerLimits(memory_mb=self.memory_limit_mb, cpu_seconds=max(60, 2 * self.notebook_timeout)),
            sandbox=self.sandbox,
            hidden=self.hidden,
            cell_timeout=self.cell_timeout,
            notebook_timeout=self.notebook_timeout,
            max_restarts=self.max_restarts,
            check_modules=dict(self.check_modules),
            progress=progress,
        )
        for failure in result.cell_failures:
            self.log.warning("%s, %s: %s", student, notebook, failure)
        if not self.sandbox:
            nb.cells.insert(0, new_markdown_cell(NOT_SANDBOXED_NOTE, metadata={NOTE_MARKER: True}, id=note_id(NOT_SANDBOXED_NOTE)))
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


class FeedbackPreprocessor(NbGraderPreprocessor):
    """A preprocessor of generate_feedback, which hands every one of them the exporter's
    display_data_priority: declared with nbgrader's own default, as its GetGrades declares it, so
    that the logs do not warn about an unknown setting."""

    display_data_priority = List(["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png", "image/jpeg", "text/plain"]).tag(config=True)


class ShowRubrics(NbGraderPreprocessor):
    """After each answer graded by hand, a locked markdown cell with the source notebook's model
    answer and rubric (the answer cell's solution region in `solutions/`), so that a grader in
    formgrader sees them beside the student's answer. Autograded copies only: the release never
    had the region, and generate_feedback drops these cells (DropGraderOnlyCells)."""

    source_directory = Unicode("", help="the course's source folder; no rubrics when empty or missing").tag(config=True)
    begin_solution_delimiter = Unicode("BEGIN SOLUTION").tag(config=True)
    end_solution_delimiter = Unicode("END SOLUTION").tag(config=True)

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
            if cell.cell_type == "markdown" and utils.is_grade(cell) and utils.is_solution(cell) and self.begin_solution_delimiter in cell.source:
                inside, lines = False, []
                for line in cell.source.split("\n"):
                    if self.begin_solution_delimiter in line:
                        inside = True
                    elif self.end_solution_delimiter in line:
                        inside = False
                    elif inside and not any(marker in line for marker in MARK_SCHEME_DELIMITERS):
                        lines.append(line)
                rubrics[grade_id] = "\n".join(lines).strip()
        return rubrics


class DropGraderOnlyCells(FeedbackPreprocessor):
    """generate_feedback: remove the rubric cells ShowRubrics put into the autograded copy."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if RUBRIC_MARKER not in cell.metadata]
        return nb, resources


# feedback: never show hidden tests


class HideHiddenTests(FeedbackPreprocessor):
    """Hide the hidden tests of test cells from the feedback, keep which check failed and why.

    Each `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` region becomes one comment line: the
    region's first comment if it starts with one (the check's description), else "hidden tests".
    Mark schemes (graders' rubrics) are removed from markdown cells too.
    In the error outputs of such a cell, the traceback frames of the cell itself (which IPython
    prints with the surrounding source lines) are replaced by a line that names the cell, so the
    error's type and message, the hint, remain.
    """

    begin_test_delimiter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_test_delimiter = Unicode("END HIDDEN TESTS").tag(config=True)
    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown" and MARK_SCHEME_DELIMITERS[0] in cell.source:
            # a task cell put back by nbgrader comes from the gradebook with its rubric
            cell.source = release_text(cell.source, *MARK_SCHEME_DELIMITERS)
            return cell, resources
        if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        if self.begin_test_delimiter not in cell.source:
            return cell, resources
        cell.source = self.hide_source(cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output.traceback = self.hide_traceback(output.get("traceback", []), cell.get("execution_count"), output)
        return cell, resources

    def hide_source(self, source: str) -> str:
        lines, region = [], None
        for line in source.split("\n"):
            if self.begin_test_delimiter in line:
                region = []
            elif self.end_test_delimiter in line and region is not None:
                lines.append(_region_summary(line, region))
                region = None
            elif region is not None:
                region.append(line)
            else:
                lines.append(line)
        if region is not None:  # no end delimiter: hide to the end of the cell
            lines.append(_region_summary("", region))
        return "\n".join(lines)

    @staticmethod
    def hide_traceback(traceback: list[str], execution_count, output) -> list[str]:
        own_cell = re.compile(r"^\s*(Cell In ?\[(\d+)\]|Input In ?\[(\d+)\]|File <ipython-input-(\d+)-)")
        kept = []
        for frame in traceback:
            match = own_cell.match(strip_ansi(frame))
            if match is None:
                kept.append(frame)
                continue
            number = next(int(group) for group in match.groups()[1:] if group is not None)
            if execution_count is None or number == execution_count:
                if not kept or kept[-1] != "(hidden test: source not shown)":
                    kept.append("(hidden test: source not shown)")
            else:
                kept.append(frame)
        last = f"\x1b[0;31m{output.get('ename', 'Error')}\x1b[0m: {output.get('evalue', '')}"
        if not kept or strip_ansi(kept[-1]).strip() != strip_ansi(last).strip():
            kept.append(last)
        return kept


def _region_summary(end_line: str, region: list[str]) -> str:
    indent = re.match(r"\s*", end_line).group(0) if end_line else ""
    first = next((line.strip() for line in region if line.strip()), "")
    if first.startswith("#"):
        return f"{indent}# hidden test: {first.lstrip('#').strip()}"
    return f"{indent}# hidden tests (not shown)"


# ---------------------------------------------------------------------------------------------
# feedback a student can read offline, on any screen
FEEDBACK_CSS = """
/* The checker's hints are single long lines: wrap them instead of scrolling sideways. */
div.output_area pre, div.output_subarea pre, div.output_text pre {
    white-space: pre-wrap;
    overflow-wrap: anywhere;
}
div.output_subarea { max-width: 100%; }
/* The test cells' own messages sit in their source: wrap it too, rather than cut it at the edge. */
div.input_area pre { white-space: pre-wrap; overflow-wrap: anywhere; }
math[display="block"] { margin: 0.5em 0; }
"""
# $$...$$ (display) or $...$ (inline), not preceded by a backslash; code is left alone (see below).
MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?!\s)((?:[^$\n]|\n(?!\s*\n))+?)(?<![\s\\])\$(?!\d)", re.S)
CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)


def math_as_mathml(markdown: str) -> str:
    """The markdown with each `$...$` and `$$...$$` formula replaced by MathML, which browsers draw
    themselves: a feedback page then shows its formulas with no MathJax and no network. Formulas
    inside code spans or fences stay as written; one latex2mathml cannot read stays as TeX."""
    from latex2mathml.converter import convert

    def replace(match: re.Match) -> str:
        display, inline = match.group(1), match.group(2)
        try:
            mathml = convert(display if display is not None else inline, display="block" if display is not None else "inline")
        except Exception:  # noqa: BLE001 - an unreadable formula is shown as its TeX
            return match.group(0)
        return mathml.replace("\n", "")

    parts = CODE.split(markdown)  # odd indices are code
    return "".join(part if index % 2 else MATH.sub(replace, part) for index, part in enumerate(parts))


class OfflineFeedback(FeedbackPreprocessor):
    """generate_feedback: a page that reads the same offline as online. Formulas in markdown cells
    become MathML (the page loads no MathJax: see autograder/feedback_template), and long output
    lines, the checker's hints among them, wrap."""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.cell_type == "markdown" and "$" in cell.source:
                cell.source = math_as_mathml(cell.source)
            for output in cell.get("outputs", []):
                # nbconvert warns, once per page, of each plot without a text alternative: nothing an
                # instructor can act on. Say what the image is, for screen readers too.
                for mime in ("image/png", "image/jpeg"):
                    if mime in output.get("data", {}):
                        output.setdefault("metadata", {}).setdefault(mime, {}).setdefault("alt", "Figure drawn by the code of the cell above")
        resources.setdefault("inlining", {}).setdefault("css", []).append(FEEDBACK_CSS)
        return nb, resources
