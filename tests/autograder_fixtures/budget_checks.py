"""Checks of a tiny notebook for tests/test_grading_budgets.py: `slow` may loop, `after_slow` uses it."""

from __future__ import annotations

from autograder.checker.core import CheckFailed, CheckRegistry, Value

NOTEBOOK = "budgets"
checks = CheckRegistry(NOTEBOOK)
BUDGET = 2.0  # CPU seconds: a looping function costs the test this much, once


def _call(runner, context, function: str) -> float:
    return float(runner.call(function=function, args=[Value(2)], timeout=context.remaining()).array())


@checks.add("test_slow", reference_seconds=0.01)
def slow(runner, context):
    """slow(2) is 4."""
    if _call(runner, context, "slow") != 4:
        raise CheckFailed("slow(2) should be 4")
    return "slow: OK"


@checks.add("test_after_slow", reference_seconds=0.01, after=("test_slow",))
def after_slow(runner, context):
    """slow(2) + other(2) is 6 (it calls slow again)."""
    if _call(runner, context, "slow") + _call(runner, context, "other") != 6:
        raise CheckFailed("slow(2) + other(2) should be 6")
    return "both: OK"


@checks.add("test_other", reference_seconds=0.01)
def other(runner, context):
    """other(2) is 2."""
    if _call(runner, context, "other") != 2:
        raise CheckFailed("other(2) should be 2")
    return "other: OK"


@checks.add("test_slow_again", reference_seconds=0.01)
def slow_again(runner, context):
    """slow(2) is 4 (asked again, without `after`)."""
    return slow(runner, context)


for _check in checks.checks.values():
    _check.budget = BUDGET
