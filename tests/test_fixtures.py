"""The checker's fixtures (autograder/checker/checks/ loads them: well-trained weights, plan states): small,
loadable without the reference code, regenerated bit for bit, and their trained models good enough
that the reference planners balance the pendulum with them on every episode seed the checker draws."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autograder.checker.checks.common import RETURN_CHECK_STEPS
from autograder.checker.fixtures import ASSIGNMENTS, FIXTURE_DIR, fixture_path, load_fixture
from autograder.checker.fixtures.generate import generate
from mbrl_helpers import MPCAgent, run_episode
from mbrl_helpers.planning import random_shooting_plan
from mbrl_reference import DeterministicModel, EnsembleModel, StochasticModel, cem_plan, ensemble_cem_plan

ROOT = Path(__file__).resolve().parent.parent


def assert_same(expected, got, where):
    """Exactly equal nested dicts of tensors and numbers."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), f"{where}: keys differ: {sorted(set(got) ^ set(expected))}"
        for key in expected:
            assert_same(expected[key], got[key], f"{where}.{key}")
    elif isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor) and got.dtype == expected.dtype and got.shape == expected.shape, where
        assert torch.equal(got, expected), f"{where}: values differ (largest difference {(got - expected).abs().max().item()})"
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def test_every_assignment_has_a_small_fixture():
    total = sum(fixture_path(name).stat().st_size for name in ASSIGNMENTS)
    assert total < 400 * 1024, f"the fixtures take {total / 1024:.0f} KiB; keep them to a few hundred KiB"


def test_regenerating_gives_identical_tensors(tmp_path):
    # Seeded, on the CPU with one thread: the same torch on the same machine writes the same bits.
    # A failure here means the fixtures are stale (the dataset, the settings or the reference changed):
    # run `python -m autograder.checker.fixtures.generate` and commit the files.
    generate(tmp_path)
    for name in ASSIGNMENTS:
        assert_same(load_fixture(name), load_fixture(name, directory=tmp_path), name)


def test_the_loader_imports_no_reference_code():
    # The fixtures are data: loading them needs torch and the network builders, not mbrl_reference
    # (the checker computes its expected values with the reference itself, live).
    code = (
        "import sys; from autograder.checker.fixtures import load_fixture; "
        "[load_fixture(n) for n in ('01_deterministic_cem', '02_stochastic', '03_ensemble')]; "
        "assert not any(m.startswith('mbrl_reference') for m in sys.modules), 'mbrl_reference was imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_loader_says_how_to_regenerate_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="autograder.checker.fixtures.generate"):
        load_fixture("01_deterministic_cem", directory=tmp_path)
    with pytest.raises(KeyError):
        load_fixture("04_unknown")


def test_a_fresh_install_ships_the_fixtures():
    # The checker imports autograder.checker.fixtures from the installed package.
    from setuptools import find_packages

    assert "autograder.checker.fixtures" in find_packages(str(ROOT), include=["autograder*"])
    assert FIXTURE_DIR == ROOT / "autograder" / "checker" / "fixtures"


def test_the_command_line_names_its_assignments(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "autograder.checker.fixtures.generate", "--out", str(tmp_path), "04_unknown"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0 and "unknown assignment" in result.stderr and not any(tmp_path.iterdir())
    result = subprocess.run([sys.executable, "-m", "autograder.checker.fixtures.generate", "--help"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "example: python -m autograder.checker.fixtures.generate" in result.stdout


PLANNERS = {
    "01_deterministic_cem": (DeterministicModel, cem_plan, {}),
    "02_stochastic": (StochasticModel, random_shooting_plan, {}),  # notebook 2 plans with mbrl_helpers' random shooting
    "03_ensemble": (EnsembleModel, ensemble_cem_plan, {"n_members": 5}),
}


def checker_episode_seeds(name: str) -> tuple[int, ...]:
    """The episode seeds the checker's hidden return check draws from: EPISODE_SEEDS of
    autograder/checker/checks/<notebook>.py, read from its source (() while that file does not exist)."""
    from autograder.checker.checks import MODULES

    spec = importlib.util.find_spec(MODULES[name])
    if spec is None:
        return ()
    for node in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EPISODE_SEEDS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return ()


EPISODES = [(name, seed) for name in PLANNERS for seed in checker_episode_seeds(name)]


@pytest.mark.parametrize("name, seed", EPISODES, ids=[f"{name}-seed{seed}" for name, seed in EPISODES])
def test_the_reference_planner_balances_the_pendulum_with_the_shipped_model(name, seed):
    # The hidden return check asks RETURN_CHECK_MIN of a student's planner with these weights over
    # RETURN_CHECK_STEPS, on one of these seeds drawn for the student: the reference stays up for all of them.
    model_class, plan, plan_kwargs = PLANNERS[name]
    torch.set_num_threads(1)
    model = model_class()
    model.load_state_dict(load_fixture(name)["trained_state_dict"])
    model.eval()
    result = run_episode(MPCAgent(plan, model.predict_delta, device="cpu", **plan_kwargs), seed=seed, max_steps=RETURN_CHECK_STEPS, progress=False)
    assert result.episode_return == RETURN_CHECK_STEPS


@pytest.mark.parametrize("name", PLANNERS)
def test_the_checker_has_episode_seeds_for_the_return_check(name):
    from autograder.checker.checks import MODULES

    if importlib.util.find_spec(MODULES[name]) is None:
        pytest.skip(f"{MODULES[name].replace('.', '/')}.py does not exist yet")
    assert checker_episode_seeds(name), f"{MODULES[name]}.EPISODE_SEEDS is empty"
