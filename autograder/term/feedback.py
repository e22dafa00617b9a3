"""Feedback that follows the grades: after grading by hand (formgrader, or the gradebook), write the
students' HTML feedback again so that it shows the manual scores and comments.

    python -m autograder feedback                  # every student with a score or comment given by hand
    python -m autograder feedback --student ada    # these students, whatever they have
    python -m autograder feedback --all            # everyone who was graded

`grade` writes feedback as it grades, before anyone has graded the written answers; nbgrader's own
`generate_feedback` skips a page that already exists unless told `--force`. This runs nbgrader's
generate_feedback, forced, on exactly the pages that are out of date.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.nbgrader_glue import config
from autograder.nbgrader_glue.course import Course


@dataclass
class FeedbackPage:
    student: str
    assignment: str
    written: bool
    error: str = ""


def graded_by_hand(course: Course) -> set[tuple[str, str]]:
    """(student, assignment) pairs with a manual score, extra credit or manual comment."""
    from nbgrader.api import Gradebook

    pairs = set()
    with Gradebook(course.db_url, config.COURSE_ID) as gb:
        for student in gb.students:
            for submission in student.submissions:
                for notebook in submission.notebooks:
                    if any(g.manual_score is not None or g.extra_credit for g in notebook.grades) or any(c.manual_comment for c in notebook.comments):
                        pairs.add((student.id, submission.assignment.name))
    return pairs


def feedback(*, course: Course | None = None, students: list[str] | None = None, everyone: bool = False) -> list[FeedbackPage]:
    """Write again the feedback of the students graded by hand (or of `students`, or of `everyone`
    with an autograded notebook); returns what was written, and what failed and why."""
    course = course or Course()
    graded = sorted((folder.parent.name, folder.name) for folder in course.autograded.glob("*/*") if folder.is_dir() and any(folder.glob("*.ipynb")))
    if students:
        wanted = set(students)
        pairs = [pair for pair in graded if pair[0] in wanted]
    elif everyone:
        pairs = graded
    else:
        by_hand = graded_by_hand(course)
        pairs = [pair for pair in graded if pair in by_hand]
    api = course.api()
    pages = []
    for student, assignment in pairs:
        result = api.generate_feedback(assignment, student, force=True)
        error = "" if result["success"] else (result.get("error") or result.get("log") or "nbgrader generate_feedback failed").strip().splitlines()[-1]
        pages.append(FeedbackPage(student, assignment, bool(result["success"]), error))
    return pages
