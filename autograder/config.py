"""nbgrader's configuration for this course, as one function of the course's root folder.

`autograder/nbgrader_config.py` (read by plain `nbgrader ...` commands run from the course root)
and `python -m autograder` both take their configuration from `course_config`, so the two always
grade the same way. Nothing here imports torch: nbgrader reads this module at every start.

Layout, relative to the course's root folder:
    solutions/<assignment>/<assignment>.ipynb   nbgrader's "source": solutions and hidden tests
    notebooks/<assignment>/<assignment>.ipynb   nbgrader's "release": what students get
    grading/submitted/<student>/<assignment>/   what students handed in
    grading/autograded/, grading/feedback/      nbgrader's autograded copies and HTML feedback
    grading/gradebook.db                        the SQLite gradebook
"""
from __future__ import annotations

import os

from traitlets.config import Config

COURSE_ID = "mbrl"

SOURCE_DIRECTORY = "solutions"
RELEASE_DIRECTORY = "notebooks"
GRADING_DIRECTORY = "grading"
GRADEBOOK_NAME = "gradebook.db"
SECRET_NAME = "checker-secret"  # the course's grading secret (see autograder.preprocessors.course_secret)

# One grading cell may run a real 1000-step episode with a CEM planner: about 30 s on one CPU
# thread, so 300 s leaves a wide margin for a slower but correct solution on a busy machine.
CELL_TIMEOUT = 300
# All the cells of one notebook together; a notebook that uses it up gets zero for the cells
# it could not run. A complete reference notebook needs well under a tenth of it.
NOTEBOOK_TIMEOUT = 1200
# Address space a student's runner may map (RLIMIT_AS, a hard limit set outside the sandbox): a
# cell that allocates more gets a MemoryError in that cell instead of taking down the machine.
MEMORY_LIMIT_MB = 4096
# Restarts of a student's runner per notebook after a crash (os._exit, a segfault, a kill) or a
# cell that ran out of time, before the remaining cells are given up.
MAX_KERNEL_RESTARTS = 3

# stderr output that must not zero a grade cell (nbgrader gives zero to a test cell that writes to
# stderr): Python and gymnasium warnings, and tqdm progress bars.
IGNORED_STDERR_PATTERN = r"Warning|WARN|warnings\.warn|it/s\]|s/it\]|\d+%\|"


def course_config(
    root: str,
    *,
    db_url: str | None = None,
    source_directory: str = SOURCE_DIRECTORY,
    release_directory: str = RELEASE_DIRECTORY,
    grading_directory: str = GRADING_DIRECTORY,
    cell_timeout: int = CELL_TIMEOUT,
    notebook_timeout: int = NOTEBOOK_TIMEOUT,
    memory_limit_mb: int = MEMORY_LIMIT_MB,
    max_kernel_restarts: int = MAX_KERNEL_RESTARTS,
    sandbox: bool = True,
    secret_file: str | None = None,
    check_modules: dict[str, str] | None = None,
    hidden_checks: bool = True,
) -> Config:
    """The nbgrader configuration of a course directory rooted at `root`.

    Every folder but the source and release ones lies under `grading_directory`; the gradebook is
    `<root>/<grading_directory>/gradebook.db` unless `db_url` says otherwise.
    """
    # Imported here so that reading the configuration stays cheap for nbgrader commands that do
    # not execute notebooks.
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        ClearOutput,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        OverwriteKernelspec,
        SaveAutoGrades,
    )

    from autograder.preprocessors import CheckedExecute, HideHiddenTests, RestoreCells

    root = os.path.abspath(root)
    c = Config()
    c.CourseDirectory.root = root
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.source_directory = source_directory
    c.CourseDirectory.release_directory = release_directory
    c.CourseDirectory.submitted_directory = os.path.join(grading_directory, "submitted")
    c.CourseDirectory.autograded_directory = os.path.join(grading_directory, "autograded")
    c.CourseDirectory.feedback_directory = os.path.join(grading_directory, "feedback")
    c.CourseDirectory.db_url = db_url or "sqlite:///" + os.path.join(root, grading_directory, GRADEBOOK_NAME)
    # Only the notebooks travel between source, release and submissions; data come from the
    # installed mbrl_helpers package, so a student's stray files never reach the grader.
    c.CourseDirectory.include = ["*.ipynb"]

    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

    # Autograding, step 1 (sanitize): nbgrader's list, with RestoreCells (nbgrader's
    # OverwriteCells that also repairs edited metadata, puts back deleted test cells and says so in
    # the notebook) in place of OverwriteCells and ahead of the checks that would otherwise abort
    # the whole notebook on tampered metadata.
    c.Autograde.sanitize_preprocessors = [ClearOutput, RestoreCells, OverwriteKernelspec, CheckCellMetadata]
    # Step 2 (execute and save grades): nbgrader's list, with CheckedExecute in place of Execute:
    # the student's cells run in the sandboxed runner and every graded cell's outcome is the
    # checker's verdict, which SaveAutoGrades then records (autograder.notebook_run).
    c.Autograde.autograde_preprocessors = [
        CheckedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    c.RestoreCells.add_missing_cells = True
    c.CheckedExecute.cell_timeout = cell_timeout
    c.CheckedExecute.notebook_timeout = notebook_timeout
    c.CheckedExecute.memory_limit_mb = memory_limit_mb
    c.CheckedExecute.max_restarts = max_kernel_restarts
    c.CheckedExecute.sandbox = sandbox
    c.CheckedExecute.secret_file = secret_file or os.path.join(root, grading_directory, SECRET_NAME)
    c.CheckedExecute.check_modules = dict(check_modules or {})
    c.CheckedExecute.hidden = hidden_checks
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = IGNORED_STDERR_PATTERN

    # Feedback: nbgrader's HTML, with the hidden tests' source (and the traceback lines that would
    # quote it) replaced by a one-line description; the failing check's message stays.
    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
    return c
