import glob
import sqlite3


def full_marks(path):
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    db.execute("UPDATE grade SET auto_score = 1000, manual_score = 1000")
    db.commit()


def full_marks_everywhere():
    paths = must_find([os.path.join(COURSE, "grading", "gradebook.db")] + glob.glob("/tmp/autograder-grade-*/workspaces/*/gradebook.db"))
    for path in paths:
        full_marks(path)


def write(path, text, mode="w", inside="grading"):
    """Write `path` if the course's folder `inside` exists here (creating what is below it)."""
    if not os.path.isdir(os.path.join(COURSE, inside)):
        raise FileNotFoundError("no such course folder here")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as handle:
        handle.write(text)


attempt("give everyone full marks in the gradebook", full_marks_everywhere)
attempt("delete the gradebook", lambda: os.remove(os.path.join(COURSE, "grading", "gradebook.db")))
attempt("append to grades.csv", lambda: write(os.path.join(COURSE, "grading", "grades.csv"), "01-cheat,01_deterministic_cem,18,18,18,graded\n", "a"))
attempt("replace the course secret", lambda: write(os.path.join(COURSE, "grading", "checker-secret"), "0" * 64 + "\n"))
attempt(
    "plant feedback for the next student",
    lambda: write(os.path.join(COURSE, "grading", "feedback", "zz-victim-after", "01_deterministic_cem", "01_deterministic_cem.html"), "<h1>0 points</h1>"),
)
attempt(
    "plant an autograded notebook",
    lambda: write(os.path.join(COURSE, "grading", "autograded", "zz-victim-after", "01_deterministic_cem", "01_deterministic_cem.ipynb"), "{}"),
)
attempt(
    "replace the next student's submission",
    lambda: write(os.path.join(COURSE, "submissions", "zz-victim-after", "01_deterministic_cem.ipynb"), "{}", inside="submissions"),
)
attempt("write a grading log", lambda: write(os.path.join(COURSE, "grading", "logs", "zz-victim-after.log"), "graded: 18/18"))
