"""The trusted side of grading. It decides every autograded point and never imports or runs student code.

- `core`: the checker's view of a student's runner (requests, callbacks, what came back), checks and verdicts.
- `notebook`: one notebook graded: its cells run in the runner, its graded cells get the checks' verdicts.
- `checks/`: one file per notebook, read top to bottom like the notebook: the inputs the checker
  chooses, expected values from `mbrl_reference`, the comparison, the hint.
- `fixtures/`: fixed weights and states the checks use, made by the reference.
"""
