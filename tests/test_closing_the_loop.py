"""Notebook 4's plumbing: the reset-only start data, the disagreement along an episode and over
candidate starts, the plots (the loop beside its control), the benchmark's control and guided loop,
loading a student's own earlier code, the grader's skipped cells, and the checker's reading of
add_episode mistakes. The checks themselves are graded on real notebooks in the catalogue
(tests/test_autograder_catalogue.py: the reference, three mistakes, an alternative, two cheats)."""

from __future__ import annotations

import ast
import builtins
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
import torch

from autograder.checker.checks import closing_the_loop as checks
from autograder.checker.notebook import NOT_RUN_TAG, is_not_run_while_grading
from mbrl_helpers import EpisodeResult, load_dataset
from mbrl_helpers.closing_the_loop import (
    EpisodeDisagreement,
    StartDisagreement,
    collect_reset_only,
    disagreement_along_episode,
    most_uncertain_start,
    plot_loop_and_control,
    plot_start_disagreement,
)
from mbrl_helpers.own_code import OwnCodeError, OwnCodeMissing, load_own_code, load_own_code_or_none
from mbrl_helpers.plots import plot_data_coverage, plot_disagreement_along_episode, plot_returns_per_iteration

ROOT = Path(__file__).resolve().parent.parent


# -- the start data ----------------------------------------------------------------------------
def test_reset_only_data_repeat_bit_for_bit_and_are_fast_falls_near_the_centre():
    first, again = collect_reset_only(300, seed=4, progress=False), collect_reset_only(300, seed=4, progress=False)
    assert all(np.array_equal(first[key], again[key]) for key in first)
    assert first["states"].shape == (300, 4) and first["actions"].shape == (300, 1) and first["next_states"].shape == (300, 4)
    starts = np.flatnonzero(np.diff(first["rollout"], prepend=-1))  # the first transition of each rollout
    assert np.abs(first["states"][starts]).max() <= 0.01  # env.reset(): every component within 0.01 of 0
    # a rollout ends when the pole falls: every rollout but possibly the last ends with a fall
    ends = np.append(starts[1:] - 1, len(first["states"]) - 1)
    assert first["terminated"][ends[:-1]].all() and first["terminated"].sum() == len(ends) - (0 if first["terminated"][-1] else 1)
    # random actions from reset never take the cart far: that is the point of the notebook
    assert np.abs(first["states"][:, 0]).max() < 0.3 < np.abs(load_dataset()["states"][:, 0]).max()
    # ...but they are no small region around upright: the falls reach the whole angle range, fast
    assert np.abs(first["states"][:, 1]).max() > 0.18 and np.abs(first["states"][:, 2]).max() > 1.0 and np.abs(first["states"][:, 3]).max() > 2.0
    # what they lack: slow states off the centre of the rail (notebook 4 prints this count)
    slow = (np.abs(first["states"][:, 2]) < 0.2) & (np.abs(first["states"][:, 3]) < 0.5)
    assert (slow & (np.abs(first["states"][:, 0]) > 0.05)).sum() <= 3
    assert not np.array_equal(collect_reset_only(300, seed=5, progress=False)["actions"], first["actions"])


# -- disagreement along an episode ---------------------------------------------------------------
def _episode(steps: int = 6) -> EpisodeResult:
    states = np.linspace(0, 1, steps + 1)[:, None] * np.array([1.0, 0.1, 0.5, 0.5])
    return EpisodeResult(
        seed=0, episode_return=steps - 1.0, states=states, actions=np.zeros((steps, 1), np.float32), decision_seconds=np.zeros(steps), terminated=True
    )


def _members_apart(spread: float):
    """An ensemble of 3 whose member k predicts a change of k * spread in every component."""

    def predict_delta(states, actions):
        assert states.shape[0] == 3 and actions.shape == (states.shape[1], 1)
        return torch.arange(3, dtype=torch.float32)[:, None, None] * spread * torch.ones_like(states)

    return predict_delta


def test_disagreement_is_zero_when_the_members_agree_and_grows_with_their_spread():
    data = {"states": np.random.default_rng(0).normal(size=(50, 4)), "next_states": np.random.default_rng(1).normal(size=(50, 4))}
    agree = disagreement_along_episode(_members_apart(0.0), 3, _episode(), data, device="cpu")
    apart = disagreement_along_episode(_members_apart(0.1), 3, _episode(), data, device="cpu")
    further = disagreement_along_episode(_members_apart(0.2), 3, _episode(), data, device="cpu")
    assert isinstance(agree, EpisodeDisagreement) and agree.disagreement.shape == (6,) and agree.distance_to_data.shape == (6,)
    assert np.all(agree.disagreement == 0) and np.all(apart.disagreement > 0)
    np.testing.assert_allclose(further.disagreement, 2 * apart.disagreement, rtol=1e-5)


def test_distance_to_data_is_zero_on_the_data_and_grows_away_from_it():
    episode = _episode(4)
    data = {"states": episode.states[:2], "next_states": episode.states[1:3]}
    measured = disagreement_along_episode(_members_apart(0.1), 3, episode, data, device="cpu")
    assert measured.distance_to_data[:2] == pytest.approx([0, 0], abs=1e-9)
    assert np.all(np.diff(measured.distance_to_data[1:]) > 0)


def test_disagreement_says_what_is_wrong_with_a_model_of_the_wrong_shape():
    data = {"states": np.zeros((5, 4)), "next_states": np.ones((5, 4))}
    with pytest.raises(ValueError, match=r"returned shape \(6, 4\); expected \(3, 6, 4\)"):
        disagreement_along_episode(lambda s, a: torch.zeros(6, 4), 3, _episode(), data, device="cpu")
    empty = EpisodeResult(
        seed=0, episode_return=0.0, states=np.zeros((1, 4)), actions=np.zeros((0, 1), np.float32), decision_seconds=np.zeros(0), terminated=False
    )
    with pytest.raises(ValueError, match="no steps"):
        disagreement_along_episode(_members_apart(0.1), 3, empty, data, device="cpu")


# -- disagreement over candidate starts -----------------------------------------------------------
def _members_apart_with_x(states, actions):
    """An ensemble of 3 that agrees at x = 0 and disagrees more the further the cart is from it."""
    return torch.arange(3, dtype=torch.float32)[:, None, None] * states[..., :1].abs() * torch.ones_like(states)


def test_most_uncertain_start_picks_the_candidate_where_the_members_disagree_most():
    data = {"states": np.zeros((5, 4)), "next_states": np.ones((5, 4)) * np.arange(5)[:, None]}
    measured = most_uncertain_start(_members_apart_with_x, 3, data, n_candidates=200, seed=3, box=(0.9, 0.1, 0.2, 0.3), device="cpu")
    assert isinstance(measured, StartDisagreement) and measured.candidates.shape == (200, 4) and measured.disagreement.shape == (200,)
    assert np.all(np.abs(measured.candidates) <= [0.9, 0.1, 0.2, 0.3])
    assert abs(measured.best[0]) == np.abs(measured.candidates[:, 0]).max() and measured.best_disagreement == measured.disagreement.max()
    again = most_uncertain_start(_members_apart_with_x, 3, data, n_candidates=200, seed=3, box=(0.9, 0.1, 0.2, 0.3), device="cpu")
    assert np.array_equal(again.candidates, measured.candidates) and np.array_equal(again.best, measured.best)
    with pytest.raises(ValueError, match="4 positive half-widths"):
        most_uncertain_start(_members_apart_with_x, 3, data, box=(0.9, 0.1, 0.2), device="cpu")


# -- plots ----------------------------------------------------------------------------------------
def test_the_loop_plots_draw_what_they_are_given():
    fig = plot_returns_per_iteration({"deterministic": [40, 1000, 1000], "ensemble": [50, 1000]}, data_sizes={"deterministic": [300, 340, 1340]})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()][:2] == ["deterministic", "ensemble"]
    assert list(ax.get_lines()[0].get_ydata()) == [40, 1000, 1000] and list(ax.get_lines()[1].get_xdata()) == [1, 2]
    assert [text.get_text() for text in ax.texts if text.get_text().startswith(("3", "1,"))] == ["300", "340", "1,340"]
    plt.close(fig)

    episode = _episode()
    measured = EpisodeDisagreement(disagreement=np.linspace(0.01, 0.2, 6), distance_to_data=np.linspace(0, 5, 6))
    fig = plot_disagreement_along_episode({"first": (episode, measured), "last": (episode, measured)}, title="t")
    assert len(fig.axes) == 6 and "fell in step 6" in fig.axes[0].get_title()
    plt.close(fig)

    fig = plot_data_coverage({"start": {"states": episode.states}, "added": {"states": episode.states[:3]}})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["start (7)", "added (3)"]
    plt.close(fig)
    for plot in (plot_returns_per_iteration, plot_disagreement_along_episode, plot_data_coverage):
        with pytest.raises(ValueError, match="empty"):
            plot({})


def test_the_control_is_drawn_beside_the_loop_and_the_candidates_beside_the_data():
    loop = {"deterministic": [40, 1000, 1000], "ensemble": [80, 1000, 1000]}
    fig = plot_loop_and_control(loop, {"ensemble": {2: 60, 3: 45}}, data_sizes={"deterministic": [300, 340, 1340]})
    ax = fig.axes[0]
    crosses = [c for c in ax.collections if c.get_label().startswith("ensemble: start data only")]
    assert len(crosses) == 1 and crosses[0].get_offsets().tolist() == [[2, 60], [3, 45]]
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plot_loop_and_control({}, {})
    with pytest.raises(ValueError, match="'stochastic', which loop_returns does not hold"):
        plot_loop_and_control(loop, {"stochastic": {2: 10}})
    candidates = np.random.default_rng(0).uniform(-1, 1, size=(50, 4))
    measured = StartDisagreement(candidates=candidates, disagreement=np.linspace(0.01, 1, 50), best=candidates[-1])
    fig = plot_start_disagreement(measured, {"start data": {"states": candidates[:5]}, "episode": {"states": candidates[5:8]}})
    assert len(fig.axes) == 3  # two panels and the colour bar
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["start data (5)", "episode (3)", "most disagreed candidate"]
    plt.close(fig)
    with pytest.raises(ValueError, match="at most 4 datasets"):
        plot_start_disagreement(measured, {str(i): {"states": candidates} for i in range(5)})


# -- the benchmark's control and guided loop, on a tiny budget ---------------------------------------
def test_the_benchmark_runs_the_control_and_the_guided_loop(capsys):
    from benchmarks import closing_the_loop as bench

    args = ["--start-sizes", "20", "--iterations", "2", "--train-steps", "5", "--max-steps", "3", "--models", "ensemble", "--control", "--guided", "--json"]
    assert bench.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    plain, guided = report["runs"]
    assert (plain["collection"], guided["collection"]) == ("plain", "guided")
    assert list(plain["control_returns"]) == ["2"] and report["control_agents_that_fell"].endswith("of 1")
    # the guided loop's first test episode is the plain loop's first episode: same model, same seed
    assert guided["returns"][0] == plain["returns"][0] and guided["trained_on"][0] == 20
    if guided["returns"][0] < 3:  # it fell: a collection episode from the most disagreed start was added
        assert guided["collection_episodes"] and guided["trained_on"][1] == 20 + guided["collection_episodes"][0]["steps"]
    assert set(report["iterations_to_success"]) == {"plain", "guided"} and set(report["median_loop_seconds"]) == {"ensemble", "ensemble, guided"}


# -- the student's own earlier code ------------------------------------------------------------
def test_own_code_loads_the_definitions_of_a_notebook_and_nothing_else(tmp_path, monkeypatch, capsys):
    # as notebook 4 runs in solutions/04_closing_the_loop: notebook 3 is the reference solution next to it
    monkeypatch.chdir(ROOT / "solutions" / "04_closing_the_loop")
    EnsembleModel, plan = load_own_code("03_ensemble", "EnsembleModel", "ensemble_cem_plan")
    ensemble = EnsembleModel(n_members=2)
    assert ensemble.predict_delta(torch.zeros(2, 3, 4), torch.zeros(3, 1)).shape == (2, 3, 4)
    assert plan(ensemble.predict_delta, torch.zeros(4), n_members=2, n_samples=20, n_elite=5, n_iters=1).shape == (1,)
    assert "torch" not in capsys.readouterr().out  # the setup cell's print is not repeated
    # the release's stubs load, and say what is missing when used
    Stub = load_own_code("03_ensemble", "EnsembleModel", path=ROOT / "notebooks" / "03_ensemble" / "03_ensemble.ipynb")
    with pytest.raises(NotImplementedError):
        Stub().predict_delta(torch.zeros(5, 3, 4), torch.zeros(3, 1))


def test_own_code_says_where_it_looked_and_which_cell_failed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OwnCodeMissing, match=r"03_ensemble\.ipynb was not found .*notebooks/03_ensemble/ next to this notebook's folder"):
        load_own_code("03_ensemble", "EnsembleModel")
    assert load_own_code_or_none("03_ensemble", "EnsembleModel") is None and "Left out:" in capsys.readouterr().out
    broken = nbformat.read(str(ROOT / "notebooks" / "03_ensemble" / "03_ensemble.ipynb"), as_version=4)
    solution = next(i for i, cell in enumerate(broken.cells) if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code")
    broken.cells[solution].source = "1 / 0"
    path = tmp_path / "03_ensemble.ipynb"
    nbformat.write(broken, str(path))
    with pytest.raises(OwnCodeError, match=rf"cell {solution + 1} of .* raised ZeroDivisionError"):
        load_own_code("03_ensemble", "EnsembleModel")
    with pytest.raises(OwnCodeMissing, match="does not define NoSuchModel"):
        load_own_code("03_ensemble", "NoSuchModel", path=ROOT / "notebooks" / "03_ensemble" / "03_ensemble.ipynb")


# -- grading -----------------------------------------------------------------------------------
def test_only_course_cells_tagged_not_run_while_grading_are_skipped():
    tagged = nbformat.v4.new_code_cell("train()", metadata={"tags": [NOT_RUN_TAG]})
    solution = nbformat.v4.new_code_cell("def f(): ...", metadata={"tags": [NOT_RUN_TAG], "nbgrader": {"solution": True, "grade_id": "f"}})
    assert is_not_run_while_grading(tagged) and not is_not_run_while_grading(solution)
    assert not is_not_run_while_grading(nbformat.v4.new_code_cell("train()"))
    release = nbformat.read(str(ROOT / "notebooks" / "04_closing_the_loop" / "04_closing_the_loop.ipynb"), as_version=4)
    skipped = [cell.id for cell in release.cells if is_not_run_while_grading(cell)]
    # everything that loads or uses notebook 3's code, and nothing the checks call
    assert "code-own" in skipped and "code-loop-run" in skipped and not {"add-episode", "loop", "check-helpers", "setup"} & set(skipped)
    # every course cell that only teaches (training, episodes, plots) is skipped
    assert {"code-start", "code-control", "code-returns", "code-coverage", "code-disagreement", "code-guided"} <= set(skipped)


def test_no_cell_run_while_grading_needs_a_variable_only_a_skipped_cell_defines():
    source = nbformat.read(str(ROOT / "solutions" / "04_closing_the_loop" / "04_closing_the_loop.ipynb"), as_version=4)
    code_cells = [cell for cell in source.cells if cell.cell_type == "code"]

    def defined(cell) -> set[str]:
        tree = ast.parse(cell.source)
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        names |= {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        names |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}  # a function's parameters are its own
        return names | {
            alias.asname or alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names
        }

    run = [cell for cell in code_cells if not is_not_run_while_grading(cell)]
    only_skipped = set().union(*(defined(cell) for cell in code_cells if is_not_run_while_grading(cell))) - set().union(*(defined(cell) for cell in run))
    for cell in run:
        used = {node.id for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        unguarded = {name for name in used & only_skipped if f'"{name}" in globals()' not in cell.source} - set(dir(builtins))
        assert not unguarded, f"cell {cell.id} uses {sorted(unguarded)}, which only cells skipped while grading define"


@pytest.mark.parametrize(
    "mistake, hint",
    [
        (
            lambda old, ep: {**checks.added(old, ep), "next_states": np.concatenate([old["next_states"], ep["states"][:-1]])},
            "Each new next state equals its state",
        ),
        (
            lambda old, ep: {
                k: np.concatenate([old[k], v]) for k, v in (("states", ep["states"]), ("actions", ep["actions"]), ("next_states", ep["states"][1:]))
            },
            "One transition too many",
        ),
        (lambda old, ep: checks.added({k: old[k][:0] for k in old}, ep), "The old transitions are gone"),
        (lambda old, ep: {k: np.concatenate([checks.added(old, ep)[k][len(old["states"]) :], old[k]]) for k in old}, "come first"),
        (
            lambda old, ep: {
                **checks.added(old, ep),
                "states": np.concatenate([old["states"], ep["states"][1:]]),
                "next_states": np.concatenate([old["next_states"], ep["states"][:-1]]),
            },
            "shifted by one step",
        ),
    ],
)
def test_the_checker_names_the_add_episode_mistake(mistake, hint):
    old, episode = checks.visible_dataset(), checks.visible_episode(10, 4)
    got = mistake(old, episode)
    assert not checks.same(got, checks.added(old, episode))
    assert hint in checks.explain_difference(got, old, episode)


def test_the_return_check_starts_from_an_agent_that_falls():
    # The check's promise (its docstring): the loop must repair a failing agent, not confirm a good one.
    start = collect_reset_only(checks.SMALL_DATASET_SIZE, seed=checks.SMALL_DATASET_SEED, progress=False)
    torch.set_num_threads(1)
    episode = checks._real_episode(checks._train_reference(start, 0), 0)
    assert episode["terminated"] and len(episode["actions"]) < checks.LOOP_EPISODE_STEPS
