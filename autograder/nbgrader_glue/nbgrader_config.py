"""nbgrader's configuration for this course (loaded by the root nbgrader_config.py).

Plain `nbgrader` commands run from the course's root folder read it, and `python -m autograder`
builds the same configuration (autograder/nbgrader_glue/config.py), so both grade alike:

    nbgrader generate_assignment 01_deterministic_cem --force
    nbgrader autograde 01_deterministic_cem
    nbgrader generate_feedback 01_deterministic_cem
    nbgrader export

Layout, relative to the course's root folder:
    solutions/<assignment>/<assignment>.ipynb   nbgrader's "source": solutions and hidden tests
    notebooks/<assignment>/<assignment>.ipynb   nbgrader's "release": what students get
    grading/                                    submissions, autograded copies, feedback, gradebook
"""

import os
import sys

COURSE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if COURSE_ROOT not in sys.path:  # the course's own packages, whichever folder nbgrader runs from
    sys.path.insert(0, COURSE_ROOT)

from autograder.nbgrader_glue.config import (  # noqa: E402
    GRADING_DIRECTORY,
    course_config,
    put_environment_tools_on_path,
    quiet_gradebook_warnings,
    schema_version_in_process,
    wrap_validator_lines,
)

# `.venv/bin/nbgrader` works without activating the environment (nbgrader runs `alembic`).
put_environment_tools_on_path()
schema_version_in_process()  # a new gradebook without an `alembic heads` process (5 s of CPU)
quiet_gradebook_warnings()
wrap_validator_lines()  # `nbgrader validate` wraps the checks' long hints instead of cutting them

c = get_config()  # noqa: F821

# The SQLite gradebook lives in grading/, which a fresh clone lacks (git ignores it): formgrader and
# the first `nbgrader` command would fail with "unable to open database file" until it existed.
os.makedirs(os.path.join(COURSE_ROOT, GRADING_DIRECTORY), exist_ok=True)

c.merge(course_config(COURSE_ROOT))
