"""The solution notebooks' graded code (and any read-only copies in later notebooks) give exactly the
reference implementation's outputs: same weights, same inputs, same torch seed, same bits.

The notebooks' cells that define a class or function are executed in a fresh namespace after the
notebook's own setup cell; nothing else of the notebook runs.
"""

import ast
from pathlib import Path

import nbformat
import torch

import mbrl_reference as ref
from mbrl_helpers import ReplayBuffer, load_dataset

ROOT = Path(__file__).resolve().parent.parent


def notebook_definitions(assignment: str, names: set[str]) -> dict:
    """Namespace after running the setup cell and every code cell that defines one of `names` at top level."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    namespace: dict = {}
    setup = [cell for cell in nb.cells if cell.get("id") == "setup"]
    assert len(setup) == 1, f"{assignment}: expected one cell with id 'setup'"
    exec(compile(setup[0].source, f"{assignment}:setup", "exec"), namespace)
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        defined = {node.name for node in ast.parse(cell.source).body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
        if defined & names:
            exec(compile(cell.source, f"{assignment}:{cell.get('id')}", "exec"), namespace)
            found |= defined & names
    assert found == names, f"{assignment}: no cell defines {sorted(names - found)}"
    return namespace


def inputs(n=64, k=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    lead = (k, n) if k else (n,)
    states = torch.randn(*lead, 4, generator=g)
    return states, torch.rand(*lead, 1, generator=g) * 6 - 3, states + 0.3 * torch.randn(*lead, 4, generator=g)


def twin(reference_class, notebook_class, **kwargs):
    torch.manual_seed(0)
    reference = reference_class(**kwargs)
    notebook = notebook_class(**kwargs)
    notebook.load_state_dict(reference.state_dict())
    return reference, notebook


def same_sample(fn_a, fn_b, *args, seed=0, **kwargs):
    torch.manual_seed(seed)
    a = fn_a(*args, **kwargs)
    torch.manual_seed(seed)
    b = fn_b(*args, **kwargs)
    return a, b


PLAN_STATES = [torch.zeros(4), torch.tensor([0.2, 0.05, -0.1, 0.2]), torch.tensor([-0.5, -0.1, 0.3, -0.4])]


def test_deterministic_model():
    # Notebook 1 only: notebook 3 reads the student's own model from notebook 1 (mbrl_helpers.own_code), it holds no copy.
    ns = notebook_definitions("01_deterministic_cem", {"DeterministicModel"})
    reference, notebook = twin(ref.DeterministicModel, ns["DeterministicModel"])
    states, actions, next_states = inputs()
    assert torch.equal(notebook.predict_delta(states, actions), reference.predict_delta(states, actions))
    assert torch.equal(notebook.loss(states, actions, next_states), reference.loss(states, actions, next_states))


def test_stochastic_model():
    # Notebook 2 only: notebook 3 reads the student's own model from notebook 2, it holds no copy.
    ns = notebook_definitions("02_stochastic", {"StochasticModel"})
    reference, notebook = twin(ref.StochasticModel, ns["StochasticModel"])
    with torch.no_grad():  # push some log_sigma outputs past both clamp bounds
        for model in (reference, notebook):
            model.net[-1].bias[4:] += torch.tensor([12.0, 0.0, -30.0, 0.0])
    states, actions, next_states = inputs()
    for got, expected in zip(notebook.distribution_params(states, actions), reference.distribution_params(states, actions)):
        assert torch.equal(got, expected)
    assert torch.equal(*same_sample(notebook.predict_delta, reference.predict_delta, states, actions))
    assert torch.equal(notebook.loss(states, actions, next_states), reference.loss(states, actions, next_states))


def test_ensemble_model():
    ns = notebook_definitions("03_ensemble", {"EnsembleModel"})
    reference, notebook = twin(ref.EnsembleModel, ns["EnsembleModel"], n_members=5)
    states, actions, next_states = inputs(k=5)
    assert torch.equal(notebook.predict_delta(states, actions), reference.predict_delta(states, actions))
    assert torch.equal(notebook.predict_delta(states, actions[0]), reference.predict_delta(states, actions[0]))
    assert torch.equal(notebook.loss(states, actions, next_states), reference.loss(states, actions, next_states))


def test_sample_member_batches():
    ns = notebook_definitions("03_ensemble", {"sample_member_batches"})
    dataset = load_dataset()
    got = ns["sample_member_batches"](ReplayBuffer.from_dataset(dataset, device="cpu", seed=3), 32, 5)
    expected = ref.sample_member_batches(ReplayBuffer.from_dataset(dataset, device="cpu", seed=3), 32, 5)
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


def test_cem_plan():
    ns = notebook_definitions("01_deterministic_cem", {"cem_plan"})
    torch.manual_seed(1)
    model = ref.DeterministicModel()
    for seed, state in enumerate(PLAN_STATES):
        got, expected = same_sample(ns["cem_plan"], ref.cem_plan, model.predict_delta, state, seed=seed)
        assert got.shape == (1,) and torch.equal(got, expected)
    # and with non-default settings and reward
    reward = lambda states: -((states[..., 0] - 1.0) ** 2)  # noqa: E731
    settings = dict(horizon=3, n_samples=50, n_elite=7, n_iters=4, std_floor=0.2, reward_fn=reward)
    assert torch.equal(*same_sample(ns["cem_plan"], ref.cem_plan, model.predict_delta, PLAN_STATES[1], **settings))


def test_notebook_2_plans_with_random_shooting_not_a_copy_of_cem():
    # Notebook 1's cem_plan is graded there: notebook 2 must not hand it out before it is due.
    nb = nbformat.read(ROOT / "solutions" / "02_stochastic" / "02_stochastic.ipynb", as_version=4)
    defined = {node.name for cell in nb.cells if cell.cell_type == "code" for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)}
    assert "cem_plan" not in defined
    ns = notebook_definitions("02_stochastic", set())
    planner = [cell for cell in nb.cells if cell.get("id") == "planner"]
    assert len(planner) == 1
    exec(compile(planner[0].source, "02_stochastic:planner", "exec"), ns)
    from mbrl_helpers.planning import random_shooting_plan

    assert ns["random_shooting_plan"] is random_shooting_plan


def test_ensemble_cem_plan():
    ns = notebook_definitions("03_ensemble", {"ensemble_cem_plan"})
    torch.manual_seed(1)
    ensemble = ref.EnsembleModel(n_members=3)
    for seed, state in enumerate(PLAN_STATES):
        got, expected = same_sample(ns["ensemble_cem_plan"], ref.ensemble_cem_plan, ensemble.predict_delta, state, 3, seed=seed)
        assert got.shape == (1,) and torch.equal(got, expected)
