"""RestoreCells (the autograde stage's first step) on a real gradebook: a submission whose course
cells were deleted, moved or duplicated is graded as the course laid it out, and says what was
repaired; only the student's own cells stay where the student put them."""

from __future__ import annotations

import copy

import pytest
from autograder_fixtures.toy_course import ASSIGNMENT, make_course, reference
from nbformat.v4 import new_code_cell

from autograder.nbgrader_glue.autograde import NOTE_MARKER, RestoreCells
from autograder.nbgrader_glue.config import quiet_gradebook_warnings

quiet_gradebook_warnings()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("restore-course"))


def grade_ids(nb) -> list[str]:
    return [cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells if "nbgrader" in cell.metadata]


def restored(course, nb):
    resources = {"nbgrader": {"notebook": ASSIGNMENT, "assignment": ASSIGNMENT, "db_url": course.db_url}}
    out, _ = RestoreCells().preprocess(copy.deepcopy(nb), resources)
    notes = [cell.source for cell in out.cells if NOTE_MARKER in cell.metadata]
    return out, notes


def test_deleted_read_only_and_test_cells_come_back_in_their_place(course):
    nb = reference(course)
    wanted = grade_ids(nb)
    nb.cells = [cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") not in ("setup", "test_square", "intro")]
    out, notes = restored(course, nb)
    assert grade_ids(out) == wanted
    for name in ("setup", "test_square", "intro"):
        assert any(f"`{name}`" in note and "missing" in note for note in notes), (name, notes)
    setup = next(cell for cell in out.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    assert "import numpy as np" in setup.source and setup.metadata.get("editable") is False


def test_moved_course_cells_go_back_and_the_students_own_cell_stays_with_its_neighbour(course):
    nb = reference(course)
    wanted = grade_ids(nb)
    own = new_code_cell("print('my own try')")
    index = next(i for i, cell in enumerate(nb.cells) if cell.metadata.get("nbgrader", {}).get("grade_id") == "square")
    nb.cells.insert(index + 1, own)
    test_cube = next(cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_cube")
    nb.cells.remove(test_cube)
    nb.cells.insert(0, test_cube)  # moved to the top, before the code it tests
    out, notes = restored(course, nb)
    assert grade_ids(out) == wanted
    sources = [cell.source for cell in out.cells]
    assert (
        sources.index("print('my own try')")
        == sources.index(next(c.source for c in out.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "square")) + 1
    )
    assert any("`test_cube`" in note and "moved" in note for note in notes), notes


def test_a_second_copy_of_a_test_cell_is_dropped(course):
    nb = reference(course)
    wanted = grade_ids(nb)
    copy_of = copy.deepcopy(next(cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_quiet"))
    copy_of.id = "a-second-copy"
    nb.cells.append(copy_of)
    out, notes = restored(course, nb)
    assert grade_ids(out) == wanted and len(out.cells) == len(nb.cells) - 1 + len(notes)
    assert any("`test_quiet`" in note and "more than once" in note for note in notes), notes
