"""nbgrader's configuration for this course (loaded by the root nbgrader_config.py).

Layout, relative to the course's root folder:
    solutions/<assignment>/<assignment>.ipynb   nbgrader's "source": solutions and hidden tests
    notebooks/<assignment>/<assignment>.ipynb   nbgrader's "release": what students get
    grading/                                    submissions, autograded copies, feedback, gradebook
"""
import os

c = get_config()  # noqa: F821

COURSE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

c.CourseDirectory.root = COURSE_ROOT
c.CourseDirectory.course_id = "mbrl"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = os.path.join("grading", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("grading", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("grading", "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE_ROOT, "grading", "gradebook.db")
# Only the notebooks travel between source, release and submissions; data comes from the
# installed mbrl_helpers package, so a student's stray files never reach the grader.
c.CourseDirectory.include = ["*.ipynb"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# A graded return check runs a real 1000-step episode; allow it, and stop endless student loops.
c.ExecutePreprocessor.timeout = 300
c.Execute.timeout = 300
