"""The notebooks' visible checks and `python -m autograder check` agree, cell by cell.

A student sees two verdicts for each graded cell: the test cell's own assertions, run in their
kernel (self-help), and the checker's visible part (`python -m autograder check`, that is
`run_and_check(..., hidden=False)`), which grading then extends with hidden inputs. For every
example submission of `autograder.examples` (the reference, the blank release, every mistake of
`catalogue.MISTAKES` and every alternative of the notebook) both must pass or fail the same cells:

- in-kernel: the notebook's setup, solution and read-only cells and its graded test cells run in
  order in one namespace in this process, as a kernel runs them (an error in a cell does not stop
  the next); a graded cell passes when it raises nothing;
- checker: `run_and_check` on the same notebook, visible parts only, student code in the sandbox.

A disagreement is a bug in the checker or in the notebook's test cell: the failure names the
cell, the example and both verdicts. Besides, in the kernel, correct code passes every visible
check, the stubs fail every one, and every mistake fails at least one (what the notebook's text
asks for, a visible check holds a student to) and none that the catalogue says it keeps; and a
hint the notebook's cell gives for a mistake, the checker's visible part gives too. Two probes
(PROBE_MISTAKES, PROBE_ALTERNATIVES) add what the catalogue does not exercise yet.

Speed (the whole module is meant to stay near 90 s on a 2-core laptop):
- Both sides run only the cells the checks depend on: the free cells (loading the data, training,
  the demo episode and plots; no nbgrader metadata) are left out. They define none of the names the
  solution and read-only cells define (asserted below), so leaving them out changes no verdict, and
  they are most of a notebook's run time (training and a 1000-step episode: about 15 s of the 20 s
  run_and_check takes on a whole notebook).
- Starting the sandboxed runner (a Python with torch and IPython) is then most of what is left, so
  the examples of one notebook share one runner: `run_and_check` gets it instead of a new one, its
  namespace emptied with `%reset -f` before each example (modules stay imported, as a re-import
  would find them). A runner that fails is restarted by the checker as usual, with only the
  current example's cells. The reference also runs in a runner of its own, as `python -m
  autograder check` runs it, and must get the same verdicts as in the shared one.
- Each notebook's examples are run once per module (a fixture) and shared by its tests.
Measured on a shared 2-core machine: 57 s for the module at a load average of 3 (107 s at 6),
about 35 s of CPU in all (the runners 18 s, this process 10 s, three fresh runners' start-up
6 s), so about 40 s on a quiet one; an example costs 1 to 3 s, the reference's own runner ~5 s.

Notebooks 02 and 03 are skipped while their check modules (autograder/checker/checks/stochastic.py,
ensemble.py) do not exist.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.util
import io
import time
from dataclasses import dataclass

import nbformat
import pytest
import torch

from autograder.checker.checks import MODULES
from autograder.examples import Example, build_examples
from autograder.examples.catalogue import ALTERNATIVES, MISTAKES, Alternative, Mistake, S

NOTEBOOKS = ("01_deterministic_cem", "02_stochastic", "03_ensemble", "04_closing_the_loop")
RESET = "%reset -f"

# Probes: submissions the catalogue does not hold (yet), each for a visible check or an accepted
# answer that no catalogue example exercises. Built and compared like the catalogue's.
PROBE_MISTAKES = (
    Mistake(
        "probe-concat-action-first",
        "01_deterministic_cem",
        "the network is fed [actions, states] instead of [states, actions] (test-det-predict-delta's pass-through network)",
        S("return self.net(torch.cat([states, actions], dim=-1))", "return self.net(torch.cat([actions, states], dim=-1))"),
        ("test-det-predict-delta", "test-det-loss", "test-cem-return"),
        "Feed the network the state first",
    ),
)
PROBE_ALTERNATIVES = (
    Alternative(
        "probe-nll-lecture-notes",
        "02_stochastic",
        "the loss as the lecture notes write it, GaussianNLLLoss(full=False) on exp(2 log_sigma), which autograder/checker/checks/stochastic.py accepts",
        {},
        substitutions=(
            S(
                "return ((target - mu) ** 2 / (2 * sigma**2) + torch.log(sigma)).mean()",
                "log_sigma = torch.chunk(self.net(torch.cat([states, actions], dim=-1)), 2, dim=-1)[1]\n"
                "        return nn.GaussianNLLLoss(full=False)(mu, target, torch.exp(2 * log_sigma))",
            ),
        ),
    ),
)
ALL_MISTAKES = MISTAKES + PROBE_MISTAKES
ALL_ALTERNATIVES = ALTERNATIVES + PROBE_ALTERNATIVES


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell) -> str:
    return meta(cell).get("grade_id") or cell.get("id")


def is_graded_code(cell) -> bool:
    return cell.cell_type == "code" and bool(meta(cell).get("grade"))


def is_kept(cell) -> bool:
    """A cell the checks depend on: setup and read-only cells, solution cells, graded cells."""
    m = meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade") or m.get("solution") or m.get("locked"))


def trimmed(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `nb` without its free code cells (data, training, demo); markdown cells stay."""
    copy = nbformat.reads(nbformat.writes(nb), as_version=4)
    copy.cells = [cell for cell in copy.cells if cell.cell_type != "code" or is_kept(cell)]
    return copy


def missing_checks_module(notebook: str) -> str | None:
    """Why `notebook` cannot be compared yet (its checks module does not exist), or None."""
    module = MODULES[notebook]
    if importlib.util.find_spec(module) is None:
        return f"{module.replace('.', '/')}.py does not exist yet: no checker verdicts to compare for {notebook}"
    return None


def example_names(notebook: str) -> list[str]:
    prefix = notebook.split("_", 1)[0]
    return (
        ["reference", "blank"]
        + [f"{prefix}-{m.name}" for m in ALL_MISTAKES if m.notebook == notebook]
        + [f"{prefix}-alt-{a.name}" for a in ALL_ALTERNATIVES if a.notebook == notebook]
    )


CASES = [(notebook, name) for notebook in NOTEBOOKS for name in example_names(notebook)]


# --------------------------------------------------------------------------------------------------
# the two sides


@dataclass
class Verdicts:
    in_kernel: dict[str, tuple[bool, str]]
    checker: dict[str, tuple[bool, str]]
    example: Example
    seconds: float


def in_kernel_verdicts(nb: nbformat.NotebookNode, notebook: str) -> dict[str, tuple[bool, str]]:
    """Run the kept cells in order in one fresh namespace; each graded cell's (passed, message)."""
    namespace: dict = {"__name__": "__main__"}
    verdicts = {}
    # A kernel starts with autograd on; whatever the cells do to torch's global state stays here.
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        for index, cell in enumerate(nb.cells):
            if not is_kept(cell):
                continue
            try:
                code = compile(cell.source, f"{notebook}:{cell.get('id', index)}", "exec")
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(code, namespace)
            except Exception as error:  # noqa: BLE001 - a kernel reports any error and runs the next cell
                if is_graded_code(cell):
                    verdicts[grade_id(cell)] = (False, f"{type(error).__name__}: {error}")
                continue
            if is_graded_code(cell):
                verdicts[grade_id(cell)] = (True, "")
    return verdicts


class SharedRunner:
    """Stands in for `autograder.checker.notebook.Runner`: hands out one runner, its namespace reset."""

    def __init__(self):
        from autograder.checker.core import Runner

        self.runner = Runner()

    def __call__(self, limits, *, log=None):
        assert limits.sandbox, "the comparison runs student code in the sandbox"
        runner = self.runner
        runner.limits = limits
        if runner.process is not None and runner.process.alive():
            reset = runner.run_cell(RESET, timeout=120)
            assert reset.error is None, f"{RESET} failed in the runner: {reset.error}"
        # A restart replays this example's cells only: in a new runner, or in a new copy of the
        # snapshot an earlier example left (its namespace reset first).
        runner.cells = [RESET] if runner.forking else []
        runner.output_bytes = 0
        return contextlib.nullcontext(runner)

    def close(self):
        self.runner.close()


def checker_verdicts(nb: nbformat.NotebookNode, notebook: str) -> dict[str, tuple[bool, str]]:
    from autograder.checker.notebook import run_and_check
    from autograder.protocol.limits import Limits

    graded = run_and_check(nbformat.reads(nbformat.writes(nb), as_version=4), notebook=notebook, student="s", secret="s", hidden=False, limits=Limits())
    return {cell_id: (verdict.passed, verdict.message) for cell_id, verdict in graded.verdicts.items()}


@pytest.fixture(scope="module")
def sandbox():
    from autograder.sandbox.bubblewrap import sandbox_status

    ok, reason = sandbox_status()
    if not ok:
        pytest.skip(f"the sandbox cannot start here ({reason}); run_and_check(..., limits=Limits()) needs it")


@pytest.fixture(scope="module")
def examples() -> dict[str, dict[str, Example]]:
    """notebook -> student -> the example submission (of that notebook only)."""
    by_notebook: dict[str, dict[str, Example]] = {notebook: {} for notebook in NOTEBOOKS}
    # The cheats are graded in tests/test_autograder_catalogue.py: a visible check need not catch them.
    for example in build_examples(mistakes=ALL_MISTAKES, alternatives=ALL_ALTERNATIVES, cheats=(), victim=False):
        for (assignment, notebook), nb in example.notebooks.items():
            by_notebook[notebook][example.student] = dataclasses.replace(example, notebooks={(assignment, notebook): nb})
    return by_notebook


def notebook_of(example: Example) -> nbformat.NotebookNode:
    (nb,) = example.notebooks.values()
    return nb


@pytest.fixture(scope="module")
def verdicts(sandbox, examples):
    """notebook -> (student -> Verdicts, the reference's checker verdicts in a runner of its own);
    computed on first use, once per module."""
    cache: dict[str, tuple[dict[str, Verdicts], dict[str, tuple[bool, str]]]] = {}

    def of(notebook: str):
        if notebook in cache:
            return cache[notebook]
        reason = missing_checks_module(notebook)
        if reason:
            pytest.skip(reason)
        threads = torch.get_num_threads()
        results: dict[str, Verdicts] = {}
        try:
            own = checker_verdicts(trimmed(notebook_of(examples[notebook]["reference"])), notebook)
            shared = SharedRunner()
            try:
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr("autograder.checker.notebook.Runner", shared)
                    for student in example_names(notebook):
                        example = examples[notebook][student]
                        nb = trimmed(notebook_of(example))
                        started = time.perf_counter()
                        results[student] = Verdicts(in_kernel_verdicts(nb, notebook), checker_verdicts(nb, notebook), example, 0.0)
                        results[student].seconds = time.perf_counter() - started
            finally:
                shared.close()
        finally:
            torch.set_num_threads(threads)  # the notebooks' setup cell sets it in this process
        print(f"\n{notebook}: " + ", ".join(f"{s} {v.seconds:.1f} s" for s, v in results.items()))
        cache[notebook] = (results, own)
        return cache[notebook]

    return of


# --------------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_graded_cell_has_a_check_and_every_check_a_graded_cell(notebook, examples):
    reason = missing_checks_module(notebook)
    if reason:
        pytest.skip(reason)
    from autograder.checker.checks import registry

    cells = [grade_id(cell) for cell in notebook_of(examples[notebook]["reference"]).cells if is_graded_code(cell)]
    assert list(registry(notebook).checks) == cells, f"{notebook}: the checker's checks, in order, must be the notebook's graded code cells"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_cells_left_out_define_nothing_the_checks_call(notebook, examples):
    # Leaving the free cells out is sound only if they redefine nothing that the solution and
    # read-only cells define (the classes and functions the checks call, the helpers of the test cells).
    def assigned(target) -> set[str]:
        """The names an assignment binds or changes: `x`, `a, b`, and `x` itself for `x[key]` or
        `x.attribute` (not the names used inside the key)."""
        if isinstance(target, ast.Name):
            return {target.id}
        if isinstance(target, (ast.Tuple, ast.List)):
            return set().union(*(assigned(element) for element in target.elts))
        if isinstance(target, ast.Starred):
            return assigned(target.value)
        if isinstance(target, (ast.Subscript, ast.Attribute)):
            return assigned(target.value)
        return set()

    def top_level_names(source: str) -> set[str]:
        names = set()
        for node in ast.parse("\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!")))).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    names |= assigned(target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        return names

    nb = notebook_of(examples[notebook]["reference"])
    definitions = set().union(*(top_level_names(c.source) for c in nb.cells if is_kept(c) and not is_graded_code(c)))
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_kept(cell):
            clash = top_level_names(cell.source) & definitions
            assert not clash, f"{notebook}:{cell.get('id')}: a free cell redefines {sorted(clash)}; the comparison would have to run it"


@pytest.mark.parametrize("notebook, student", CASES, ids=[f"{n[:2]}:{s}" for n, s in CASES])
def test_the_checker_gives_the_visible_checks_verdicts(notebook, student, verdicts):
    results, _ = verdicts(notebook)
    result = results[student]
    assert set(result.checker) == set(result.in_kernel), f"{notebook}/{student}: graded cells differ: {sorted(set(result.checker) ^ set(result.in_kernel))}"
    disagreements = [
        f"{cell}: in the kernel {'passes' if result.in_kernel[cell][0] else 'fails'}"
        + (f" ({result.in_kernel[cell][1][:300]})" if not result.in_kernel[cell][0] else "")
        + f"; `autograder check` {'passes' if result.checker[cell][0] else 'fails'}"
        + (f" ({result.checker[cell][1][:300]})" if not result.checker[cell][0] else "")
        for cell in result.in_kernel
        if result.in_kernel[cell][0] != result.checker[cell][0]
    ]
    assert not disagreements, f"{notebook}/{student}: the visible checks and the checker disagree:\n" + "\n".join(disagreements)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_reference_gets_the_same_verdicts_in_a_runner_of_its_own(notebook, verdicts):
    results, own = verdicts(notebook)
    shared = results["reference"].checker
    assert {c: v[0] for c, v in own.items()} == {c: v[0] for c, v in shared.items()}
    assert all(passed for passed, _ in own.values()), f"{notebook}: the reference fails {[c for c, v in own.items() if not v[0]]}"


@pytest.mark.parametrize("notebook, student", CASES, ids=[f"{n[:2]}:{s}" for n, s in CASES])
def test_the_visible_checks_pass_correct_code_and_catch_every_mistake(notebook, student, verdicts):
    # In the kernel: the reference and every alternative pass every graded cell, the blank release
    # fails every one, and a mistake fails at least one (what the notebook's text asks for, a visible
    # check holds a student to) and only cells that the catalogue says it loses under grading.
    results, _ = verdicts(notebook)
    result = results[student]
    failed = [cell for cell, (passed, _) in result.in_kernel.items() if not passed]
    kind = result.example.kind
    if kind in ("reference", "alternative"):
        assert not failed, f"{notebook}/{student}: correct code fails visible checks: " + "; ".join(f"{c}: {result.in_kernel[c][1][:300]}" for c in failed)
    elif kind == "blank":
        assert len(failed) == len(result.in_kernel), f"{notebook}/blank: the stubs pass {sorted(set(result.in_kernel) - set(failed))}"
    else:
        mistake = result.example.source
        assert failed, f"{student} ({mistake.what}): no visible check catches it; only grading's hidden parts take its points"
        unexpected = sorted(set(failed) - set(mistake.checks))
        assert not unexpected, f"{student}: visible checks fail {unexpected}, which autograder/examples/catalogue.py says keep their points"


MISTAKE_CASES = [(m.notebook, f"{m.notebook[:2]}-{m.name}") for m in ALL_MISTAKES]


@pytest.mark.parametrize("notebook, student", MISTAKE_CASES, ids=[s for _, s in MISTAKE_CASES])
def test_a_hint_the_notebook_gives_for_a_mistake_the_checker_gives_too(notebook, student, verdicts):
    results, _ = verdicts(notebook)
    result = results[student]
    mistake = result.example.source
    cell = mistake.checks[0]  # the cell written for this mistake
    in_kernel_passed, in_kernel_message = result.in_kernel[cell]
    if in_kernel_passed or mistake.hint not in in_kernel_message:
        pytest.skip(f"{cell} does not show the catalogue's hint {mistake.hint!r} in the kernel (a hidden part's hint)")
    checker_passed, checker_message = result.checker[cell]
    assert not checker_passed and mistake.hint in checker_message, (
        f"{student}: {cell} says {mistake.hint!r} in the kernel; the checker's visible part {'passes' if checker_passed else 'says ' + repr(checker_message)}"
    )


def test_every_hint_the_notebooks_and_the_checks_name_is_written_in_the_hints_module():
    # A hint is written once, in mbrl_helpers/hints.py, and named by the test cells and the checks:
    # a name that is not there fails the cell with an AttributeError instead of the hint.
    import re
    from pathlib import Path

    from mbrl_helpers import hints

    root = Path(__file__).resolve().parent.parent
    sources = {str(path.relative_to(root)): path.read_text() for path in (root / "autograder" / "checker" / "checks").glob("*.py")}
    for notebook in NOTEBOOKS:
        nb = nbformat.read(next((root / "solutions" / notebook).glob("*.ipynb")), as_version=4)
        sources[notebook] = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    named = {(where, name) for where, source in sources.items() for name in re.findall(r"\bhints\.([A-Za-z_]\w*)", source)}
    assert len(named) > 40, "the test cells and the checks should name the hints they share"
    missing = sorted((where, name) for where, name in named if not hasattr(hints, name))
    assert not missing, f"named but not written in mbrl_helpers/hints.py: {missing}"
