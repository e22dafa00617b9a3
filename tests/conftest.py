import matplotlib
import nbformat
import pytest

matplotlib.use("Agg")  # tests never open windows


@pytest.fixture
def toy_source(tmp_path):
    """The toy course's source notebook alone, as a course directory sees it."""
    from autograder_fixtures.toy_course import ASSIGNMENT, source_notebook

    from autograder.nbgrader_glue.course import Course

    course = Course(root=tmp_path / "course")
    path = course.source_notebook(ASSIGNMENT, ASSIGNMENT)
    path.parent.mkdir(parents=True)
    nbformat.write(source_notebook(), str(path))
    return course
