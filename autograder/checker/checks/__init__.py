"""The checks of each notebook: what decides its autograded points (see `autograder.checker.core`).

    from autograder.checker.checks import registry
    checks = registry("01_deterministic_cem")     # a CheckRegistry, or None for an unknown notebook

One module per notebook, read top to bottom like the notebook. They run in the checker process,
may import `mbrl_reference` and the fixtures, and never import or run student code.
"""

from __future__ import annotations

import importlib

from autograder.checker.core import CheckRegistry

MODULES = {
    "01_deterministic_cem": "autograder.checker.checks.deterministic_cem",
    "02_stochastic": "autograder.checker.checks.stochastic",
    "03_ensemble": "autograder.checker.checks.ensemble",
    "04_closing_the_loop": "autograder.checker.checks.closing_the_loop",
}


def registry(notebook: str, modules: dict[str, str] | None = None) -> CheckRegistry | None:
    """The checks of `notebook`; `modules` adds or replaces notebook -> module entries (tests' toy course)."""
    module = {**MODULES, **(modules or {})}.get(notebook)
    if module is None:
        return None
    return importlib.import_module(module).checks
