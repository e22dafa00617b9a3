"""nbgrader's configuration for this course, as one function of the course's root folder.

`autograder/nbgrader_glue/nbgrader_config.py` (read by plain `nbgrader ...` commands run from the course root)
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

import functools
import os
import sys

from traitlets.config import Config

from autograder.protocol.limits import Limits

COURSE_ID = "mbrl"

SOURCE_DIRECTORY = "solutions"
RELEASE_DIRECTORY = "notebooks"
GRADING_DIRECTORY = "grading"
GRADEBOOK_NAME = "gradebook.db"
SECRET_NAME = "checker-secret"  # the course's grading secret (see autograder.nbgrader_glue.autograde.course_secret)


# The course's templates of the feedback page and formgrader's grading page (feedback/, formgrade/),
# in front of nbgrader's and nbconvert's: sanitised outputs, a CSP, no MathJax.
FEEDBACK_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "feedback_template")
# stderr output that must not zero a grade cell (nbgrader gives zero to a test cell that writes to
# stderr): Python and gymnasium warnings, and tqdm progress bars.
IGNORED_STDERR_PATTERN = r"Warning|WARN|warnings\.warn|it/s\]|s/it\]|\d+%\|"


def put_environment_tools_on_path() -> None:
    """nbgrader runs `alembic` (installed beside this Python) when it creates a gradebook; make it
    findable when this Python was started by its full path without activating its environment."""
    bin_dir = os.path.dirname(sys.executable)
    paths = os.environ.get("PATH", "").split(os.pathsep)
    if bin_dir not in paths:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in paths if p])


@functools.cache
def gradebook_schema_version() -> str:
    """The newest revision of nbgrader's gradebook schema (the head of its alembic migrations), read
    in this process."""
    import nbgrader
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    settings = AlembicConfig()
    settings.set_main_option("script_location", os.path.join(os.path.dirname(nbgrader.__file__), "alembic"))
    return ScriptDirectory.from_config(settings).get_current_head()


def schema_version_in_process() -> None:
    """nbgrader asks a new `alembic heads` process for the schema revision each time it creates a
    gradebook: that process imports nbgrader again, about 5 s of CPU for a constant. Read it here
    instead (call before anything that may create a gradebook)."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = gradebook_schema_version


def quiet_gradebook_warnings() -> None:
    """nbgrader's gradebook code makes SQLAlchemy warn about its own session use; nothing to act on."""
    import warnings

    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)


def wrap_validator_lines() -> None:
    """`nbgrader validate` (and JupyterLab's Validate button) cut every line of an error at
    Validator.width (90) characters with "...": the checks' hints, one long line each, lost their
    second half. Wrap long lines at that width instead, under the same indent."""
    import textwrap

    from nbconvert.filters import strip_ansi
    from nbgrader.validator import Validator

    def _indent(self, val: str) -> str:
        width = max(20, self.width - 3)
        lines = []
        for line in strip_ansi(val).split("\n"):
            body = line.lstrip()
            lead = self.indent + line[: len(line) - len(body)]  # a wrapped line's rest goes under it, indented
            lines += textwrap.wrap(body, width, initial_indent=lead, subsequent_indent=lead + "    ") or [lead.rstrip()]
        return "\n".join(lines)

    Validator._indent = _indent


def missing_assignments(source: str, db_url: str) -> list[str]:
    """The assignments of the source folder (its sub-folders that hold a notebook) that the
    gradebook at `db_url` does not know, notebooks and all."""
    import glob

    from nbgrader.api import Gradebook, MissingEntry

    missing = []
    with Gradebook(db_url, COURSE_ID) as gb:
        for folder in sorted(glob.glob(os.path.join(source, "*", ""))):
            assignment, notebooks = (
                os.path.basename(folder.rstrip(os.sep)),
                {os.path.basename(p)[: -len(".ipynb")] for p in glob.glob(os.path.join(folder, "*.ipynb"))},
            )
            if not notebooks:
                continue
            try:
                recorded = {nb.name for nb in gb.find_assignment(assignment).notebooks}
            except MissingEntry:
                recorded = set()
            if recorded != notebooks:
                missing.append(assignment)
    return missing


def record_assignments_before_autograde(
    *, root: str, source_directory: str, release_directory: str, grading_directory: str, db_url: str, **hook_arguments
) -> None:
    """nbgrader's pre-convert hook for autograde: plain `nbgrader autograde` in a fresh clone would
    stop with "No assignment ... exists in the database" until `release` had run; this records the
    missing assignments first, as `grade` does.

    The recording runs in a process of its own: nbgrader's API, which it uses, changes the logging
    and the database session of the process it runs in, and that process is autograde's."""
    import json
    import subprocess

    os.makedirs(os.path.join(root, grading_directory), exist_ok=True)
    if not missing_assignments(os.path.join(root, source_directory), db_url):
        return
    arguments = json.dumps(
        {
            "root": root,
            "source_directory": source_directory,
            "release_directory": release_directory,
            "grading_directory": grading_directory,
            "gradebook_url": db_url,
        }
    )
    code = f"import json; from autograder.nbgrader_glue.course import Course, ensure_gradebook; ensure_gradebook(Course(**json.loads({arguments!r})))"
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"could not record the assignments in the gradebook; run `python -m autograder release` first:\n{done.stderr[-2000:]}")


def course_config(
    root: str,
    *,
    db_url: str | None = None,
    source_directory: str = SOURCE_DIRECTORY,
    release_directory: str = RELEASE_DIRECTORY,
    grading_directory: str = GRADING_DIRECTORY,
    limits: Limits = Limits(),
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
    import nbgrader
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        OverwriteKernelspec,
        SaveAutoGrades,
    )

    from autograder.nbgrader_glue.autograde import CheckedExecute, ClearOutputExceptOwnRuns, RestoreCells, ShowRubrics
    from autograder.nbgrader_glue.feedback import DropGraderOnlyCells, FeedbackExporter, HideHiddenTests, OfflineFeedback

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
    c.Autograde.sanitize_preprocessors = [ClearOutputExceptOwnRuns, RestoreCells, OverwriteKernelspec, CheckCellMetadata]
    # Step 2 (execute and save grades): nbgrader's list, with CheckedExecute in place of Execute:
    # the student's cells run in the sandboxed runner and every graded cell's outcome is the
    # checker's verdict, which SaveAutoGrades then records (autograder.checker.notebook).
    c.Autograde.autograde_preprocessors = [
        CheckedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
        ShowRubrics,
    ]
    c.RestoreCells.add_missing_cells = True
    # Formgrader shows each written answer with its model answer and rubric below it, read from the
    # source notebooks; not for a student's own check, which must not see them.
    c.ShowRubrics.source_directory = os.path.join(root, source_directory) if hidden_checks else ""
    for name, value in limits.to_dict().items():  # CheckedExecute has one trait per limit, of the same name
        setattr(c.CheckedExecute, name, value)
    c.CheckedExecute.secret_file = secret_file or os.path.join(root, grading_directory, SECRET_NAME)
    c.CheckedExecute.check_modules = dict(check_modules or {})
    c.CheckedExecute.hidden = hidden_checks
    # The course cells not run while grading are those its source notebooks tag, never a submission.
    c.CheckedExecute.source_directory = c.ClearOutputExceptOwnRuns.source_directory = os.path.join(root, source_directory)
    # Plain `nbgrader autograde` in a fresh clone: record the assignments first, as `grade` does.
    c.Autograde.pre_convert_hook = functools.partial(
        record_assignments_before_autograde,
        root=root,
        source_directory=source_directory,
        release_directory=release_directory,
        grading_directory=grading_directory,
        db_url=c.CourseDirectory.db_url,
    )
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = IGNORED_STDERR_PATTERN

    # Feedback: nbgrader's HTML, without the graders' rubric cells, with the hidden tests' source (and
    # the traceback lines that would quote it) replaced by a one-line description; the failing
    # check's message stays.
    # Hints wrap and images fit (OfflineFeedback), and the page loads nothing from the network.
    c.GenerateFeedback.preprocessors = [DropGraderOnlyCells, GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor, OfflineFeedback]
    c.GenerateFeedback.exporter_class = FeedbackExporter

    # Every page rendered from a submission (the feedback pages, formgrader's grading page: both
    # nbconvert's HTMLExporter, configured here) is inert: see autograder/nbgrader_glue/sanitise.py.
    # The page is FEEDBACK_TEMPLATE's feedback/course.html.j2 or formgrade/course.html.j2 (nbgrader
    # sets the template's name, `feedback` or `formgrade`; the course its file), which extend nbgrader's
    # index.html.j2 and pass each output through `clean_html`; markdown goes through `markdown2html`,
    # which also writes formulas as MathML, so no page loads MathJax (the mathjax.html.j2 files stand
    # in front of nbconvert's, which loads it from a CDN).
    c.HTMLExporter.extra_template_basedirs = [
        FEEDBACK_TEMPLATE,
        os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates"),
    ]
    c.HTMLExporter.template_file = "course.html.j2"
    c.HTMLExporter.sanitize_html = True  # nbconvert's own switch too: no JavaScript or widget output
    c.HTMLExporter.filters = {
        "clean_html": "autograder.nbgrader_glue.sanitise.clean",
        "markdown2html": "autograder.nbgrader_glue.sanitise.SanitisedMarkdown",
        "check_description": "autograder.nbgrader_glue.feedback.check_description",
    }
    c.HTMLExporter.preprocessors = ["autograder.nbgrader_glue.sanitise.InertOutputs"]
    # Formgrader: no configuration panel (nbgrader's debug view, which logged "Formgrader config is not
    # serializable" at every visit: the course's config holds functions), and no exchange (see
    # autograder/nbgrader_glue/formgrader_server.py: no banner, no "[C] Unwritable directory").
    c.FormgradeExtension.debug = False
    c.ExchangeFactory.list = "autograder.nbgrader_glue.formgrader_server.NoExchangeList"
    c.ExchangeFactory.release_assignment = "autograder.nbgrader_glue.formgrader_server.NoExchangeReleaseAssignment"
    c.ExchangeFactory.collect = "autograder.nbgrader_glue.formgrader_server.NoExchangeCollect"

    # `nbgrader export`: the course's grading/grades.csv, one row per student, the same file as
    # `grade` and `python -m autograder export` write (autograder.term.export), not a CSV in the current folder.
    c.ExportApp.plugin_class = "autograder.term.export.GradesExport"
    c.GradesExport.grading_directory = os.path.join(root, grading_directory)
    return c
