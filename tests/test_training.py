import pytest
import torch

from mbrl_helpers import EnsembleLinear, ReplayBuffer, build_ensemble_mlp, build_mlp, train_model


def linear_system_buffer(n=2000, seed=0):
    """Transitions of a known linear system s' = s + 0.1 * (A s + b a)."""
    g = torch.Generator().manual_seed(seed)
    states, actions = torch.randn(n, 4, generator=g), torch.rand(n, 1, generator=g) * 6 - 3
    A = torch.tensor([[0.0, 0, 1, 0], [0, 0, 0, 1], [0, -2, 0, 0], [0, 20, 0, 0]])
    next_states = states + 0.1 * (states @ A.T + actions * torch.tensor([0.0, 0, 1, -2]))
    return ReplayBuffer(states, actions, next_states, device="cpu", seed=seed)


class TinyDeltaModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = build_mlp(5, 4, hidden_size=32)

    def loss(self, states, actions, next_states):
        return torch.nn.functional.mse_loss(self.net(torch.cat([states, actions], 1)), next_states - states)


def test_training_reduces_the_loss_and_returns_every_step():
    torch.manual_seed(0)
    losses = train_model(TinyDeltaModel(), linear_system_buffer(), steps=300, batch_size=64, progress=False)
    assert len(losses) == 300
    assert sum(losses[-20:]) / 20 < 0.1 * sum(losses[:20]) / 20


def test_training_stops_with_a_clear_error_when_the_loss_is_not_finite():
    class Broken(TinyDeltaModel):
        def loss(self, *batch):
            return super().loss(*batch) * float("nan")

    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        train_model(Broken(), linear_system_buffer(), steps=5, progress=False)


def test_training_uses_the_given_minibatch_sampler():
    calls = []

    def sampler(buffer, batch_size):
        calls.append(batch_size)
        return buffer.sample(batch_size)

    train_model(TinyDeltaModel(), linear_system_buffer(), steps=7, batch_size=16, sample_batch=sampler, progress=False)
    assert calls == [16] * 7


def test_ensemble_mlp_shapes_and_errors():
    net = build_ensemble_mlp(3, 5, 4, hidden_size=8)
    assert net(torch.zeros(3, 10, 5)).shape == (3, 10, 4)
    with pytest.raises(ValueError, match=r"expects input \(K=3, N, in\)"):
        EnsembleLinear(3, 5, 8)(torch.zeros(10, 5))
