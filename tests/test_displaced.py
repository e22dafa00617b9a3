"""The evaluation that separates the models: displaced starts, and the simulator as a model."""

import numpy as np
import pytest
import torch

from mbrl_helpers import DISPLACED_STARTS, SimulatorModel, evaluate_displaced_starts, horizon_sweep, make_env, run_episode, set_env_state
from mbrl_helpers.prediction import LQR_GAIN  # discrete LQR gain of the linearised 10 Hz simulator
from mbrl_reference import cem_plan


def lqr(state):
    return -LQR_GAIN @ state


def full_push(state):
    return np.array([3.0])


# --- the starts --------------------------------------------------------------------------------


@pytest.mark.parametrize("start", DISPLACED_STARTS)
def test_a_linear_controller_recovers_from_every_displaced_start(start):
    result = run_episode(lqr, seed=0, progress=False, start_state=np.array(start))
    assert result.episode_return == 1000 and not result.terminated
    np.testing.assert_allclose(result.states[0], start)
    assert np.abs(result.states[-1]).max() < 0.05  # back near the centre and at rest, not just still upright


def test_the_starts_are_displaced_and_distinct():
    starts = np.array(DISPLACED_STARTS)
    assert starts.shape[1] == 4 and len(np.unique(starts, axis=0)) == len(starts) >= 6
    assert np.all(np.abs(starts).max(axis=1) >= 0.15)  # all well beyond the reset's 0.01
    assert np.all(np.abs(starts[:, 0]) < 0.9) and np.all(np.abs(starts[:, 1]) < 0.2)


# --- the table ---------------------------------------------------------------------------------


def test_the_table_counts_successes_and_returns_per_seed_and_start():
    calls = []

    def lucky_on_seed_0(seed):  # a model that trains well with seed 0 only
        calls.append(seed)
        return lqr if seed == 0 else full_push

    table = evaluate_displaced_starts(
        {"lqr": lambda seed: lqr, "push": lambda seed: full_push, "lucky": lucky_on_seed_0}, training_seeds=(0, 1, 2), max_steps=20, progress=False
    )
    n_starts = len(DISPLACED_STARTS)
    assert calls == [0, 1, 2]  # one agent per training seed, shared by all the starts
    assert table["lqr"].success_rate == 1.0 and table["lqr"].mean_return == 20.0
    assert table["lqr"].returns.shape == (3, n_starts)
    assert table["push"].success_rate == 0.0 and np.all(table["push"].returns < 20)
    lucky = table["lucky"]
    assert lucky.success_rate == pytest.approx(1 / 3)
    np.testing.assert_array_equal(lucky.returns[0], 20.0)
    np.testing.assert_array_equal(lucky.returns[1:], table["push"].returns[1:])
    assert lucky.mean_return == pytest.approx((20 * n_starts + table["push"].returns[1:].sum()) / (3 * n_starts))
    assert set(lucky.as_dict()) == {"success_rate", "mean_return", "returns"}
    assert lucky.as_dict()["returns"] == lucky.returns.tolist()


def test_the_table_repeats_exactly():
    noisy = lambda seed: lambda state: lqr(state) + np.random.normal(size=1)  # uses the seeded global NumPy RNG
    first, second = (evaluate_displaced_starts({"noisy": noisy}, training_seeds=(3, 4), max_steps=15, progress=False) for _ in range(2))
    np.testing.assert_array_equal(first["noisy"].returns, second["noisy"].returns)


# --- the simulator as a model ------------------------------------------------------------------


def test_the_simulator_predicts_exactly_what_env_step_does():
    rng = np.random.default_rng(0)
    states = rng.uniform([-0.9, -0.2, -1.0, -1.0], [0.9, 0.2, 1.0, 1.0], size=(30, 4))
    actions = rng.uniform(-3, 3, size=(30, 1))
    deltas = SimulatorModel().predict_delta(torch.as_tensor(states), torch.as_tensor(actions)).numpy()
    env = make_env()
    env.reset(seed=0)
    for state, action, delta in zip(states, actions, deltas):
        set_env_state(env, state)
        next_state, *_ = env.step(action)
        np.testing.assert_allclose(delta, next_state - state, rtol=0, atol=1e-6)
    env.close()


def test_the_simulator_keeps_dtype_device_and_leading_shape():
    states = torch.zeros(2, 3, 4)
    deltas = SimulatorModel().predict_delta(states, torch.ones(2, 3, 1))
    assert deltas.shape == (2, 3, 4) and deltas.dtype == torch.float32 and deltas.device == states.device
    assert torch.all(deltas[..., 2] > 0)  # pushed right, the cart speeds up to the right


def test_the_simulator_needs_one_action_per_state():
    with pytest.raises(ValueError, match="one action per state"):
        SimulatorModel().predict_delta(torch.zeros(3, 4), torch.zeros(2, 1))


def test_cem_plans_with_the_simulator_as_its_model():
    returns = horizon_sweep(
        cem_plan,
        SimulatorModel().predict_delta,
        horizons=(5,),
        starts=DISPLACED_STARTS[4:5],  # the pole leaning towards the centre: 50 samples recover it (not so from x = 0.7)
        max_steps=10,
        progress=False,
        device="cpu",
        n_samples=50,
        n_elite=5,
    )
    assert returns == {5: [10.0]}


# --- the horizon sweep -------------------------------------------------------------------------


def test_the_horizon_sweep_plans_at_each_horizon_from_each_start():
    seen = []

    def lqr_plan(predict_delta, state, horizon):
        seen.append(horizon)
        return torch.as_tensor(lqr(state.double().numpy()))

    returns = horizon_sweep(lqr_plan, predict_delta=None, horizons=(5, 10), starts=DISPLACED_STARTS[:3], max_steps=7, progress=False)
    assert returns == {5: [7.0] * 3, 10: [7.0] * 3}
    assert seen == [5] * 21 + [10] * 21
