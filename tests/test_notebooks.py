"""The course's notebooks, end to end, and the checks students run in their own kernel.

- Each solution notebook (nbgrader's source) runs top to bottom with nbclient within the time
  budget, balances the pendulum, and passes all its visible checks by nbgrader's own rules (what
  `nbgrader validate` tells a student). Its test cells hold no hidden tests and it imports nothing
  of the grader: the hidden parts live in the checker (autograder/checker/checks/), which alone decides
  the points (its verdicts: tests/test_autograder_catalogue.py, tests/test_visible_checks_agree.py).
- Each release notebook (what students get) fails every graded test with the stubs in place
  (`nbgrader validate --invert`), holds no solution, hidden test or rubric, imports from its own
  folder, and is exactly what `nbgrader generate_assignment` makes from the source today.
- Self-help: each common mistake fails the visible test cell that names it, with its hint, and
  correct solutions written differently pass every visible test cell (the cells are run
  in-process, on the source notebook's code).

The solution notebooks are executed once per session (module fixture) and shared by the tests.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest
import torch
from nbclient import NotebookClient
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import CheckCellMetadata
from nbgrader.validator import Validator

from autograder.checker.fixtures import ASSIGNMENTS
from autograder.term.bundle import find_leaks, format_leaks, notebook_documents, notebook_solution_lines, solution_rows, without_whitespace

NOTEBOOKS = ASSIGNMENTS + ("04_closing_the_loop",)  # notebook 4 needs no fixture: its checks make their own data

ROOT = Path(__file__).resolve().parent.parent
TIME_BUDGET_S = 300  # a solution notebook must run top to bottom in under 5 minutes of one core (its CPU time)
NBGRADER = [sys.executable, "-m", "nbgrader"]
# nbgrader runs `alembic` (its gradebook migrations) as a command: the virtual environment's bin
# folder must be on PATH even when the tests run as .venv/bin/python without activating it.
NBGRADER_ENV = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def source_path(assignment: str) -> Path:
    return ROOT / "solutions" / assignment / f"{assignment}.ipynb"


def release_path(assignment: str) -> Path:
    return ROOT / "notebooks" / assignment / f"{assignment}.ipynb"


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def cell_by_id(nb, cell_id: str):
    cells = [cell for cell in nb.cells if cell.get("id") == cell_id]
    assert len(cells) == 1, f"expected one cell with id {cell_id!r}, found {len(cells)}"
    return cells[0]


# --------------------------------------------------------------------------------------------------
# The solution notebooks, executed once.


@pytest.fixture(scope="module")
def executed_solution(tmp_path_factory):
    """assignment -> (path of the executed copy, executed notebook, seconds it took)."""
    cache: dict[str, tuple[Path, nbformat.NotebookNode, float]] = {}

    def execute(assignment: str):
        if assignment not in cache:
            # The course's layout, every notebook in a folder of its own side by side: notebook 4
            # loads notebook 3 from ../03_ensemble/ (mbrl_helpers.load_own_code), notebook 3 loads 1 and 2.
            course = tmp_path_factory.mktemp(assignment)
            for name in NOTEBOOKS:
                (course / name).mkdir()
                shutil.copy(source_path(name), course / name / f"{name}.ipynb")
            folder = course / assignment
            path = folder / f"{assignment}.ipynb"
            nb = read(path)
            client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
            with client.setup_kernel():
                kernel = psutil.Process(client.km.provisioner.process.pid)
                before = kernel_cpu_seconds(kernel)
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index)  # raises CellExecutionError, naming the cell, on the first error
                seconds = kernel_cpu_seconds(kernel) - before
            nbformat.write(nb, str(path))
            cache[assignment] = (path, nb, seconds)
        return cache[assignment]

    return execute


def kernel_cpu_seconds(kernel: psutil.Process) -> float:
    """CPU seconds of the kernel and of what it started and waited for. The notebooks run torch on
    one thread, so on a quiet machine this is their wall time; unlike wall time it does not grow
    when other tests run beside them (the suite runs two at once)."""
    times = kernel.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def stdout_of(nb) -> str:
    return "\n".join(
        output.get("text", "") for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", []) if output.get("name") == "stdout"
    )


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_solution_notebook_runs_within_the_time_budget_and_balances_the_pole(assignment, executed_solution):
    _, nb, seconds = executed_solution(assignment)
    print(f"{assignment}: executed with nbclient in {seconds:.1f} s of the kernel's CPU time")
    assert 0 < seconds < TIME_BUDGET_S, f"{assignment} took {seconds:.0f} s of CPU; the budget is {TIME_BUDGET_S} s"
    if assignment == "04_closing_the_loop":
        # each loop prints "iteration i: trained on N transitions; return R: ...": the first agent falls, the last balances
        loops = []
        for iteration, value in re.findall(r"^  iteration (\d+): trained on [\d,]+ transitions; return (\d+(?:\.\d+)?): ", stdout_of(nb), flags=re.M):
            if iteration == "1":
                loops.append([])
            loops[-1].append(float(value))
        assert len(loops) == 2, f"{assignment}: expected the deterministic and the ensemble loop, printed {loops}"
        for returns in loops:
            assert len(returns) == 3 and returns[0] < 950 <= returns[-1], f"{assignment}: the loop's returns were {returns}"
        return
    returns = [float(r) for r in re.findall(r"^return (\d+(?:\.\d+)?): ", stdout_of(nb), flags=re.M)]
    assert returns, f"{assignment}: no episode return printed"
    assert min(returns) >= 950, f"{assignment}: the notebook's own agent reached returns {returns}"


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_solution_notebook_passes_its_visible_checks(assignment, executed_solution):
    # nbgrader's own validation rules, applied to the notebook executed above (its execution step
    # would only run the same notebook again): every graded cell's visible check passes in the
    # kernel. The points come from the checker (tests/test_autograder_catalogue.py grades the reference).
    path, nb, _ = executed_solution(assignment)
    validator = Validator()
    validator.preprocessors = [CheckCellMetadata]
    results = validator.validate(str(path))
    assert not results, f"{assignment}: nbgrader validate reports {json.dumps(results, indent=1)[:3000]}"
    graded = [cell for cell in nb.cells if nbgrader_utils.is_grade(cell) and cell.cell_type == "code"]
    assert graded
    for cell in graded:
        score, max_score = nbgrader_utils.determine_grade(cell)
        assert score == max_score > 0, f"{assignment}: {nbgrader_meta(cell)['grade_id']} scored {score} of {max_score}"


# --------------------------------------------------------------------------------------------------
# The source notebooks' structure.


def points(nb) -> tuple[float, float]:
    auto = sum(nbgrader_meta(c).get("points", 0) for c in nb.cells if nbgrader_utils.is_grade(c) and not nbgrader_utils.is_solution(c))
    manual = sum(nbgrader_meta(c).get("points", 0) for c in nb.cells if nbgrader_utils.is_grade(c) and nbgrader_utils.is_solution(c))
    return auto, manual


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_source_notebook_is_well_formed(assignment):
    nb = read(source_path(assignment))
    ids = [cell.get("id") for cell in nb.cells]
    assert len(ids) == len(set(ids)), "cell ids must be unique"
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        assert not cell.get("outputs") and cell.get("execution_count") is None, f"{cell.get('id')}: commit the source without outputs"
        if not meta.get("grade"):
            continue
        assert meta.get("points", 0) > 0 and meta["grade_id"] == cell.get("id"), f"{cell.get('id')}: a graded cell has an id and points"
        if cell.cell_type == "code":
            first = cell.source.split("\n", 1)[0]
            assert first.startswith("# Checks:"), f"{meta['grade_id']}: the first line must say what the cell checks"
            assert "HIDDEN TESTS" not in cell.source, f"{meta['grade_id']}: hidden tests belong in the checker, autograder/checker/checks/, not in the notebook"
        else:  # a manually graded answer: the model answer and the rubric, inside the solution region
            assert cell.source.startswith("### BEGIN SOLUTION") and cell.source.endswith("### END SOLUTION")
            assert "=== BEGIN MARK SCHEME ===" in cell.source and f"**Rubric ({meta['points']} points).**" in cell.source
    auto, manual = points(nb)
    print(f"{assignment}: {auto:g} autograded points, {manual:g} manually graded points")
    assert auto > 0 and manual > 0
    # Student kernels run these cells: nothing of the grader (the checker, its fixtures, the reference) is imported.
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    for module in ("autograder", "mbrl_reference"):
        assert module not in code, f"{assignment}: the notebook uses {module}; the checker owns what needs it"


# --------------------------------------------------------------------------------------------------
# The release notebooks.


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_release_fails_every_graded_test_with_the_stubs(assignment):
    result = subprocess.run(
        NBGRADER + ["validate", "--invert", str(release_path(assignment))], cwd=ROOT, env=NBGRADER_ENV, capture_output=True, text=True, timeout=600
    )
    assert "Success! The notebook does not pass any tests." in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]


def shown_outside_answers(nb) -> str:
    """What the source notebook shows outside its answers, whitespace removed: a line of an answer
    found there too (a read-only cell may deliberately hold an earlier notebook's answer) is no leak."""
    shown = []
    for cell in nb.cells:
        rows = solution_rows(cell.source) if nbgrader_utils.is_solution(cell) else set()
        shown += [line for row, line in enumerate(cell.source.split("\n"), 1) if row not in rows]
    return without_whitespace("\n".join(shown))


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_release_holds_no_solution_hidden_test_or_rubric(assignment):
    source, release = read(source_path(assignment)), read(release_path(assignment))
    text = "\n".join(cell.source for cell in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "MARK SCHEME", "Rubric", "Model answer", "load_fixture", "autograder"):
        assert marker not in text, f"{assignment}: the release contains {marker!r}"
    # the course's one leak detector (the bundle's): every meaningful line of an answer, whitespace aside
    shown = shown_outside_answers(source)
    answers = [line for line in notebook_solution_lines(source_path(assignment), assignment) if line.key not in shown]
    leaked = find_leaks(answers, notebook_documents(release_path(assignment), "release"))
    assert not leaked, f"{assignment}: solution code in the release:\n{format_leaks(leaked)}"
    for cell in release.cells:
        assert not cell.get("outputs"), f"{assignment}: outputs in the release"
        if nbgrader_utils.is_solution(cell):
            stub = "raise NotImplementedError()" if cell.cell_type == "code" else "YOUR ANSWER HERE"
            assert stub in cell.source, f"{assignment}: {cell.get('id')} has no stub"


@pytest.mark.parametrize("assignment", NOTEBOOKS)
def test_release_imports_and_loads_the_data_from_its_own_folder(assignment):
    # What a student runs first, from notebooks/<assignment>/, with only the README's install.
    nb = read(release_path(assignment))
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    setup_index = [cell.get("id") for cell in code_cells].index("setup")
    # notebook 4: the setup, loading the student's notebook 3 from ../03_ensemble/, then its start data
    following = 3 if assignment == "04_closing_the_loop" else 2
    program = "\n\n".join(cell.source for cell in code_cells[setup_index : setup_index + following])
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run([sys.executable, "-c", program], cwd=release_path(assignment).parent, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transitions" in result.stdout


def normalised(nb) -> dict:
    data = json.loads(nbformat.writes(nb))
    data["metadata"].pop("celltoolbar", None)
    return data


def test_release_is_what_nbgrader_generates_from_the_source(tmp_path):
    # A copy of the course with the same configuration and its own gradebook; the committed release
    # must equal what `nbgrader generate_assignment --force` writes (outputs cleared).
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    (tmp_path / "grading").mkdir()
    (tmp_path / "nbgrader_config.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from autograder.nbgrader_glue.config import course_config\n"
        f"get_config().merge(course_config({str(tmp_path)!r}))\n"  # noqa: F821 (nbgrader's config loader)
    )
    for assignment in NOTEBOOKS:
        result = subprocess.run(
            NBGRADER + ["generate_assignment", assignment, "--force"], cwd=tmp_path, env=NBGRADER_ENV, capture_output=True, text=True, timeout=300
        )
        generated = tmp_path / "notebooks" / assignment / f"{assignment}.ipynb"
        assert result.returncode == 0 and generated.exists(), result.stderr[-3000:]
        assert normalised(read(generated)) == normalised(read(release_path(assignment))), (
            f"notebooks/{assignment} differs from what nbgrader generates from solutions/{assignment}: "
            f"regenerate it with `nbgrader generate_assignment {assignment} --force` from the course root"
        )


# --------------------------------------------------------------------------------------------------
# Self-help: common mistakes and correct variants against the visible test cells, run in-process
# on the source notebook's code. Whether grading takes the points is the checker's business
# (tests/test_autograder_catalogue.py; tests/test_visible_checks_agree.py compares both).


def run_cells(assignment: str, target: str, replace: dict[str, str] | None = None, substitute: tuple[str, str, str] | None = None) -> dict:
    """Run the setup cell, every solution and read-only helper cell before `target`, then `target`.

    replace: cell id -> new source for whole solution cells. substitute: (cell id, old, new), one
    text substitution that must occur exactly once in that cell.
    """
    nb = read(source_path(assignment))
    replace = dict(replace or {})
    if substitute:
        cell_id, old, new = substitute
        source = cell_by_id(nb, cell_id).source
        assert source.count(old) == 1, f"{assignment}:{cell_id}: {old!r} occurs {source.count(old)} times"
        replace[cell_id] = source.replace(old, new)
    namespace: dict = {}
    for cell in nb.cells:
        meta, cell_id = nbgrader_meta(cell), cell.get("id")
        is_definition = meta.get("solution") or (meta.get("locked") and not meta.get("grade"))
        if cell.cell_type != "code" or not (is_definition or cell_id == target):
            continue
        exec(compile(replace.get(cell_id, cell.source), f"{assignment}:{cell_id}", "exec"), namespace)
        if cell_id == target:
            return namespace
    raise AssertionError(f"{assignment}: no cell {target!r}")


# (assignment, mistake, (solution cell, text, replacement), test cell that must fail, words its message must contain)
MISTAKES = [
    (
        "01_deterministic_cem",
        "predicting the next state instead of the delta (prediction)",
        ("deterministic-model", "return self.net(", "return states + self.net("),
        "test-det-predict-delta",
        "predicting the next state instead of the delta",
    ),
    (
        "01_deterministic_cem",
        "predicting the next state instead of the delta (loss target)",
        ("deterministic-model", "next_states - states)", "next_states)"),
        "test-det-loss",
        "predicting the next state instead of the delta",
    ),
    (
        "01_deterministic_cem",
        "sum instead of mean in the loss",
        ("deterministic-model", "next_states - states)", "next_states - states, reduction='sum')"),
        "test-det-loss",
        "sum of the squared errors",
    ),
    (
        "01_deterministic_cem",
        "action first in the network's input",
        ("deterministic-model", "torch.cat([states, actions], dim=-1)", "torch.cat([actions, states], dim=-1)"),
        "test-det-predict-delta",
        "Feed the network the state first",
    ),
    (
        "01_deterministic_cem",
        "wrong shapes (concatenation along rows)",
        ("deterministic-model", "torch.cat([states, actions], dim=-1)", "torch.cat([states, actions], dim=0)"),
        "test-det-predict-shape",
        "Wrong shapes",
    ),
    (
        "01_deterministic_cem",
        "elites chosen by lowest return",
        ("cem-plan", "returns.topk(n_elite)", "returns.topk(n_elite, largest=False)"),
        "test-cem-elites",
        "elites chosen by lowest return",
    ),
    (
        "01_deterministic_cem",
        "returning the last action instead of the first",
        ("cem-plan", "return mean[0]", "return mean[-1]"),
        "test-cem-first-action",
        "returning the last action instead of the first",
    ),
    ("01_deterministic_cem", "std not floored", ("cem-plan", ".clamp(min=std_floor)", ""), "test-cem-std-floor", "std not floored"),
    (
        "01_deterministic_cem",
        "samples not clamped to the action limits",
        ("cem-plan", ".sample((n_samples,)).clamp(ACTION_LOW, ACTION_HIGH)", ".sample((n_samples,))"),
        "test-cem-clamp",
        "Clamp the samples",
    ),
    ("01_deterministic_cem", "wrong shapes (the whole mean returned)", ("cem-plan", "return mean[0]", "return mean"), "test-cem-output", "Wrong shapes"),
    (
        "01_deterministic_cem",
        "random numbers not from torch",
        (
            "cem-plan",
            "actions = Normal(mean, std).sample((n_samples,))",
            "actions = (mean + std * torch.as_tensor(__import__('numpy').random.randn(n_samples, horizon, ACTION_DIM), dtype=torch.float32))",
        ),
        "test-cem-reference",
        "Draw every random number",
    ),
    (
        "02_stochastic",
        "mu and log_sigma swapped",
        ("stochastic-model", "mu, log_sigma = torch.chunk", "log_sigma, mu = torch.chunk"),
        "test-sto-split",
        "swapped",
    ),
    (
        "02_stochastic",
        "sigma from log_sigma without the clamp",
        ("stochastic-model", "torch.clamp(torch.exp(log_sigma), min=SIGMA_MIN, max=SIGMA_MAX)", "torch.exp(log_sigma)"),
        "test-sto-sigma-clamp",
        "sigma from log_sigma without the clamp",
    ),
    (
        "02_stochastic",
        "log_sigma clamped instead of sigma",
        (
            "stochastic-model",
            "torch.clamp(torch.exp(log_sigma), min=SIGMA_MIN, max=SIGMA_MAX)",
            "torch.exp(torch.clamp(log_sigma, min=SIGMA_MIN, max=SIGMA_MAX))",
        ),
        "test-sto-sigma-clamp",
        "after the exponential",
    ),
    (
        "02_stochastic",
        "log_sigma used as sigma (no exponential)",
        ("stochastic-model", "torch.clamp(torch.exp(log_sigma), min=SIGMA_MIN, max=SIGMA_MAX)", "torch.clamp(log_sigma, min=SIGMA_MIN, max=SIGMA_MAX)"),
        "test-sto-sigma-clamp",
        "sigma = exp(log_sigma)",
    ),
    (
        "02_stochastic",
        "wrong shapes (split along rows)",
        ("stochastic-model", "torch.chunk(out, 2, dim=-1)", "torch.chunk(out, 2, dim=0)"),
        "test-sto-split",
        "Wrong shapes",
    ),
    (
        "02_stochastic",
        "prediction returns mu, no sampling",
        ("stochastic-model", "return torch.distributions.Normal(mu, sigma).sample()", "return mu"),
        "test-sto-sampling",
        "returned mu",
    ),
    (
        "02_stochastic",
        "predicting the next state instead of the delta (sampling)",
        ("stochastic-model", "return torch.distributions.Normal(mu, sigma).sample()", "return states + torch.distributions.Normal(mu, sigma).sample()"),
        "test-sto-sampling",
        "predicting the next state instead of the delta",
    ),
    (
        "02_stochastic",
        "variance used as the scale of the samples",
        ("stochastic-model", "Normal(mu, sigma).sample()", "Normal(mu, sigma**2).sample()"),
        "test-sto-sampling",
        "not the variance",
    ),
    (
        "02_stochastic",
        "constant log(2 pi)/2 kept in the NLL",
        ("stochastic-model", "+ torch.log(sigma)).mean()", "+ torch.log(sigma) + 0.5 * math.log(2 * math.pi)).mean()"),
        "test-sto-nll",
        "drop the constant",
    ),
    (
        "02_stochastic",
        "NLL summed instead of averaged",
        ("stochastic-model", "+ torch.log(sigma)).mean()", "+ torch.log(sigma)).sum()"),
        "test-sto-nll",
        "is a sum",
    ),
    (
        "02_stochastic",
        "predicting the next state instead of the delta (NLL target)",
        ("stochastic-model", "target = next_states - states", "target = next_states"),
        "test-sto-nll",
        "predicting the next state instead of the delta",
    ),
    (
        "02_stochastic",
        "log of the variance without the 1/2",
        ("stochastic-model", "+ torch.log(sigma)).mean()", "+ torch.log(sigma**2)).mean()"),
        "test-sto-nll",
        "not log(sigma**2)",
    ),
    # (The NLL from the unclamped sigma matches the lecture notes' GaussianNLLLoss form where the
    # visible check looks; only the checker's hidden case, where exp(log_sigma) underflows, tells them apart.)
    (
        "03_ensemble",
        "predicting the next state instead of the delta (ensemble)",
        ("ensemble-model", "return self.net(", "return states + self.net("),
        "test-ens-predict-members",
        "predicting the next state instead of the delta",
    ),
    (
        "03_ensemble",
        "wrong shapes (shared actions not expanded to the members)",
        ("ensemble-model", "actions = actions.expand(self.n_members, -1, -1)", "pass"),
        "test-ens-predict-shapes",
        "Wrong shapes",
    ),
    (
        "03_ensemble",
        "members' losses averaged instead of summed",
        ("ensemble-model", "squared_errors.mean(dim=(1, 2)).sum()", "squared_errors.mean()"),
        "test-ens-loss",
        "sum them instead",
    ),
    (
        "03_ensemble",
        "predicting the next state instead of the delta (ensemble loss)",
        ("ensemble-model", "- (next_states - states)) ** 2", "- next_states) ** 2"),
        "test-ens-loss",
        "predicting the next state instead of the delta",
    ),
    (
        "03_ensemble",
        "every member scored on row 0",
        ("ensemble-model", "- (next_states - states)) ** 2", "- (next_states - states)[0]) ** 2"),
        "test-ens-loss",
        "row 0",
    ),
    (
        "03_ensemble",
        "one minibatch shared by all members",
        ("member-batches", "[buffer.sample(batch_size) for _ in range(n_members)]", "[buffer.sample(batch_size)] * n_members"),
        "test-ens-member-batches",
        "one minibatch shared by all members",
    ),
    (
        "03_ensemble",
        "ensemble ranked by one member",
        ("ensemble-cem-plan", "expected_returns = returns.mean(dim=0)", "expected_returns = returns[0]"),
        "test-ens-cem-mean-return",
        "ranked by one member",
    ),
    (
        "03_ensemble",
        "wrong shapes (rollouts not repeated for every member)",
        ("ensemble-cem-plan", "states = state.expand(n_members, n_samples, -1)", "states = state.expand(n_samples, -1)"),
        "test-ens-cem-output",
        "Wrong shapes",
    ),
    (
        "03_ensemble",
        "elites chosen by lowest return (ensemble)",
        ("ensemble-cem-plan", "expected_returns.topk(n_elite)", "expected_returns.topk(n_elite, largest=False)"),
        "test-ens-cem-elites-first-floor",
        "elites chosen by lowest return",
    ),
    (
        "03_ensemble",
        "returning the last action instead of the first (ensemble)",
        ("ensemble-cem-plan", "return mean[0]", "return mean[-1]"),
        "test-ens-cem-elites-first-floor",
        "returning the last action instead of the first",
    ),
    ("03_ensemble", "std not floored (ensemble)", ("ensemble-cem-plan", ".clamp(min=std_floor)", ""), "test-ens-cem-elites-first-floor", "std not floored"),
    (
        "04_closing_the_loop",
        "next state equal to the state",
        ("add-episode", "episode.states[1:]])", "episode.states[:-1]])"),
        "test-loop-add-episode",
        "Each new next state equals its state",
    ),
    (
        "04_closing_the_loop",
        "every state taken as a transition",
        ("add-episode", '"states": np.concatenate([dataset["states"], episode.states[:-1]])', '"states": np.concatenate([dataset["states"], episode.states])'),
        "test-loop-add-episode",
        "One transition too many",
    ),
    (
        "04_closing_the_loop",
        "episode put before the old data",
        ("add-episode", '[dataset["states"], episode.states[:-1]]', '[episode.states[:-1], dataset["states"]]'),
        "test-loop-add-episode",
        "The old transitions must come first",
    ),
    (
        "04_closing_the_loop",
        "retrained on the start data every time",
        ("loop", "agent = train_agent(dataset)", "agent = train_agent(dataset if not returns else start)\n        start = dataset if not returns else start"),
        "test-loop-iterations",
        "that is the start data again",
    ),
    (
        "04_closing_the_loop",
        "return of the first episode recorded every time",
        ("loop", "returns.append(episode.episode_return)", "returns.append(returns[0] if returns else episode.episode_return)"),
        "test-loop-iterations",
        "returns must be the episodes' returns in order",
    ),
]


@pytest.mark.parametrize("assignment, mistake, substitution, test_cell, hint", MISTAKES, ids=[m[1] for m in MISTAKES])
def test_a_common_mistake_fails_the_test_cell_that_names_it(assignment, mistake, substitution, test_cell, hint):
    torch.set_num_threads(1)
    with pytest.raises(AssertionError) as failure:
        run_cells(assignment, test_cell, substitute=substitution)
    assert hint in str(failure.value), f"{mistake}: {test_cell} failed with a message that does not say {hint!r}: {failure.value}"


def test_planning_with_autograd_on_is_advised_not_failed(capsys):
    # Its actions are exactly right, so the checker cannot see it and grades nothing on it; the
    # visible cell passes and prints the advice.
    torch.set_num_threads(1)
    run_cells("01_deterministic_cem", "test-cem-output", substitute=("cem-plan", "@torch.no_grad()", ""))
    assert "Advice: planning with autograd on" in capsys.readouterr().out
    run_cells("01_deterministic_cem", "test-cem-output")
    assert "Advice" not in capsys.readouterr().out


# Correct solutions written differently from the reference: they must pass every autograded cell.
VARIANTS = {
    "01_deterministic_cem": {
        "deterministic-model": """
class DeterministicModel(nn.Module):
    def __init__(self, state_dim=STATE_DIM, action_dim=ACTION_DIM, hidden_size=HIDDEN_SIZE, n_hidden=N_HIDDEN):
        super().__init__()
        self.net = build_mlp(state_dim + action_dim, state_dim, hidden_size, n_hidden)

    def predict_delta(self, states, actions):
        return self.net(torch.cat((states, actions), 1))

    def loss(self, states, actions, next_states):
        error = self.predict_delta(states, actions) - (next_states - states)
        return (error ** 2).sum() / error.numel()
""",
        "cem-plan": """
@torch.no_grad()
def cem_plan(predict_delta, state, horizon=CEM_SETTINGS["horizon"], n_samples=CEM_SETTINGS["n_samples"], n_elite=CEM_SETTINGS["n_elite"],
             n_iters=CEM_SETTINGS["n_iters"], std_floor=CEM_SETTINGS["std_floor"], reward_fn=compute_rewards):
    mean, std = torch.zeros(horizon, 1), torch.ones(horizon, 1)
    for _ in range(n_iters):
        samples = torch.clamp(mean + std * torch.randn(n_samples, horizon, 1), -3.0, 3.0)
        states, total = state.repeat(n_samples, 1), torch.zeros(n_samples)
        for t in range(horizon):
            states = states + predict_delta(states, samples[:, t, :])
            total = total + reward_fn(states)
        elites = samples[torch.argsort(total, descending=True)[:n_elite]]
        mean = elites.mean(0)
        std = torch.maximum(elites.std(0, unbiased=False), torch.tensor(std_floor))
    return mean[0].clone()
""",
    },
    "02_stochastic": {
        "stochastic-model": """
SIGMA_MIN, SIGMA_MAX = 1e-8, 10.0


class StochasticModel(nn.Module):
    def __init__(self, state_dim=STATE_DIM, action_dim=ACTION_DIM, hidden_size=HIDDEN_SIZE, n_hidden=N_HIDDEN):
        super().__init__()
        self.net = build_mlp(state_dim + action_dim, 2 * state_dim, hidden_size, n_hidden)

    def distribution_params(self, states, actions):
        out = self.net(torch.cat([states, actions], -1))
        return out[..., :STATE_DIM], out[..., STATE_DIM:].exp().clamp(SIGMA_MIN, SIGMA_MAX)

    def predict_delta(self, states, actions):
        mu, sigma = self.distribution_params(states, actions)
        return mu + sigma * torch.randn_like(mu)

    def loss(self, states, actions, next_states):
        mu, sigma = self.distribution_params(states, actions)
        return nn.GaussianNLLLoss(full=False)(mu, next_states - states, sigma ** 2)
""",
    },
    "03_ensemble": {
        "ensemble-model": """
class EnsembleModel(nn.Module):
    def __init__(self, n_members=N_MEMBERS, state_dim=STATE_DIM, action_dim=ACTION_DIM, hidden_size=HIDDEN_SIZE, n_hidden=N_HIDDEN):
        super().__init__()
        self.n_members = n_members
        self.net = build_ensemble_mlp(n_members, state_dim + action_dim, state_dim, hidden_size, n_hidden)

    def predict_delta(self, states, actions):
        if actions.dim() == 2:
            actions = actions.unsqueeze(0).repeat(self.n_members, 1, 1)
        return self.net(torch.cat((states, actions), dim=2))

    def loss(self, states, actions, next_states):
        predictions = self.predict_delta(states, actions)
        return sum(F.mse_loss(predictions[k], next_states[k] - states[k]) for k in range(self.n_members))
""",
        "member-batches": """
def sample_member_batches(buffer, batch_size, n_members=N_MEMBERS):
    states, actions, next_states = buffer.sample(batch_size * n_members)
    return tuple(x.reshape(n_members, batch_size, -1) for x in (states, actions, next_states))
""",
        "ensemble-cem-plan": """
@torch.no_grad()
def ensemble_cem_plan(predict_delta, state, n_members, horizon=CEM_SETTINGS["horizon"], n_samples=CEM_SETTINGS["n_samples"],
                      n_elite=CEM_SETTINGS["n_elite"], n_iters=CEM_SETTINGS["n_iters"], std_floor=CEM_SETTINGS["std_floor"],
                      reward_fn=compute_rewards):
    mean, std = torch.zeros(horizon, 1), torch.ones(horizon, 1)
    for _ in range(n_iters):
        samples = (mean + std * torch.randn(n_samples, horizon, 1)).clamp(-3, 3)
        states = state.repeat(n_members, n_samples, 1)
        total = torch.zeros(n_samples)
        for t in range(horizon):
            states = states + predict_delta(states, samples[:, t])
            total = total + reward_fn(states).sum(dim=0)  # the sum ranks as the mean does
        elites = samples[torch.argsort(total, descending=True)[:n_elite]]
        mean, std = elites.mean(0), elites.std(0).clamp(min=std_floor)
    return mean[0]
""",
    },
}
VARIANTS["04_closing_the_loop"] = {
    "add-episode": """
def add_episode(dataset, episode):
    n = episode.steps
    return {"states": np.vstack([dataset["states"], episode.states[:n]]),
            "actions": np.vstack([dataset["actions"], episode.actions]),
            "next_states": np.vstack([dataset["next_states"], episode.states[1 : n + 1]])}
""",
    "loop": """
def closing_the_loop(dataset, train_agent, run_agent, n_iterations):
    history = [run_agent(train_agent(dataset))]
    while len(history) < n_iterations:
        dataset = add_episode(dataset, history[-1])
        history.append(run_agent(train_agent(dataset)))
    return add_episode(dataset, history[-1]), [e.episode_return for e in history]
""",
}
VARIANT_CELLS = [
    (assignment, cell.get("id"))
    for assignment in NOTEBOOKS
    for cell in read(source_path(assignment)).cells
    if nbgrader_utils.is_grade(cell) and cell.cell_type == "code"
]


@pytest.mark.parametrize("assignment, test_cell", VARIANT_CELLS, ids=[f"{a}:{c}" for a, c in VARIANT_CELLS])
def test_a_correct_solution_written_differently_passes(assignment, test_cell):
    # The visible checks do not reject a loop-based or torch.distributions-free solution,
    # GaussianNLLLoss, argsort instead of topk, one big minibatch reshaped per member, ... The
    # checker's verdicts on such solutions: autograder/examples' alternatives, in tests/test_autograder_catalogue.py.
    torch.set_num_threads(1)
    replace = {cell_id: source.strip() for cell_id, source in VARIANTS[assignment].items()}
    for cell_id in replace:
        ast.parse(replace[cell_id])
    run_cells(assignment, test_cell, replace=replace)
