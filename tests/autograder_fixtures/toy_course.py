"""A small nbgrader course for the autograder's tests, and submissions named by scenario.

The source notebook has what the course's notebooks have, in a few instant cells: setup code, two
solution cells each followed by a locked test cell with a visible check, a third test cell, and a
written answer graded by hand. As in the course, the test cells are never run for points: the
checker decides them with the checks of tests/autograder_fixtures/toy_checks.py (the visible test
again, then a hidden part), given to the grader as the course's CHECK_MODULES.

Every scenario is built from the release notebook (nbgrader's own output) filled in with the
reference answers (autograder.examples.build), then changed the way a student might.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.examples.build import Substitution, read, reference_submission
from autograder.nbgrader_glue.course import ROOT, Course, release
from autograder.protocol.limits import Limits

ASSIGNMENT = "toy"
# auto-graded points per test cell, and the written answer's points
POINTS = {"test_square": 2, "test_cube": 3, "test_quiet": 1}
WRITTEN_POINTS = 1
AUTO_MAX = sum(POINTS.values())
# The toy notebook's checks, as a course names them (see autograder.checker.checks.registry). Grading
# processes have the repository's root on their PYTHONPATH (autograder.nbgrader_glue.course.with_package_on_path);
# so has this one, for the tests that grade in it.
CHECK_MODULES = ((ASSIGNMENT, "tests.autograder_fixtures.toy_checks"),)
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook():
    cells = [
        new_markdown_cell("# A toy assignment\nWrite `square` and `cube`.", metadata=_meta("intro", locked=True)),
        new_code_cell("import os\nimport signal\nimport time\nimport warnings\n\nimport numpy as np", metadata=_meta("setup", locked=True)),
        new_code_cell(
            "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            metadata=_meta("square", solution=True),
        ),
        new_code_cell(
            "# square() multiplies a number by itself\nassert square(3) == 9, 'square(3) should be 9: multiply x by itself'",
            metadata=_meta("test_square", grade=True, locked=True, points=POINTS["test_square"]),
        ),
        new_code_cell(
            "def cube(x):\n    ### BEGIN SOLUTION\n    return x * x * x\n    ### END SOLUTION",
            metadata=_meta("cube", solution=True),
        ),
        new_code_cell(
            "# cube() raises a number to the third power\nassert cube(2) == 8, 'cube(2) should be 8'",
            metadata=_meta("test_cube", grade=True, locked=True, points=POINTS["test_cube"]),
        ),
        new_code_cell(
            "# square and cube together\nassert square(2) + cube(1) == 5, 'square and cube must both work'",
            metadata=_meta("test_quiet", grade=True, locked=True, points=POINTS["test_quiet"]),
        ),
        new_markdown_cell(
            "Why is `cube(-2)` negative?",
            metadata=_meta("explain_prompt", locked=True),
        ),
        new_markdown_cell(
            "### BEGIN SOLUTION\nAn odd power of a negative number is negative.\n### END SOLUTION",
            metadata=_meta("explain", grade=True, solution=True, points=WRITTEN_POINTS),
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def toy_course(root: Path, **limits) -> Course:
    """The toy course's directory at `root`, with its checks, as the grader sees it."""
    return Course(root=root, limits=Limits(**limits), check_modules=CHECK_MODULES)


def make_course(root: Path, **limits) -> Course:
    """Write the source notebook under `root` and release it with nbgrader (gradebook included)."""
    course = toy_course(root, **limits)
    path = course.source / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(), str(path))
    release(course=course)
    return course


def reference(course: Course):
    return reference_submission(read(course.source_notebook(ASSIGNMENT, ASSIGNMENT)), read(course.release_notebook(ASSIGNMENT, ASSIGNMENT)))


def _cell(nb, grade_id):
    return next(cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _cube_body(nb, body: str):
    return Substitution("    return x * x * x", body).apply(nb, "toy")


# A student who tries cube out in its own cell: whatever cube does happens while that cell runs.
TRIED_OUT = "\n\n\nprint(cube(2))"


def scenarios(course: Course) -> dict[str, str]:
    """Scenario name -> the submitted file's text. Expected outcomes are in EXPECTED.

    Code that never ends or ends its process is tried in two places: in a function that only a
    check calls (the check fails, the runner is replaced for the next check) and in a cell's top
    level (the cell fails; the cells after it still run, in a fresh runner)."""
    out = {}
    out["reference"] = reference(course)
    out["blank"] = read(course.release_notebook(ASSIGNMENT, ASSIGNMENT))
    out["hidden-check-fails"] = _cube_body(reference(course), "    return abs(x) ** 3")  # passes the visible check only
    # While a check calls it, cube prints, warns, and writes a forged answer to file descriptor 1
    # (the runner's standard output: the pipe the checker reads, before the runner moved its
    # messages off it): none of it reaches the checker.
    out["chatty"] = _cube_body(
        reference(course),
        "    print('cube of', x)\n    warnings.warn('cube is slow', UserWarning)\n"
        '    os.write(1, b\'{"op": "result", "value": {"kind": "number", "value": 0}}\\n\')\n    return x * x * x',
    )
    out["infinite-loop"] = _cube_body(reference(course), "    while True:\n        pass")
    out["uninterruptible-loop"] = _cube_body(reference(course), "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n    while True:\n        pass" + TRIED_OUT)
    out["memory-hog"] = _cube_body(reference(course), "    hog = [np.empty(2**27) for _ in range(1000)]  # 1 GiB each, 1000 GiB in all\n    return x * x * x")
    out["kernel-crash"] = _cube_body(reference(course), "    os._exit(1)")
    out["kernel-killed"] = _cube_body(reference(course), "    os.kill(os.getpid(), 9)" + TRIED_OUT)
    nb = reference(course)
    nb.cells = [cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") != "test_square"]
    out["deleted-test-cell"] = nb
    nb = _cube_body(reference(course), "    return x * x")
    _cell(nb, "test_cube").source = "# cube() raises a number to the third power\nassert True"
    out["edited-test-cell"] = nb
    nb = reference(course)
    _cell(nb, "test_square").metadata["nbgrader"]["points"] = 50
    _cell(nb, "cube").metadata["nbgrader"]["locked"] = True
    _cell(nb, "test_cube").metadata["nbgrader"].update(locked=False, solution=True)
    _cell(nb, "test_cube").source = "assert True"
    _cell(nb, "intro").metadata["nbgrader"] = {"grade": True, "solution": "yes"}  # no grade_id, nonsense values
    nb.metadata["kernelspec"] = {"name": "no-such-kernel", "display_name": "?", "language": "python"}
    out["changed-metadata"] = nb
    text = {name: nbformat.writes(nb) for name, nb in out.items()}
    text["invalid-json"] = text["reference"][: len(text["reference"]) // 2]
    return text


# scenario -> (auto-graded points on each test cell, a substring of the feedback)
EXPECTED = {
    "reference": ({"test_square": 2, "test_cube": 3, "test_quiet": 1}, "cube: OK"),
    "chatty": ({"test_square": 2, "test_cube": 3, "test_quiet": 1}, "cube: OK"),
    "blank": ({"test_square": 0, "test_cube": 0, "test_quiet": 0}, "NotImplementedError"),
    "hidden-check-fails": ({"test_square": 2, "test_cube": 0, "test_quiet": 1}, "cube must keep the sign of negative numbers"),
    "infinite-loop": ({"test_square": 2, "test_cube": 0, "test_quiet": 0}, "This check could not finish: it did not finish within"),
    "uninterruptible-loop": ({"test_square": 2, "test_cube": 0, "test_quiet": 0}, "CellTimeoutError: This cell could not finish: it did not finish within"),
    "memory-hog": ({"test_square": 2, "test_cube": 0, "test_quiet": 0}, "MemoryError"),
    "kernel-crash": ({"test_square": 2, "test_cube": 0, "test_quiet": 0}, "This check could not finish: the process running your code died"),
    "kernel-killed": ({"test_square": 2, "test_cube": 0, "test_quiet": 0}, "DeadKernelError: This cell could not finish: the process running your code died"),
    "deleted-test-cell": ({"test_square": 2, "test_cube": 3, "test_quiet": 1}, "was missing from the submitted notebook"),
    "edited-test-cell": ({"test_square": 2, "test_cube": 0, "test_quiet": 1}, "had been edited"),
    "changed-metadata": ({"test_square": 2, "test_cube": 3, "test_quiet": 1}, "grading metadata had been changed"),
    "invalid-json": ({"test_square": 0, "test_cube": 0, "test_quiet": 0}, "not valid JSON"),
}


def write_submissions(course: Course, folder: Path, names=None) -> Path:
    """One folder per student (the scenario's name) holding toy.ipynb."""
    for name, text in scenarios(course).items():
        if names is None or name in names:
            path = folder / name / f"{ASSIGNMENT}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return folder


def load_json(path: Path):
    return json.loads(Path(path).read_text())
