"""The course's autograder: nbgrader's configuration for this course and `python -m autograder`.

    python -m autograder release              regenerate notebooks/ from solutions/
    python -m autograder check NOTEBOOK       a student's local check: visible tests, points, hints
    python -m autograder grade SUBMISSIONS    autograde a folder of submissions: feedback, grades.csv
    python -m autograder demo                 release, grade the example submissions, print the table

Grading is split in two (see the README's trust model): `autograder.sandbox.runner` runs a student's
code in a sandbox (`autograder.sandbox.bubblewrap`), and `autograder.checker.core` with `autograder.checker.checks`
decides every autograded point without ever running student code. Importing this package is
cheap: nbgrader reads its configuration at every start.
"""
