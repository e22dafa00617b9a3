"""Find every student's notebooks in a folder of submissions, whatever its layout.

Three layouts are recognised, and may be mixed:

    SUBMISSIONS/<student>/<anything>/*.ipynb        one folder per student (nbgrader's own
                                                    submitted/<student>/<assignment>/ included,
                                                    with its timestamp.txt)
    SUBMISSIONS/<student>.zip                       one archive per student, as an LMS exports
    SUBMISSIONS/<student>_<anything>.ipynb          loose files named after the student

The student id is the folder, archive or file name (for loose files, the part before the first
"_"), or the `student` group of `student_pattern` when one is given. Which assignment a notebook
belongs to is read from its graded cells (see `autograder.nbgrader_glue.course.identify_notebook`), so renamed
files are recognised. A file that is not a readable notebook is kept, with the reason, so that
grading can give it zero and say why.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.utils import parse_utc

from autograder.nbgrader_glue.course import Course, identify_notebook, safe_student_id

SKIPPED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
# What one student may hand in, whatever the layout (folder, zip, loose file), checked before any
# file is parsed: a course notebook with its outputs (plots, an animation) is well under 20 MiB and
# 100 cells; a notebook of 200,000 cells took 43 s and 430 MB to read.
MAX_STUDENT_BYTES = 200 * 2**20
MAX_NOTEBOOK_BYTES = 40 * 2**20
MAX_CELLS = 2000


@dataclass
class SubmittedNotebook:
    path: Path
    assignment: str
    notebook: str
    error: str | None = None
    """why the file cannot be graded (not JSON, not a notebook); None when it can"""


@dataclass
class StudentSubmission:
    student: str
    notebooks: dict[tuple[str, str], SubmittedNotebook] = field(default_factory=dict)
    timestamps: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def assignments(self) -> list[str]:
        return sorted({assignment for assignment, _ in self.notebooks})


def read_notebook(path: Path) -> tuple[dict | None, str | None]:
    """(the notebook as JSON, None) if the file is a valid notebook, else (JSON or None, reason).
    Its size is checked before it is read, its number of cells before it is validated."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return None, f"the file could not be read ({error})"
    if size > MAX_NOTEBOOK_BYTES:
        return (
            None,
            f"the file is {size / 2**20:.1f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB a notebook may be; clear its outputs (Edit > Clear Outputs of All Cells) and hand it in again",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, f"the file could not be read ({error})"
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        where = f" ({error.msg} at line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else " (nested too deeply)"
        return None, f"the file is not valid JSON{where}; was it saved completely?"
    cells = parsed.get("cells") if isinstance(parsed, dict) else None
    if isinstance(cells, list) and len(cells) > MAX_CELLS:
        return None, f"the notebook has {len(cells)} cells, over the {MAX_CELLS} a notebook may have; hand in the course's notebook with your answers"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # nbformat raises several kinds
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return parsed, f"the file is JSON but not a valid Jupyter notebook ({first_line})"
    return parsed, None


def collect_submissions(submissions: Path, *, course: Course, student_pattern: str | None = None, workdir: Path | None = None) -> list[StudentSubmission]:
    """Every student's notebooks under `submissions`, sorted by student id.

    Archives are extracted under `workdir` (a new temporary folder when None), which must outlive
    the returned paths.
    """
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder of submissions")
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="autograder-collect-"))
    pattern = re.compile(student_pattern) if student_pattern else None
    known = course.grade_ids()
    students: dict[str, StudentSubmission] = {}

    def submitter(name: str, loose: bool = False) -> str:
        """The submitter's name as the file or folder gives it."""
        if pattern is not None:
            match = pattern.search(name)
            if match and match.groupdict().get("student"):
                return match.group("student")
        return name.split("_", 1)[0] if loose else name

    def student_id(name: str, loose: bool = False) -> str:
        return safe_student_id(submitter(name, loose))

    def add(student: str, path: Path, record: Path | None = None) -> None:
        """`record`: nbgrader's own timestamp.txt of this submission, if the layout has one."""
        entry = students.setdefault(student, StudentSubmission(student))
        parsed, error = read_notebook(path)
        key = identify_notebook(path, parsed, known)
        if key is None:
            entry.problems.append(f"{path.name}: not one of this course's notebooks; ignored")
            return
        candidate = SubmittedNotebook(path, key[0], key[1], error)
        if key in entry.notebooks:
            kept = _preferred(entry.notebooks[key], candidate)
            dropped = candidate if kept is entry.notebooks[key] else entry.notebooks[key]
            entry.problems.append(f"{dropped.path.name}: a second copy of {key[1]}; graded {kept.path.name} instead")
            entry.notebooks[key] = kept
        else:
            entry.notebooks[key] = candidate
        if record is not None and record.is_file():
            text = record.read_text(errors="replace").strip()[:100]
            try:
                parse_utc(text)
            except Exception:  # nbgrader's parser raises several kinds
                entry.problems.append(f"{record.parent.name}/timestamp.txt: {text!r} is not a date; graded as handed in on time")
            else:
                entry.timestamps[key[0]] = text

    owners: dict[str, str] = {}  # student id -> the submitter name it came from

    def claim(student: str, name: str, item: Path) -> bool:
        """Two different submitter names never become one student: the second is refused, by name."""
        owner = owners.setdefault(student, name)
        if owner != name:
            students[student].problems.append(
                f"{item.name}: refused: its name {name!r} gives the student id {student!r}, which {owner!r} already has; rename one of them"
            )
            return False
        return True

    for item in sorted(submissions.iterdir()):
        if item.name.startswith(".") or item.name in SKIPPED_PARTS:
            continue
        if item.is_dir():
            student = student_id(item.name)
            students.setdefault(student, StudentSubmission(student))
            if not claim(student, submitter(item.name), item):
                continue
            paths = _notebooks_under(item)
            if _too_big(paths, students[student], item):
                continue
            for path in paths:
                # nbgrader's own record of the hand-in time, submitted/<student>/<assignment>/timestamp.txt,
                # is trusted only where nbgrader writes it, never from inside a student's archive
                record = path.parent / "timestamp.txt" if path.parent.parent == item else None
                add(student, path, record)
        elif item.suffix.lower() == ".zip":
            student = student_id(item.stem)
            students.setdefault(student, StudentSubmission(student))
            if not claim(student, submitter(item.stem), item):
                continue
            target = workdir / "unzipped" / student
            try:
                _extract(item, target)
            except (zipfile.BadZipFile, ValueError, OSError) as error:
                students[student].problems.append(f"{item.name}: could not be extracted ({error})")
                continue
            for path in _notebooks_under(target):
                add(student, path)
        elif item.suffix.lower() == ".ipynb":
            student = student_id(item.stem, loose=True)
            students.setdefault(student, StudentSubmission(student))
            if claim(student, submitter(item.stem, loose=True), item) and not _too_big([item], students[student], item):
                add(student, item)
    return [students[s] for s in sorted(students)]


def _too_big(paths: list[Path], entry: StudentSubmission, item: Path) -> bool:
    """The same total cap for a folder or loose file as for an archive, checked before parsing."""
    total = sum(path.stat().st_size for path in paths)
    if total > MAX_STUDENT_BYTES:
        entry.problems.append(f"{item.name}: refused: {total / 2**20:.0f} MiB of notebooks, over the {MAX_STUDENT_BYTES // 2**20} MiB a student may hand in")
        return True
    return False


def _notebooks_under(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*.ipynb")
        if path.is_file() and not any(part in SKIPPED_PARTS or part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _preferred(a: SubmittedNotebook, b: SubmittedNotebook) -> SubmittedNotebook:
    """Of two files for the same notebook: a readable one, then the exact file name, then the newer."""

    def rank(sub: SubmittedNotebook):
        return (sub.error is None, sub.path.name == f"{sub.notebook}.ipynb", sub.path.stat().st_mtime)

    return a if rank(a) >= rank(b) else b


def _extract(archive: Path, target: Path) -> None:
    """Extract a zip archive, refusing paths that leave `target` and archives that inflate too much."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf:
        total = sum(info.file_size for info in zf.infolist())
        if total > MAX_STUDENT_BYTES:
            raise ValueError(f"it would unpack to {total / 2**20:.0f} MiB")
        root = target.resolve()
        for info in zf.infolist():
            destination = (target / info.filename).resolve()
            if root != destination and root not in destination.parents:
                raise ValueError(f"it holds a path outside the archive: {info.filename}")
        zf.extractall(target)
