import numpy as np
import pytest
import torch

from mbrl_helpers.data import load_dataset
from mbrl_helpers.lqr import (
    LinearController,
    cost_matrix_from_data,
    cost_matrix_from_simulator,
    fit_linear_dynamics,
    lqr_gain,
    near_upright,
    solve_riccati,
)
from mbrl_helpers.reward import COST_MATRIX, compute_rewards


def test_cost_matrix_constant_is_the_derivation_from_the_shipped_data():
    # data/transitions.npz -> near-upright transitions -> least-squares A, B -> Riccati. The constant
    # holds every digit; only the linear algebra's rounding may differ from machine to machine.
    np.testing.assert_allclose(cost_matrix_from_data(load_dataset()), COST_MATRIX, rtol=1e-9)


def test_the_fit_uses_the_near_upright_transitions_in_which_the_pole_stays_up():
    dataset = load_dataset()
    keep = near_upright(dataset)
    assert keep.sum() == 2102
    assert np.all(np.abs(dataset["states"][keep, 1]) < 0.1) and not dataset["terminated"][keep].any()


def test_the_data_cost_matrix_is_within_five_percent_of_the_simulators():
    simulator = cost_matrix_from_simulator()
    assert np.max(np.abs(COST_MATRIX - simulator) / np.abs(simulator)) < 0.05


def test_cost_matrix_is_symmetric_positive_definite():
    np.testing.assert_array_equal(COST_MATRIX, COST_MATRIX.T)
    assert np.all(np.linalg.eigvalsh(COST_MATRIX) > 0)


def test_the_fit_recovers_a_known_linear_system():
    rng = np.random.default_rng(0)
    A = np.eye(4) + 0.1 * rng.standard_normal((4, 4))
    B = rng.standard_normal((4, 1))
    states, actions = rng.standard_normal((200, 4)), rng.standard_normal((200, 1))
    fitted_A, fitted_B = fit_linear_dynamics(states, actions, states @ A.T + actions @ B.T)
    np.testing.assert_allclose(fitted_A, A, atol=1e-10)
    np.testing.assert_allclose(fitted_B, B, atol=1e-10)
    with pytest.raises(ValueError, match=r"states \(N, S\)"):
        fit_linear_dynamics(states, actions[:, 0], states)


def test_riccati_solution_is_the_cost_to_go_of_its_own_controller():
    # A scalar system s' = 2 s + a with Q = R = 1: P solves P = 1 + 4P - 4P^2 / (1 + P), P = 2 + sqrt(5).
    A, B, Q, R = np.array([[2.0]]), np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0]])
    P = solve_riccati(A, B, Q, R)
    np.testing.assert_allclose(P, [[2 + np.sqrt(5)]], rtol=1e-10)
    K = lqr_gain(A, B, P, R)
    closed_loop = A - B @ K
    np.testing.assert_allclose(P, Q + K.T @ R @ K + closed_loop.T @ P @ closed_loop, rtol=1e-10)


def test_linear_controller_clips_to_the_action_limits():
    controller = LinearController(np.array([-1.0, -10.0, 0.0, 0.0]))
    np.testing.assert_allclose(controller(np.array([0.1, 0.01, 0.0, 0.0])), [0.2])
    assert controller(np.array([0.0, 1.0, 0.0, 0.0])).tolist() == [3.0]
    assert controller.plan(np.array([0.0, -1.0, 0.0, 0.0])).shape == (1,)


def test_reward_values_on_hand_made_states():
    states = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.1, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    P = COST_MATRIX
    expected = [0.0, -P[0, 0], -0.01 * P[1, 1], -(P[0, 0] + 2 * P[0, 1] + P[1, 1])]
    np.testing.assert_allclose(compute_rewards(states).numpy(), expected, rtol=1e-9)


def test_reward_prefers_the_upright_centre_and_penalises_the_rail():
    upright = torch.zeros(1, 4)
    tilted = torch.tensor([[0.0, 0.1, 0.0, 0.0]])
    at_rail = torch.tensor([[0.9, 0.0, 0.0, 0.0]])
    assert compute_rewards(upright) > compute_rewards(tilted)
    assert compute_rewards(upright) > compute_rewards(at_rail)


@pytest.mark.parametrize("shape", [(4,), (7, 4), (5, 7, 4), (2, 3, 7, 4)])
def test_reward_is_vectorised_over_leading_dimensions(shape):
    states = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    rewards = compute_rewards(states)
    assert rewards.shape == shape[:-1]
    flat = compute_rewards(states.reshape(-1, 4)).reshape(shape[:-1])
    torch.testing.assert_close(rewards, flat)


def test_reward_keeps_device_and_dtype():
    states = torch.zeros(3, 4, dtype=torch.float64)
    assert compute_rewards(states).dtype == torch.float64


def test_reward_rejects_a_wrong_last_dimension_with_a_hint():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\).*not the model's input"):
        compute_rewards(torch.zeros(10, 5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        compute_rewards(np.zeros((10, 4)))


def test_reward_is_minus_s_p_s_to_the_last_bit_and_calls_share_nothing_they_can_change():
    # compute_rewards keeps -P per dtype and device (it is called thousands of times a decision):
    # the values are those of the formula written out, and changing a result changes no later one.
    states = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))
    p = torch.as_tensor(COST_MATRIX, dtype=torch.float32)
    expected = -((states @ p) * states).sum(dim=-1)
    first = compute_rewards(states)
    assert torch.equal(first, expected)
    first.zero_()
    assert torch.equal(compute_rewards(states), expected)
