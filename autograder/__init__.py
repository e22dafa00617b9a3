"""The course's autograder: nbgrader's configuration for this course and `python -m autograder`.

    python -m autograder release              regenerate notebooks/ from solutions/
    python -m autograder check NOTEBOOK       a student's local check: visible tests, points, hints
    python -m autograder grade SUBMISSIONS    autograde a folder of submissions: feedback, grades.csv
    python -m autograder demo                 release, grade the example submissions, print the table

Importing this package is cheap (nbgrader reads its configuration at every start); the grading
kernel imports `autograder.fixtures` from it.
"""
