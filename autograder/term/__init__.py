"""The term as an instructor runs it: `python -m autograder ...` commands over nbgrader.

- `collect`: a folder of submissions (folders, zips, loose files) to students and notebooks.
- `grading`: collect, grade on the engine, merge into the gradebook, report; `engine`: Dask;
  `worker`: one student graded in a private workspace.
- `export`: grades.csv and the LMS files; `feedback`: pages written again after hand-grading.
- `bundle`: what students get; `check`: a student's local check; `demo`: the grader on the examples.
"""
