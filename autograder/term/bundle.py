"""The student bundle: everything a student needs and nothing a student must not see.

`python -m autograder bundle` writes one zip file (or folder) with the release notebooks, the
`mbrl_helpers` package, the data files, a student requirements file and a minimal pyproject, so
that `pip install -r requirements.txt` inside it makes `import mbrl_helpers` work. It never holds
the source notebooks (`solutions/`), the reference answers (`mbrl_reference/`), the grader
(`autograder/`) or the gradebook (`grading/`), and it refuses to ship a file in which a line of a
graded solution appears: a later notebook must not hand out an earlier notebook's answer.

The leak detector is here too, so that the build and the tests use the same one.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import tempfile
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder.nbgrader_glue import regions
from autograder.nbgrader_glue.course import Course

DEFAULT_OUTPUT = Path("build") / "mbrl-course-student.zip"
"""relative to the course root; build/ is ignored by git"""
TOP_FOLDER = "mbrl-course"
"""every zip unzips into this folder, whatever the zip's name: a later week's bundle lands beside
the student's earlier notebooks, where a later notebook looks for the student's own code"""
STUDENT_REQUIREMENTS = "requirements-student.txt"
HELPERS_PACKAGE = "mbrl_helpers"
DATA_DIRECTORY = "data"
DATA_PATTERNS = ("*.npz", "*.json")
"""every dataset and manifest, whatever their names: new datasets join without a code change"""
MANIFEST_NAME = "bundle-manifest.json"
"""written into every bundle; a folder that holds it may be replaced by the next build"""
NEVER_BUNDLED = ("solutions", "mbrl_reference", "autograder", "grading")
SKIPPED_NAMES = ("__pycache__", ".ipynb_checkpoints")

MIN_LINE_CHARS = 25
"""a solution line shorter than this (whitespace removed) is too generic to be an answer"""

STUDENT_PYPROJECT = """\
# The student bundle's own package: only mbrl_helpers. Installed in editable mode (`-e .` in
# requirements.txt) so that mbrl_helpers finds the data/ folder beside it.
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "mbrl-course-student"
version = "0.1.0"
description = "Model-based RL course, student bundle: the notebooks' helpers"
requires-python = ">=3.10"

[tool.setuptools.packages.find]
include = ["mbrl_helpers*"]
"""

STUDENT_README = """\
# Model-based RL: the student bundle

Set up once (Python 3.10 or newer):

    python3 -m venv .venv
    .venv/bin/pip install -r requirements.txt

Then open the notebooks, in order:

    .venv/bin/jupyter lab notebooks/

Fill in the cells marked `# YOUR CODE HERE`; the check after each exercise says what is wrong
when it fails. Hand in the .ipynb file of each notebook as your course asks.

Assignments: {assignments}
"""


# The student's JupyterLab settings, a package of their own (an editable install does not install
# data files), listed in the bundle's requirements.txt: no "Jupyter news?" prompt (it needs the
# internet) and no nbgrader exchange panels (the course does not use the exchange), and the
# install's own files (mbrl_course_student.egg-info/, .venv/) hidden from the file browser.
STUDENT_JUPYTER = "jupyter_settings"
STUDENT_JUPYTER_FILES = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "mbrl-course-student-jupyter-settings"
version = "0.1.0"
requires-python = ">=3.10"

[tool.setuptools]
packages = []

[tool.setuptools.data-files]
"etc/jupyter/labconfig" = ["page_config.json"]
"etc/jupyter/jupyter_server_config.d" = ["mbrl_course_student.json"]
""",
    "page_config.json": json.dumps(
        {
            "disabledExtensions": {
                "@jupyterlab/apputils-extension:announcements": True,
                "@jupyter/nbgrader:assignment-list": True,
                "@jupyter/nbgrader:course-list": True,
            }
        },
        indent=1,
    )
    + "\n",
    "mbrl_course_student.json": json.dumps(
        {"ContentsManager": {"hide_globs": ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*.so", "*.dylib", "*~", "*.egg-info", ".venv"]}}, indent=1
    )
    + "\n",
}


def student_requirements(text: str) -> str:
    """The course's requirements-student.txt as a student reads it: its pins, without the notes
    written for instructors, and the bundle's JupyterLab settings."""
    pins = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    header = ["# What the notebooks need. Install: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"]
    return "\n".join(header + pins + [f"./{STUDENT_JUPYTER}"]) + "\n"


class BundleError(RuntimeError):
    """The bundle cannot be built: a missing assignment or file, or an answer in a bundled file."""


@dataclass(frozen=True)
class Bundle:
    """What `build_bundle` wrote."""

    path: Path
    assignments: tuple[str, ...]
    files: tuple[str, ...]
    """paths inside the bundle, relative to its top folder"""
    size_bytes: int
    leaks: tuple[Leak, ...] = ()
    """lines of graded solutions it holds: none unless built with check_leaks=False"""


# -- what goes in ---------------------------------------------------------------------------------
def released_assignments(course: Course) -> list[str]:
    """The assignments of the release folder (notebooks/) that hold a notebook."""
    if not course.release.is_dir():
        return []
    return sorted(p.name for p in course.release.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def chosen_assignments(course: Course, wanted: list[str] | None) -> list[str]:
    available = released_assignments(course)
    if not wanted:
        if not available:
            raise BundleError(f"{course.release} holds no assignment; run `python -m autograder release` first")
        return available
    missing = [name for name in wanted if name not in available]
    if missing:
        raise BundleError(
            f"{course.release} lacks the assignment(s) {', '.join(missing)} (it has: {', '.join(available) or 'none'}); "
            f"release them first with `python -m autograder release --assignment NAME`"
        )
    return list(dict.fromkeys(wanted))  # the order asked for, each once


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part in SKIPPED_NAMES for part in p.relative_to(folder).parts) and p.suffix != ".pyc")


def bundle_sources(course: Course, assignments: list[str]) -> dict[str, Path]:
    """Path inside the bundle -> file to copy: the release notebooks, mbrl_helpers, the data."""
    sources: dict[str, Path] = {}
    for assignment in assignments:
        folder = course.release / assignment
        for path in _files_under(folder):
            sources[f"notebooks/{assignment}/{path.relative_to(folder).as_posix()}"] = path
    helpers = course.root / HELPERS_PACKAGE
    if not (helpers / "__init__.py").is_file():
        raise BundleError(f"{helpers} is not a package")
    for path in _files_under(helpers):
        sources[f"{HELPERS_PACKAGE}/{path.relative_to(helpers).as_posix()}"] = path
    data = course.root / DATA_DIRECTORY
    data_files = sorted({p for pattern in DATA_PATTERNS for p in data.glob(pattern) if p.is_file()})
    if not any(p.suffix == ".npz" for p in data_files):
        raise BundleError(f"{data} holds no .npz dataset")
    for path in data_files:
        sources[f"{DATA_DIRECTORY}/{path.name}"] = path
    return sources


def generated_files(course: Course, assignments: list[str], copied: list[str]) -> dict[str, bytes]:
    """Files written for the bundle: requirements, pyproject, a README and the manifest."""
    requirements = course.root / STUDENT_REQUIREMENTS
    if not requirements.is_file():
        raise BundleError(f"{requirements} is missing: the student bundle's requirements.txt is copied from it")
    generated = {
        "requirements.txt": student_requirements(requirements.read_text()).encode(),
        **{f"{STUDENT_JUPYTER}/{name}": text.encode() for name, text in STUDENT_JUPYTER_FILES.items()},
        "pyproject.toml": STUDENT_PYPROJECT.encode(),
        "README.md": STUDENT_README.format(assignments=", ".join(assignments)).encode(),
    }
    manifest = {"assignments": assignments, "files": sorted([*copied, *generated, MANIFEST_NAME])}
    generated[MANIFEST_NAME] = (json.dumps(manifest, indent=1) + "\n").encode()
    return generated


def refuse_forbidden_paths(names: list[str]) -> None:
    """A last guard: no path of the bundle lies in a folder students must not have."""
    bad = [name for name in names if name.split("/")[0] in NEVER_BUNDLED]
    if bad:
        raise BundleError(f"refusing to bundle {', '.join(bad)}: {', '.join(NEVER_BUNDLED)} never reach students")


# -- writing, atomically ----------------------------------------------------------------------------
def _write_zip(target: Path, top: str, sources: dict[str, Path], generated: dict[str, bytes]) -> None:
    """Write to a temporary file beside `target`, then rename: a failure leaves no half zip."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in sorted(sources.items()):
                archive.write(path, f"{top}/{name}")
            for name, content in sorted(generated.items()):
                archive.writestr(f"{top}/{name}", content)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a bundle is for sharing
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_folder(target: Path, sources: dict[str, Path], generated: dict[str, bytes]) -> None:
    """Fill a temporary folder beside `target`, then swap it in. An existing folder is replaced
    only when it is an earlier bundle (it holds the manifest), never a folder of the user's."""
    if target.exists() and not (target / MANIFEST_NAME).is_file():
        if not target.is_dir() or any(target.iterdir()):
            raise BundleError(f"{target} exists and is not a student bundle; choose another --output or remove it")
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        for name, path in sources.items():
            (temporary / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, temporary / name)
        for name, content in generated.items():
            (temporary / name).parent.mkdir(parents=True, exist_ok=True)
            (temporary / name).write_bytes(content)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(temporary, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_bundle(*, course: Course | None = None, output: Path | None = None, assignments: list[str] | None = None, check_leaks: bool = True) -> Bundle:
    """Write the student bundle to `output`: a zip file when it ends in .zip, else a folder.

    `assignments`: the release folders to include (default: every one in notebooks/). With
    `check_leaks`, refuses (BundleError, nothing written) when a bundled notebook or .py file
    holds a line of a graded solution of any source notebook or of mbrl_reference; without, the
    bundle is written and the lines are returned in `Bundle.leaks`.
    """
    course = course or Course()
    chosen = chosen_assignments(course, assignments)
    sources = bundle_sources(course, chosen)
    generated = generated_files(course, chosen, list(sources))
    names = sorted([*sources, *generated])
    refuse_forbidden_paths(names)
    leaks = find_leaks(graded_answer_lines(course), bundle_documents(sources))
    if leaks and check_leaks:
        raise BundleError(
            "refusing to bundle answers; a graded solution's line appears in a bundled file:\n"
            + format_leaks(leaks)
            + "\nTake them out of those files and release again (or, to ship them anyway, --skip-leak-check)."
        )
    target = Path(output) if output is not None else course.root / DEFAULT_OUTPUT
    target = target if target.is_absolute() else Path.cwd() / target
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".zip":
        _write_zip(target, TOP_FOLDER, sources, generated)
    else:
        _write_folder(target, sources, generated)
    return Bundle(path=target, assignments=tuple(chosen), files=tuple(names), size_bytes=_size(target), leaks=tuple(leaks))


# -- the leak detector ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SolutionLine:
    """One logical line of a graded answer."""

    origin: str
    """where the answer lives: a source notebook and its cell, or an mbrl_reference function"""
    text: str
    """the line as written"""

    key: str
    """the line without any whitespace: what is looked for"""
    assignment: str | None = None
    """the assignment that teaches it; its own release may show the line (a hint, a given stub)"""


@dataclass(frozen=True)
class Leak:
    line: SolutionLine
    where: str
    """the bundled or released file, and the cell, that holds it"""


def without_whitespace(text: str) -> str:
    return re.sub(r"\s+", "", text)


def logical_lines(code: str) -> list[tuple[int, int, str]]:
    """(first row, last row, text without comments) of each logical line of `code` (rows from 1).

    A statement that spans brackets counts as one line, so a reformatted call is still found. Code
    that does not tokenize (IPython magics) falls back to physical lines with comments cut off.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [(row, row, line.split("#", 1)[0].strip()) for row, line in enumerate(code.splitlines(), 1)]
    lines, current = [], []
    for token in tokens:
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if current:
                lines.append((current[0].start[0], current[-1].end[0], " ".join(t.string for t in current)))
            current = []
        elif token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
            current.append(token)
    return lines


def is_meaningful(line: str) -> bool:
    """Long enough to be an answer, and not one of the lines every notebook may share: imports,
    signatures (the students are given them), bare strings (docstrings), returning a name."""
    key = without_whitespace(line)
    if len(key) < MIN_LINE_CHARS:
        return False
    if re.match(r"(import|from)\s", line) or re.match(r"(async\s+)?(def|class)\s", line):
        return False
    if re.fullmatch(r"(return|yield|raise)\s+[\w.]+(\s*\(\s*\))?", line.strip()):
        return False
    return not re.fullmatch(r"[rbuf]*('''|\"\"\"|'|\").*", line, flags=re.S)


def solution_rows(source: str) -> set[int]:
    """Rows (from 1) of a solution cell that nbgrader removes: inside its solution regions, or all
    rows when the cell has none (nbgrader then replaces the whole cell)."""
    if not regions.has(source, regions.SOLUTION):
        return set(range(1, len(source.splitlines()) + 1))
    return regions.inside_rows(source, regions.SOLUTION)


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _as_written(source: str, first: int, last: int) -> str:
    """The rows of a logical line as the author wrote them, on one line, for the report."""
    return " ".join(row.strip() for row in source.splitlines()[first - 1 : last])


def notebook_solution_lines(path: Path, label: str) -> list[SolutionLine]:
    """The meaningful lines of every graded solution code cell of a source notebook."""
    found = []
    for index, cell in enumerate(json.loads(path.read_text()).get("cells", [])):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("solution"):
            continue
        source = _cell_source(cell)
        rows = solution_rows(source)
        origin = f"{label}, solution cell {meta.get('grade_id', index)!r}"
        for first, last, text in logical_lines(source):
            if first in rows and last in rows and is_meaningful(text):
                found.append(SolutionLine(origin, _as_written(source, first, last), without_whitespace(text), path.parent.name))
    return found


def module_solution_lines(path: Path, label: str) -> list[SolutionLine]:
    """The meaningful lines of the bodies of every function of a module (docstrings left out)."""
    source = path.read_text()
    rows_of: dict[int, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = (
            node.body[1:] if node.body and isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant) else node.body
        )
        for statement in body:
            for row in range(statement.lineno, (statement.end_lineno or statement.lineno) + 1):
                rows_of.setdefault(row, node.name)
    found = []
    for first, last, text in logical_lines(source):
        if first in rows_of and is_meaningful(text):
            found.append(SolutionLine(f"{label}, function {rows_of[first]}", _as_written(source, first, last), without_whitespace(text)))
    return found


def _flat_notebook_text(path: Path) -> str:
    return without_whitespace("\n".join(notebook_documents(path, "").values())) if path.is_file() else ""


def _teaching_assignment(key: str, answers_by_assignment: dict[str, set[str]], sources_by_assignment: dict[str, str]) -> str | None:
    """The assignment a reference line belongs to: the first whose solution cells hold it, else
    the first whose source notebook shows it at all (a given stub), else none."""
    for assignment, keys in answers_by_assignment.items():
        if key in keys:
            return assignment
    return next((assignment for assignment, text in sources_by_assignment.items() if key in text), None)


def course_solution_lines(course: Course) -> list[SolutionLine]:
    """Every line of a graded answer: the source notebooks' solution cells and mbrl_reference's
    functions, each with the assignment that teaches it."""
    notebook_lines = []
    for path in sorted(course.source.glob("*/*.ipynb")):
        notebook_lines += notebook_solution_lines(path, path.relative_to(course.root).as_posix())
    answers_by_assignment: dict[str, set[str]] = {}
    for line in notebook_lines:
        answers_by_assignment.setdefault(line.assignment, set()).add(line.key)
    sources_by_assignment = {path.parent.name: _flat_notebook_text(path) for path in sorted(course.source.glob("*/*.ipynb"))}
    reference_lines = []
    for path in sorted((course.root / "mbrl_reference").glob("*.py")):
        for line in module_solution_lines(path, path.relative_to(course.root).as_posix()):
            assignment = _teaching_assignment(line.key, answers_by_assignment, sources_by_assignment)
            reference_lines.append(SolutionLine(line.origin, line.text, line.key, assignment))
    return notebook_lines + reference_lines


def graded_answer_lines(course: Course) -> list[SolutionLine]:
    """The solution lines that no student may see before the assignment is due: all of them but
    those the assignment's own release shows on purpose (a hint in the exercise's text, a given
    constructor). Shown there, a line is not an answer, wherever else it appears."""
    releases = {}
    for line in (lines := course_solution_lines(course)):
        if line.assignment is not None and line.assignment not in releases:
            releases[line.assignment] = "".join(_flat_notebook_text(path) for path in sorted((course.release / line.assignment).glob("*.ipynb")))
    return [line for line in lines if line.assignment is None or line.key not in releases[line.assignment]]


def notebook_documents(path: Path, label: str) -> dict[str, str]:
    """Cell label -> all the text of the cell, outputs included (a traceback shows code too)."""
    documents = {}
    for index, cell in enumerate(json.loads(path.read_text()).get("cells", [])):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        name = f"{label}, cell {index}" + (f" {grade_id!r}" if grade_id else "")
        outputs = json.dumps(cell.get("outputs", []))
        documents[name] = _cell_source(cell) + "\n" + outputs
    return documents


def bundle_documents(sources: dict[str, Path]) -> dict[str, str]:
    """The text of every bundled notebook cell and .py file, by name."""
    documents = {}
    for name, path in sources.items():
        if path.suffix == ".ipynb":
            documents.update(notebook_documents(path, name))
        elif path.suffix == ".py":
            documents[name] = path.read_text()
    return documents


def find_leaks(solution_lines: list[SolutionLine], documents: dict[str, str]) -> list[Leak]:
    """Each solution line found, whitespace aside, in a document; one Leak per (line, document)."""
    flat = {name: without_whitespace(text) for name, text in documents.items()}
    return [Leak(line, name) for line in solution_lines for name, text in flat.items() if line.key in text]


def format_leaks(leaks: list[Leak]) -> str:
    """The leaks grouped by where the answer lives and where it was found, each line once."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for leak in leaks:
        lines = grouped.setdefault((leak.line.origin, leak.where), [])
        if leak.line.text not in lines:
            lines.append(leak.line.text)
    return "\n".join(f"  {origin}\n    in {where}:\n" + "\n".join(f"      {text}" for text in lines) for (origin, where), lines in grouped.items())
