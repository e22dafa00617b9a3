"""The MPC evaluation loop on the real environment."""

import numpy as np
import pytest
import torch

from mbrl_helpers import MPCAgent, evaluate, run_episode
from mbrl_helpers.prediction import LQR_GAIN  # discrete LQR gain of the linearised 10 Hz simulator
from mbrl_reference import DeterministicModel, cem_plan


def lqr(state):
    return -LQR_GAIN @ state


def test_a_linear_controller_balances_a_full_episode():
    result = run_episode(lqr, seed=0, progress=False)
    assert result.episode_return == 1000 and result.steps == 1000 and not result.terminated
    assert result.states.shape == (1001, 4) and result.actions.shape == (1000, 1)
    assert result.decision_seconds.shape == (1000,)


def test_doing_nothing_falls_and_is_reported_as_terminated():
    result = run_episode(lambda state: np.zeros(1), seed=0, progress=False)
    assert result.terminated and result.episode_return < 100
    assert abs(result.states[-1, 1]) > 0.2
    # the step in which the pole falls earns nothing, and the words say so
    assert result.episode_return == result.steps - 1
    assert result.outcome == f"return {result.steps - 1}: the pole fell in step {result.steps}, which earns no reward"


def test_a_full_episode_is_described_as_upright_throughout():
    result = run_episode(lqr, seed=1, max_steps=20, progress=False)
    assert result.outcome == "return 20: upright for all 20 steps"


def test_episodes_repeat_exactly_from_their_seed():
    noisy = lambda state: lqr(state) + np.random.normal(size=1)  # uses the seeded global NumPy RNG
    first, second = (run_episode(noisy, seed=4, max_steps=50, progress=False) for _ in range(2))
    np.testing.assert_array_equal(first.states, second.states)


def test_mpc_agent_with_the_reference_cem_runs_end_to_end():
    torch.manual_seed(0)
    model = DeterministicModel().eval()
    agent = MPCAgent(cem_plan, model.predict_delta, device="cpu", n_samples=50, n_elite=5, n_iters=2)
    action = agent.plan(np.zeros(4))
    assert isinstance(action, np.ndarray) and action.shape == (1,)
    result = run_episode(agent, seed=0, max_steps=5, progress=False)
    assert 1 <= result.steps <= 5 and np.all(np.abs(result.actions) <= 3)


def test_evaluate_summarises_several_seeds():
    summary = evaluate(lqr, seeds=[0, 1], max_steps=30, progress=False)
    assert summary.mean_return == summary.min_return == 30
    assert [e.seed for e in summary.episodes] == [0, 1]
    assert set(summary.as_dict()) >= {"mean_return", "min_return", "episodes", "median_decision_ms"}


@pytest.mark.parametrize("bad_output, message", [(np.zeros(2), "one action of shape"), (np.array([np.nan]), "non-finite")])
def test_a_broken_planner_gets_a_clear_error(bad_output, message):
    with pytest.raises(ValueError, match=message):
        run_episode(lambda state: bad_output, seed=0, max_steps=3, progress=False)


def test_an_episode_can_start_from_a_given_state():
    start = np.array([0.5, 0.1, 0.0, 0.0])
    result = run_episode(lqr, seed=0, max_steps=5, progress=False, start_state=start)
    np.testing.assert_allclose(result.states[0], start)
    other_seed = run_episode(lqr, seed=1, max_steps=5, progress=False, start_state=start)
    np.testing.assert_array_equal(result.states, other_seed.states)  # the start replaces the seeded reset
