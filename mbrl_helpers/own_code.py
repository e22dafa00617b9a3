"""Your own code from an earlier notebook, for a later one.

A later notebook sometimes needs what you wrote in an earlier one: notebook 4 plans with your
ensemble and your CEM of notebook 3. Rather than hand out the graded answer, it reads your own
notebook file and runs two kinds of cell from it, in a namespace of their own: the setup cell (the
imports) and the cells you filled in (nbgrader's solution cells). Nothing else runs (no training,
no episodes), so loading takes about a second.

    EnsembleModel, ensemble_cem_plan = load_own_code("03_ensemble", "EnsembleModel", "ensemble_cem_plan")

The notebook is looked for where the course puts it: `../03_ensemble/03_ensemble.ipynb` from the
folder the later notebook runs in, then `./03_ensemble.ipynb`, then `./03_ensemble/03_ensemble.ipynb`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SETUP_CELL = "setup"  # the grade_id of each notebook's read-only import cell


class OwnCodeMissing(FileNotFoundError):
    """The earlier notebook is not where the course puts it, or does not define a name asked for."""


class OwnCodeError(RuntimeError):
    """A cell of the earlier notebook raised while it was being loaded."""


def candidate_paths(notebook: str, folder: Path | str | None = None) -> list[Path]:
    """Where `notebook` (e.g. "03_ensemble") is looked for, in order, from `folder` (default: the working directory)."""
    folder = Path(folder) if folder is not None else Path.cwd()
    filename = f"{notebook}.ipynb"
    return [folder.parent / notebook / filename, folder / filename, folder / notebook / filename]


def find_notebook(notebook: str, folder: Path | str | None = None) -> Path:
    """The first existing path of `candidate_paths`, or OwnCodeMissing saying where it looked."""
    candidates = candidate_paths(notebook, folder)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(path) for path in candidates)
    raise OwnCodeMissing(
        f"This notebook uses your own code from {notebook}, but {notebook}.ipynb was not found (looked at: {looked}). "
        f"Keep the course's folders side by side (notebooks/{notebook}/ next to this notebook's folder), "
        "or pass path= to load_own_code."
    )


def _cells_to_run(nb) -> list[tuple[int, str]]:
    """(index, source) of the setup cell and of every code cell the student fills in, in notebook order."""
    cells = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or meta.get("grade"):
            continue
        if meta.get("solution") or meta.get("grade_id") == SETUP_CELL:
            cells.append((index, cell.source))
    return cells


def load_own_code(notebook: str, *names: str, path: Path | str | None = None) -> Any:
    """Run the setup and solution cells of your notebook `notebook`; return the object named, or a tuple for several names.

    path: the notebook file, when it is not where the course puts it.
    Raises OwnCodeMissing (no file, or a name the cells do not define) and OwnCodeError (a cell
    raised: the message names the cell). A stub still in place (`raise NotImplementedError()` in
    a method) loads fine and raises NotImplementedError when it is called.
    """
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    if not names:
        raise ValueError("load_own_code: name at least one thing to load, e.g. load_own_code('03_ensemble', 'EnsembleModel')")
    notebook_path = Path(path) if path is not None else find_notebook(notebook)
    if not notebook_path.is_file():
        raise OwnCodeMissing(f"{notebook_path} does not exist.")
    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception as error:  # a file that is not a notebook: say which file
        raise OwnCodeError(f"{notebook_path} could not be read as a notebook: {error}") from error
    namespace: dict[str, Any] = {"__name__": f"own_code_{notebook}"}
    to_python = TransformerManager()  # a cell may hold IPython syntax (%magics); outside a kernel it must be plain Python
    for index, source in _cells_to_run(nb):
        code = to_python.transform_cell(source)
        if "get_ipython()" in code:
            code = "\n".join(line for line in code.splitlines() if "get_ipython()" not in line)
        try:
            # The setup cell prints the torch version and device: already said by this notebook.
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, f"<{notebook}, cell {index + 1}>", "exec"), namespace)
        except Exception as error:
            raise OwnCodeError(f"cell {index + 1} of {notebook_path} raised {type(error).__name__}: {error}. Fix it in {notebook} first.") from error
    missing = [name for name in names if name not in namespace]
    if missing:
        raise OwnCodeMissing(f"{notebook_path} does not define {', '.join(missing)}: did you rename it?")
    found = tuple(namespace[name] for name in names)
    return found[0] if len(found) == 1 else found


def load_own_code_or_none(notebook: str, *names: str, path: Path | str | None = None) -> Sequence[Any] | Any | None:
    """`load_own_code`, or None with a one-line note when the notebook is missing or does not load."""
    try:
        return load_own_code(notebook, *names, path=path)
    except (OwnCodeMissing, OwnCodeError) as error:
        print(f"Left out: {error}")
        return None
