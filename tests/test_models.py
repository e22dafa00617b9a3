"""The reference models' losses and predictions against hand computations."""

import math

import pytest
import torch
from torch.distributions import Normal

from mbrl_helpers import ReplayBuffer
from mbrl_reference import DeterministicModel, EnsembleModel, StochasticModel, sample_member_batches
from mbrl_reference.models import SIGMA_MAX, SIGMA_MIN


def batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.rand(n, 1, generator=g) * 6 - 3, torch.randn(n, 4, generator=g)


def test_deterministic_predicts_the_delta_from_state_and_action():
    torch.manual_seed(0)
    model = DeterministicModel()
    states, actions, _ = batch()
    expected = model.net(torch.cat([states, actions], dim=1))
    torch.testing.assert_close(model.predict_delta(states, actions), expected)
    assert model.predict_delta(states, actions).shape == (64, 4)


def test_deterministic_loss_is_mse_on_deltas_by_hand():
    torch.manual_seed(0)
    model = DeterministicModel()
    states, actions, next_states = batch()
    by_hand = ((model.predict_delta(states, actions) - (next_states - states)) ** 2).sum() / (64 * 4)
    torch.testing.assert_close(model.loss(states, actions, next_states), by_hand)


def test_stochastic_output_is_split_into_mu_and_clamped_sigma():
    torch.manual_seed(0)
    model = StochasticModel()
    states, actions, _ = batch()
    out = model.net(torch.cat([states, actions], dim=1))
    mu, sigma = model.distribution_params(states, actions)
    torch.testing.assert_close(mu, out[:, :4])
    torch.testing.assert_close(sigma, out[:, 4:].exp())


@pytest.mark.parametrize("log_sigma, expected", [(100.0, SIGMA_MAX), (-100.0, SIGMA_MIN), (0.0, 1.0)])
def test_sigma_clamp_at_both_ends(log_sigma, expected):
    model = StochasticModel()
    last = model.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(log_sigma)
    _, sigma = model.distribution_params(*batch(8)[:2])
    assert torch.all(sigma == torch.tensor(expected, dtype=torch.float32))
    assert torch.isfinite(model.loss(*batch(8)))


def test_stochastic_loss_is_gaussian_nll_without_the_constant():
    torch.manual_seed(0)
    model = StochasticModel()
    states, actions, next_states = batch()
    mu, sigma = model.distribution_params(states, actions)
    log_prob = Normal(mu, sigma).log_prob(next_states - states)
    expected = (-log_prob - 0.5 * math.log(2 * math.pi)).mean()
    torch.testing.assert_close(model.loss(states, actions, next_states), expected)
    gaussian_nll = torch.nn.GaussianNLLLoss(full=False)(mu, next_states - states, sigma**2)
    torch.testing.assert_close(model.loss(states, actions, next_states), gaussian_nll, rtol=1e-4, atol=1e-5)


def test_stochastic_prediction_samples_normal_mu_sigma():
    torch.manual_seed(0)
    model = StochasticModel()
    with torch.no_grad():
        model.net[-1].weight.zero_()
        model.net[-1].bias.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0] + [math.log(0.1)] * 4))
    states, actions, _ = batch(20000)
    draws = model.predict_delta(states, actions)
    # 20000 draws: the sample mean's std is 0.1 / sqrt(20000) = 7e-4; 0.005 is 7 sigma (false failure < 1e-11)
    torch.testing.assert_close(draws.mean(0), torch.tensor([0.5, -1.0, 0.0, 2.0]), atol=0.005, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.full((4,), 0.1), atol=0.005, rtol=0)


def test_ensemble_predicts_each_member_like_its_own_mlp():
    torch.manual_seed(0)
    model = EnsembleModel(n_members=3)
    states = torch.randn(3, 10, 4)
    actions = torch.randn(10, 1)
    out = model.predict_delta(states, actions)
    assert out.shape == (3, 10, 4)
    for k in range(3):
        x = torch.cat([states[k], actions], dim=1)
        for layer in model.net:
            x = x @ layer.weight[k] + layer.bias[k] if hasattr(layer, "weight") else layer(x)
        torch.testing.assert_close(out[k], x)


def test_ensemble_members_are_initialised_differently():
    model = EnsembleModel(n_members=4)
    first = model.net[0].weight
    assert all(not torch.equal(first[0], first[k]) for k in range(1, 4))


def test_ensemble_loss_is_the_sum_of_member_mses_on_their_own_rows():
    torch.manual_seed(0)
    model = EnsembleModel(n_members=3)
    states, actions, next_states = torch.randn(3, 32, 4), torch.randn(3, 32, 1), torch.randn(3, 32, 4)
    deltas = model.predict_delta(states, actions)
    by_hand = sum(((deltas[k] - (next_states[k] - states[k])) ** 2).mean() for k in range(3))
    torch.testing.assert_close(model.loss(states, actions, next_states), by_hand)


def test_ensemble_members_get_independent_minibatches():
    buffer = ReplayBuffer(torch.randn(1000, 4), torch.randn(1000, 1), torch.randn(1000, 4), device="cpu", seed=0)
    states, actions, next_states = sample_member_batches(buffer, batch_size=64, n_members=5)
    assert states.shape == (5, 64, 4) and actions.shape == (5, 64, 1) and next_states.shape == (5, 64, 4)
    for j in range(5):
        for k in range(j + 1, 5):
            assert not torch.equal(states[j], states[k])


def test_a_members_gradient_depends_only_on_its_own_minibatch():
    torch.manual_seed(0)
    model = EnsembleModel(n_members=3)
    states, actions, next_states = torch.randn(3, 16, 4), torch.randn(3, 16, 1), torch.randn(3, 16, 4)

    def grads(s):
        model.zero_grad()
        model.loss(s, actions, next_states).backward()
        return model.net[0].weight.grad.clone()

    before = grads(states)
    changed = states.clone()
    changed[2] += 1.0  # change member 2's minibatch only
    after = grads(changed)
    torch.testing.assert_close(before[:2], after[:2])
    assert not torch.allclose(before[2], after[2])
