"""Notebook 4's plumbing: the reset-only start data, the disagreement along an episode, its plots,
loading a student's own earlier code, the grader's skipped cells, and the checker's reading of
add_episode mistakes. The checks themselves are graded on real notebooks in the catalogue
(tests/test_autograder_catalogue.py: the reference, three mistakes, an alternative, two cheats)."""
from __future__ import annotations

import json
import shutil
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
from mbrl_helpers.closing_the_loop import EpisodeDisagreement, collect_reset_only, disagreement_along_episode
from mbrl_helpers.own_code import OwnCodeError, OwnCodeMissing, load_own_code, load_own_code_or_none
from mbrl_helpers.plots import plot_data_coverage, plot_disagreement_along_episode, plot_returns_per_iteration

ROOT = Path(__file__).resolve().parent.parent


# -- the start data ----------------------------------------------------------------------------
def test_reset_only_data_repeat_bit_for_bit_and_stay_near_upright():
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
    assert not np.array_equal(collect_reset_only(300, seed=5, progress=False)["actions"], first["actions"])


# -- disagreement along an episode ---------------------------------------------------------------
def _episode(steps: int = 6) -> EpisodeResult:
    states = np.linspace(0, 1, steps + 1)[:, None] * np.array([1.0, 0.1, 0.5, 0.5])
    return EpisodeResult(seed=0, episode_return=steps - 1.0, states=states, actions=np.zeros((steps, 1), np.float32), decision_seconds=np.zeros(steps), terminated=True)


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
    empty = EpisodeResult(seed=0, episode_return=0.0, states=np.zeros((1, 4)), actions=np.zeros((0, 1), np.float32), decision_seconds=np.zeros(0), terminated=False)
    with pytest.raises(ValueError, match="no steps"):
        disagreement_along_episode(_members_apart(0.1), 3, empty, data, device="cpu")


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


@pytest.mark.parametrize(
    "mistake, hint",
    [
        (lambda old, ep: {**checks.added(old, ep), "next_states": np.concatenate([old["next_states"], ep["states"][:-1]])}, "Each new next state equals its state"),
        (lambda old, ep: {k: np.concatenate([old[k], v]) for k, v in (("states", ep["states"]), ("actions", ep["actions"]), ("next_states", ep["states"][1:]))}, "One transition too many"),
        (lambda old, ep: checks.added({k: old[k][:0] for k in old}, ep), "The old transitions are gone"),
        (lambda old, ep: {k: np.concatenate([checks.added(old, ep)[k][len(old["states"]):], old[k]]) for k in old}, "come first"),
        (lambda old, ep: {**checks.added(old, ep), "states": np.concatenate([old["states"], ep["states"][1:]]), "next_states": np.concatenate([old["next_states"], ep["states"][:-1]])}, "shifted by one step"),
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
    assert episode["terminated"] and len(episode["actions"]) < checks.RETURN_CHECK_STEPS
