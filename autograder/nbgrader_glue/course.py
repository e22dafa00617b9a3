"""A course directory as nbgrader sees it, and the two things done to it as a whole: releasing the
student notebooks, and telling which assignment a submitted notebook belongs to."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.nbgrader_glue import config
from autograder.protocol.limits import Limits

ROOT = Path(__file__).resolve().parents[2]  # this repository: the course's own directory


@dataclass(frozen=True)
class Course:
    """An nbgrader course directory: source and release folders, a grading folder, a gradebook."""

    root: Path = ROOT
    source_directory: str = config.SOURCE_DIRECTORY
    release_directory: str = config.RELEASE_DIRECTORY
    grading_directory: str = config.GRADING_DIRECTORY
    db_path: Path | None = None
    """the SQLite gradebook; <root>/<grading_directory>/gradebook.db when None"""
    gradebook_url: str | None = None
    """a server gradebook instead (nbgrader's db_url), e.g. postgresql://grader@dbhost/course"""
    limits: Limits = field(default_factory=Limits)
    """what each notebook's grading may use (times, memory, scratch, output) and the sandbox"""
    secret_file: Path | None = None
    """the course's grading secret; <root>/<grading_directory>/checker-secret when None"""
    check_modules: tuple[tuple[str, str], ...] = ()
    """extra (notebook, checks module) pairs, for a course beyond the three notebooks (tests)"""
    status_file: Path | None = None
    """where grading writes the cell or check it is at, for the progress display"""
    visible_only: bool = False
    """only the checks' visible parts (a student's `python -m autograder check`)"""

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())

    # -- folders -------------------------------------------------------------------------------
    @property
    def source(self) -> Path:
        return self.root / self.source_directory

    @property
    def release(self) -> Path:
        return self.root / self.release_directory

    @property
    def grading(self) -> Path:
        return self.root / self.grading_directory

    @property
    def submitted(self) -> Path:
        return self.grading / "submitted"

    @property
    def autograded(self) -> Path:
        return self.grading / "autograded"

    @property
    def feedback(self) -> Path:
        return self.grading / "feedback"

    @property
    def gradebook(self) -> Path:
        return Path(self.db_path) if self.db_path is not None else self.grading / config.GRADEBOOK_NAME

    @property
    def secret_path(self) -> Path:
        return Path(self.secret_file) if self.secret_file is not None else self.grading / config.SECRET_NAME

    @property
    def db_url(self) -> str:
        return self.gradebook_url or "sqlite:///" + str(self.gradebook)

    # -- nbgrader ------------------------------------------------------------------------------
    def nbgrader_config(self):
        cfg = config.course_config(
            str(self.root),
            db_url=self.db_url,
            source_directory=self.source_directory,
            release_directory=self.release_directory,
            grading_directory=self.grading_directory,
            limits=self.limits,
            secret_file=str(self.secret_path),
            check_modules=dict(self.check_modules),
            hidden_checks=not self.visible_only,
        )
        if self.status_file is not None:
            cfg.CheckedExecute.status_file = str(self.status_file)
        return cfg

    def api(self, log_level: int = logging.WARNING):
        """nbgrader's own Python API (nbgrader.apps.NbGraderAPI) on this course directory."""
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        config.schema_version_in_process()
        cfg = self.nbgrader_config()
        self.gradebook.parent.mkdir(parents=True, exist_ok=True)
        coursedir = CourseDirectory(config=cfg)
        api = NbGraderAPI(coursedir=coursedir, config=cfg)
        api.log_level = log_level
        return api

    # -- contents ------------------------------------------------------------------------------
    @property
    def assignments(self) -> list[str]:
        """Assignment ids: the folders of the source directory that hold a notebook."""
        if not self.source.is_dir():
            return []
        return sorted(p.name for p in self.source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def notebooks(self, assignment: str) -> list[str]:
        """Notebook ids (file names without .ipynb) of an assignment."""
        return sorted(p.stem for p in (self.source / assignment).glob("*.ipynb"))

    def release_notebook(self, assignment: str, notebook: str) -> Path:
        return self.release / assignment / f"{notebook}.ipynb"

    def source_notebook(self, assignment: str, notebook: str) -> Path:
        return self.source / assignment / f"{notebook}.ipynb"

    def grade_ids(self) -> dict[tuple[str, str], set[str]]:
        """(assignment, notebook) -> the grade_ids of its graded cells, read from the source."""
        ids = {}
        for assignment in self.assignments:
            for notebook in self.notebooks(assignment):
                ids[(assignment, notebook)] = notebook_grade_ids(json.loads(self.source_notebook(assignment, notebook).read_text()))
        return ids


def with_package_on_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with this course's folder on PYTHONPATH, so that `autograder` imports in the worker
    process whatever its working folder."""
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT)] + paths)}
    return env


config.put_environment_tools_on_path()


def safe_student_id(name: str) -> str:
    """A student id for the file system and the gradebook. A name that is not already one keeps a
    short hash of itself, so that names which clean to the same text ("ann lee" and "ann_lee", two
    names in Chinese characters) stay two students."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._")[:64]
    if cleaned == name:
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{cleaned or 'student'}-{digest}"


def notebook_grade_ids(nb: dict) -> set[str]:
    ids = set()
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) and isinstance(cell.get("metadata"), dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            ids.add(meta["grade_id"])
    return ids


def identify_notebook(path: Path, parsed: dict | None, known: dict[tuple[str, str], set[str]]) -> tuple[str, str] | None:
    """Which (assignment, notebook) a submitted file is: by its graded cells, else by its name.

    LMS exports rename files ("smith_1234_01_deterministic_cem-1.ipynb"), so the grade_ids decide
    when the file can be read; the longest notebook id found in the file name decides otherwise.
    """
    if parsed is not None:
        ids = notebook_grade_ids(parsed)
        overlaps = {key: len(ids & wanted) for key, wanted in known.items()}
        best = max(overlaps.values(), default=0)
        if best > 0:
            candidates = [key for key, n in overlaps.items() if n == best]
            if len(candidates) == 1:
                return candidates[0]
            by_name = [key for key in candidates if key[1] in path.stem]
            if by_name:
                return max(by_name, key=lambda key: len(key[1]))
    by_name = [key for key in known if key[1] in path.stem]
    return max(by_name, key=lambda key: len(key[1])) if by_name else None


def release(*, course: Course | None = None, assignments: list[str] | None = None) -> list[Path]:
    """Regenerate the student notebooks (nbgrader generate_assignment) from the source notebooks.

    Returns the release notebooks written. Also records the assignments in the gradebook, which
    autograding needs.
    """
    course = course or Course()
    api = course.api()
    written = []
    for assignment in assignments or course.assignments:
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.get('log', '')}{result.get('error', '')}")
        written += [course.release_notebook(assignment, nb) for nb in course.notebooks(assignment)]
    return written


def released_copy(course: Course, root: Path, *, gradebook_url: str | None = None, secret_file: Path | None = None) -> Course:
    """A course at `root` holding a copy of `course`'s source notebooks (its limits and check modules
    too), released by nbgrader into its own gradebook (SQLite under `root`, or `gradebook_url`):
    where the demo and the benchmarks grade without touching the course itself. `secret_file`: the
    copy's course secret (None: its own, made on first use)."""
    import shutil

    shutil.copytree(course.source, Path(root) / course.source_directory)
    copy = Course(
        root=root,
        source_directory=course.source_directory,
        release_directory=course.release_directory,
        limits=course.limits,
        check_modules=course.check_modules,
        gradebook_url=gradebook_url,
        secret_file=secret_file,
    )
    release(course=copy)
    return copy


def missing_assignments(course: Course) -> list[str]:
    """The source folder's assignments that the gradebook does not know, notebooks and all."""
    course.gradebook.parent.mkdir(parents=True, exist_ok=True)
    return config.missing_assignments(str(course.source), course.db_url)


def ensure_gradebook(course: Course) -> None:
    """Make sure the gradebook knows every assignment of the source folder, without touching the
    release: assignments it lacks are generated into a scratch folder (nbgrader records the
    assignment, its notebooks and their cells in the gradebook as it generates them)."""
    missing = missing_assignments(course)
    if not missing:
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="autograder-release-") as scratch:
        scratch_course = Course(
            root=course.root,
            source_directory=course.source_directory,
            release_directory=os.path.relpath(scratch, course.root),
            grading_directory=course.grading_directory,
            db_path=course.gradebook,
            gradebook_url=course.gradebook_url,
            limits=course.limits,
        )
        release(course=scratch_course, assignments=missing)
