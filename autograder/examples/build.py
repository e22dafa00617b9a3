"""Build student submissions from the course's own notebooks, so examples never drift from them.

The reference submission of a notebook is the release notebook (what students get, hidden tests
already removed by nbgrader) with every solution cell filled in from the source notebook, the
solution markers dropped: exactly what a student who wrote the reference answers would hand in.
A wrong submission is the reference with one text substitution in one solution cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.utils import is_solution

from autograder.nbgrader_glue import regions


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_text(source: str) -> str:
    """A source cell's text as the student would write it: solution markers and mark schemes gone."""
    without_rubric = regions.outside(source, regions.MARK_SCHEME)
    return "\n".join(line for run in regions.runs(without_rubric, regions.SOLUTION) for line in run.lines).strip("\n")


def reference_submission(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    """The release notebook with its solution cells filled in from the source notebook."""
    answers = {grade_id(cell): cell for cell in source.cells if is_solution(cell)}
    nb = nbformat.reads(nbformat.writes(release), as_version=4)
    for cell in nb.cells:
        if is_solution(cell) and grade_id(cell) in answers:
            cell.source = solution_text(answers[grade_id(cell)].source)
    return nb


@dataclass(frozen=True)
class Substitution:
    """Replace `old` by `new` in the solution cells, where `old` must occur exactly `count` times."""

    old: str
    new: str
    count: int = 1

    def apply(self, nb: NotebookNode, where: str = "") -> NotebookNode:
        cells = [cell for cell in nb.cells if is_solution(cell) and cell.cell_type == "code"]
        found = sum(cell.source.count(self.old) for cell in cells)
        if found != self.count:
            raise ValueError(
                f"{where}: the text to replace must occur {self.count} time(s) in the solution cells, found {found}: "
                f"{self.old!r}. Update autograder/examples/catalogue.py to the current solution notebook."
            )
        for cell in cells:
            cell.source = cell.source.replace(self.old, self.new)
        return nb


def replace_cell(nb: NotebookNode, cell_id: str, source: str, where: str = "") -> NotebookNode:
    """Replace the whole text of the solution cell `cell_id`."""
    cells = [cell for cell in nb.cells if is_solution(cell) and grade_id(cell) == cell_id]
    if len(cells) != 1:
        raise ValueError(f"{where}: no solution cell {cell_id!r} in the notebook. Update autograder/examples/catalogue.py.")
    cells[0].source = source.strip("\n")
    return nb


def read(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def write(nb: NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
