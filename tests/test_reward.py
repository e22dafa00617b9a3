import numpy as np
import pytest
import torch

from mbrl_helpers.reward import COST_MATRIX, compute_rewards, derive_cost_matrix


def test_cost_matrix_constant_matches_a_fresh_riccati_solution():
    np.testing.assert_allclose(derive_cost_matrix(), COST_MATRIX, rtol=1e-3)


def test_cost_matrix_is_symmetric_positive_definite():
    np.testing.assert_array_equal(COST_MATRIX, COST_MATRIX.T)
    assert np.all(np.linalg.eigvalsh(COST_MATRIX) > 0)


def test_reward_values_on_hand_made_states():
    states = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.1, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    expected = [0.0, -12.17, -0.5809, -(12.17 + 2 * 15.68 + 58.09)]
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
