"""Checks of the toy course's notebook (tests/autograder_fixtures/toy_course.py), in its order.

The toy course gives them to the grader as `check_modules=(("toy", "tests.autograder_fixtures.toy_checks"),)`;
the grading process imports this module by that name (the repository's root is on its PYTHONPATH).
As in `autograder/checker/checks/deterministic_cem.py`, each check repeats its test cell's visible test,
with the cell's hint, and then, unless only the visible parts run (`python -m autograder check`),
a hidden part that the notebook does not show.
"""

from __future__ import annotations

import numpy as np

from autograder.checker.core import CheckFailed, CheckRegistry, Value

NOTEBOOK = "toy"
checks = CheckRegistry(NOTEBOOK)
# The toy's functions answer at once, so a check may take a few seconds only (not the course's
# 30 s floor): the endless-loop scenarios then cost the test suite this much per check.
BUDGET = 3.0

SQUARE_HINT = "square(3) should be 9: multiply x by itself"
SQUARE_HIDDEN_HINT = "square must work elementwise on arrays"
CUBE_HINT = "cube(2) should be 8"
CUBE_HIDDEN_HINT = "cube must keep the sign of negative numbers"
QUIET_HINT = "square and cube must both work"


def _number(runner, context, function: str, x) -> float:
    """function(x) in the student's runner, as one number (the check fails on anything else)."""
    value = runner.call(function=function, args=[Value(x)], timeout=context.remaining()).array()
    if value.shape != ():
        raise CheckFailed(f"{function}({x!r}) should return one number, got an array of shape {value.shape}")
    return float(value)


@checks.add("test_square", reference_seconds=0.01)
def square(runner, context):
    """square() multiplies a number by itself."""
    if _number(runner, context, "square", 3) != 9:
        raise CheckFailed(SQUARE_HINT)
    if context.hidden:
        got = runner.call(function="square", args=[Value(np.arange(4))], timeout=context.remaining())
        if got.shape != (4,) or not np.allclose(got.array(), [0, 1, 4, 9]):
            raise CheckFailed(SQUARE_HIDDEN_HINT)
    return "square: OK"


@checks.add("test_cube", reference_seconds=0.01)
def cube(runner, context):
    """cube() raises a number to the third power."""
    if _number(runner, context, "cube", 2) != 8:
        raise CheckFailed(CUBE_HINT)
    if context.hidden:
        x = -2 - context.seed("cube") % 5  # a negative number drawn for this student
        if _number(runner, context, "cube", x) != x**3:
            raise CheckFailed(CUBE_HIDDEN_HINT)
    return "cube: OK"


@checks.add("test_quiet", reference_seconds=0.01)
def quiet(runner, context):
    """square and cube together (the notebook's warning on stderr costs nothing)."""
    if _number(runner, context, "square", 2) + _number(runner, context, "cube", 1) != 5:
        raise CheckFailed(QUIET_HINT)
    return "square and cube: OK"


for _check in checks.checks.values():
    _check.budget = BUDGET
