"""The three nbgrader preprocessors this course adds to nbgrader's own (see autograder/config.py).

- `RestoreCells` (autograde, sanitize step): nbgrader's OverwriteCells, made robust to tampering.
  It rebuilds every graded cell's nbgrader metadata from the gradebook before nbgrader's checks
  run, puts deleted test cells back, and writes a note into the notebook above each cell it had
  to repair, so the student's feedback says what happened.
- `GradingExecute` (autograde, execute step): nbgrader's Execute in a memory-limited,
  single-thread kernel (`autograder.kernel`), with a time budget for the whole notebook. A cell
  that kills the kernel (os._exit, a segfault, a SIGKILL) or hangs beyond interruption gets an
  error output; the kernel is restarted, the cells that ran before are run again, and grading
  goes on with the next cell. Stock nbgrader gives up on the whole notebook instead.
- `HideHiddenTests` (generate_feedback): replaces each hidden-test region of a test cell with a
  one-line comment and drops the traceback lines that quote the test cell, keeping the error's
  type and message (the hint). The student sees which check failed and why, never its source.
"""
from __future__ import annotations

import copy
import re
from collections import defaultdict
from time import monotonic

from nbclient.client import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode, from_dict
from nbformat.v4 import new_markdown_cell
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from nbgrader.preprocessors.execute import Execute
from traitlets import Integer, Unicode

from autograder.kernel import GradingKernelManager

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
                out.append(new_markdown_cell(text, metadata={NOTE_MARKER: True}))
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
# execute: a kernel that cannot take the grader down with it


class GradingExecute(Execute):
    """nbgrader's Execute: a limited kernel, a notebook time budget, and recovery from dead kernels.

    When the kernel dies during a cell, or a timed-out cell cannot be interrupted, that cell gets
    an error output (so a grade cell scores zero), a new kernel is started, the code cells that
    had run are run again (their new outputs discarded), and execution resumes after the failed
    cell. After `max_kernel_restarts` such failures, or once `notebook_timeout` is used up, the
    remaining code cells get an error output saying they were not run.
    """

    notebook_timeout = Integer(
        1200, allow_none=True, help="Seconds all the cells of one notebook may take together (None: no limit)"
    ).tag(config=True)
    max_kernel_restarts = Integer(3, help="Kernel restarts per notebook before the remaining cells are given up").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", GradingKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._deadline = monotonic() + self.notebook_timeout if self.notebook_timeout else None
        cells = self.nb.cells
        ran: list[int] = []  # code cells run so far, replayed after a restart
        index, restarts = 0, 0
        while index < len(cells):
            with self.setup_kernel():
                info = self.wait_for_reply(self.kc.kernel_info())
                if info is not None:
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
                if restarts and not self._replay(ran):
                    self._give_up(index, "Not run: after the kernel died, running the earlier cells again failed.")
                    break
                while index < len(cells):
                    if self._deadline is not None and monotonic() > self._deadline:
                        self._give_up(index, f"Not run: the notebook used up its {self.notebook_timeout} s of grading time.")
                        index = len(cells)
                        break
                    try:
                        self.preprocess_cell(cells[index], resources, index)
                    except DeadKernelError:
                        self._fail(index, "DeadKernelError", (
                            "the kernel died while running this cell (it crashed, exited, or was killed, for example "
                            "for using too much memory). The grader restarted it and ran the earlier cells again."
                        ))
                    except CellTimeoutError:
                        self._fail(index, "CellTimeoutError", (
                            "this cell did not finish in time and could not be interrupted. The grader restarted "
                            "the kernel and ran the earlier cells again."
                        ))
                    else:
                        if cells[index].cell_type == "code":
                            ran.append(index)
                        index += 1
                        continue
                    index += 1
                    restarts += 1
                    if restarts > self.max_kernel_restarts:
                        self._give_up(index, f"Not run: the kernel died {restarts} times in this notebook.")
                        index = len(cells)
                    break  # leaving setup_kernel shuts the dead or stuck kernel down
        self.set_widgets_metadata()
        return self.nb, self.resources

    def _replay(self, indices: list[int]) -> bool:
        """Run the given cells again in the new kernel, keeping their recorded outputs."""
        for index in indices:
            original = self.nb.cells[index]
            try:
                self.execute_cell(copy.deepcopy(original), index, store_history=True)
            except (DeadKernelError, CellTimeoutError):
                return False
            finally:
                self.nb.cells[index] = original
        return True

    def _fail(self, index: int, ename: str, evalue: str) -> None:
        cell = self.nb.cells[index]
        self.log.error("Cell %d: %s", index, ename)
        cell.outputs = list(cell.get("outputs", [])) + [error_output(ename, evalue)]

    def _give_up(self, start: int, reason: str) -> None:
        for cell in self.nb.cells[start:]:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [error_output("NotRun", reason)]

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        self._budget_bound = False
        if getattr(self, "_deadline", None) is not None:
            remaining = max(1, int(self._deadline - monotonic()))
            if timeout is None or remaining < timeout:
                timeout, self._budget_bound = remaining, True
        return timeout

    async def _async_handle_timeout(self, timeout, cell=None):
        if getattr(self, "_budget_bound", False):
            message = f"the notebook used up its {self.notebook_timeout} s of grading time while this cell ran, and it was stopped"
        else:
            message = f"the cell ran for more than {timeout} s and was stopped (an endless loop, or far too slow)"
        self.error_on_timeout = {"ename": "CellTimeoutError", "evalue": message, "traceback": [f"\x1b[0;31mCellTimeoutError\x1b[0m: {message}"]}
        return await super()._async_handle_timeout(timeout, cell)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        memory_mb = getattr(self.km, "memory_limit_mb", 0) if self.km is not None else 0
        for output in kwargs["cell"].get("outputs", []):
            if output.get("output_type") == "error" and (
                output.get("ename") == "MemoryError" or "can't allocate memory" in str(output.get("evalue", ""))
            ):
                note = f" (a grading kernel may use at most {memory_mb} MiB of memory)"
                if note not in output.evalue:
                    output.evalue = f"{output.evalue}{note}"
                    output.traceback = list(output.get("traceback", [])) + [f"MemoryError{note}"]


# ---------------------------------------------------------------------------------------------
# feedback: never show hidden tests


class HideHiddenTests(NbGraderPreprocessor):
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
