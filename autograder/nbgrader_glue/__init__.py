"""Where nbgrader meets this course; thin, one module per nbgrader stage.

- `course`: the course directory as nbgrader sees it; releasing (generate_assignment) and recording
  the assignments in the gradebook.
- `config`: nbgrader's configuration, one function of the course root (`nbgrader_config.py` loads it).
- `autograde`: the autograde stage: cells restored from the gradebook, the checker's verdicts in
  place of nbgrader's kernel execution, the rubric beside each written answer for formgrader.
- `feedback`: the generate_feedback stage: hidden tests and rubrics out, formulas offline.
- `feedback_template/`, `jupyter_config/`: the feedback page's template, JupyterLab's settings.
"""
