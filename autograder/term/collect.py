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

from autograder.nbgrader_glue.course import Course, identify_notebook

SKIPPED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
MAX_UNZIPPED_BYTES = 200 * 2**20


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


def safe_student_id(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._")
    return cleaned or "student"


def read_notebook(path: Path) -> tuple[dict | None, str | None]:
    """(the notebook as JSON, None) if the file is a valid notebook, else (JSON or None, reason)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, f"the file could not be read ({error})"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"the file is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); was it saved completely?"
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

    def student_id(name: str, loose: bool = False) -> str:
        if pattern is not None:
            match = pattern.search(name)
            if match and match.groupdict().get("student"):
                return safe_student_id(match.group("student"))
        if loose:
            name = name.split("_", 1)[0]
        return safe_student_id(name)

    def add(student: str, path: Path) -> None:
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
        timestamp = path.parent / "timestamp.txt"
        if timestamp.is_file():
            entry.timestamps[key[0]] = timestamp.read_text().strip()

    for item in sorted(submissions.iterdir()):
        if item.name.startswith(".") or item.name in SKIPPED_PARTS:
            continue
        if item.is_dir():
            student = student_id(item.name)
            students.setdefault(student, StudentSubmission(student))
            for path in _notebooks_under(item):
                add(student, path)
        elif item.suffix.lower() == ".zip":
            student = student_id(item.stem)
            students.setdefault(student, StudentSubmission(student))
            target = workdir / "unzipped" / student
            try:
                _extract(item, target)
            except (zipfile.BadZipFile, ValueError, OSError) as error:
                students[student].problems.append(f"{item.name}: could not be extracted ({error})")
                continue
            for path in _notebooks_under(target):
                add(student, path)
        elif item.suffix.lower() == ".ipynb":
            add(student_id(item.stem, loose=True), item)
    return [students[s] for s in sorted(students)]


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
        if total > MAX_UNZIPPED_BYTES:
            raise ValueError(f"it would unpack to {total / 2**20:.0f} MiB")
        root = target.resolve()
        for info in zf.infolist():
            destination = (target / info.filename).resolve()
            if root != destination and root not in destination.parents:
                raise ValueError(f"it holds a path outside the archive: {info.filename}")
        zf.extractall(target)
