"""Where nbgrader meets this course; thin, one module per nbgrader stage.

- `course`: the course directory as nbgrader sees it; releasing (generate_assignment) and recording
  the assignments in the gradebook.
- `config`: nbgrader's configuration, one function of the course root (`nbgrader_config.py` loads it).
- `autograde`: the autograde stage: cells restored from the gradebook, the checker's verdicts in
  place of nbgrader's kernel execution, the rubric beside each written answer for formgrader.
- `feedback`: the generate_feedback stage: hidden tests and rubrics out, formulas offline.
- `sanitise`: every page rendered from a submission (feedback, formgrader's grading page) is inert:
  the sanitiser, the render-time filters, the Content-Security-Policies.
- `formgrader_server`: the course's Jupyter server extension: formgrader's CSP, no exchange.
- `feedback_template/`, `jupyter_config/`: the feedback and grading pages' templates, JupyterLab's
  settings (which enable `formgrader_server`).
"""
