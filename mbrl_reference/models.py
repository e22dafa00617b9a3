"""Reference dynamics models: each predicts the state change s' - s from (s, a).

Shapes: N samples (or B minibatch rows), K ensemble members, S = 4 state dims, A = 1 action dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbrl_helpers.buffer import ReplayBuffer
from mbrl_helpers.config import HIDDEN_SIZE, N_HIDDEN, N_MEMBERS
from mbrl_helpers.env import ACTION_DIM, STATE_DIM
from mbrl_helpers.networks import build_ensemble_mlp, build_mlp

SIGMA_MIN, SIGMA_MAX = 1e-8, 10.0


class DeterministicModel(nn.Module):
    """f_theta(s, a) = predicted s' - s: one point estimate, trained with MSE on the deltas."""

    def __init__(self, state_dim: int = STATE_DIM, action_dim: int = ACTION_DIM, hidden_size: int = HIDDEN_SIZE, n_hidden: int = N_HIDDEN):
        super().__init__()
        self.net = build_mlp(state_dim + action_dim, state_dim, hidden_size, n_hidden)

    def predict_delta(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """states (N, S), actions (N, A) -> predicted state changes (N, S)."""
        return self.net(torch.cat([states, actions], dim=-1))

    def loss(self, states: torch.Tensor, actions: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        """Mean squared error between the predicted and the true state change (a scalar)."""
        return F.mse_loss(self.predict_delta(states, actions), next_states - states)


class StochasticModel(nn.Module):
    """Predicts Normal(mu, sigma) over the state change; one output of 2S split into mu and log_sigma."""

    def __init__(self, state_dim: int = STATE_DIM, action_dim: int = ACTION_DIM, hidden_size: int = HIDDEN_SIZE, n_hidden: int = N_HIDDEN):
        super().__init__()
        self.net = build_mlp(state_dim + action_dim, 2 * state_dim, hidden_size, n_hidden)

    def distribution_params(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """states (N, S), actions (N, A) -> (mu (N, S), sigma (N, S)), sigma = clamp(exp(log_sigma), 1e-8, 10)."""
        out = self.net(torch.cat([states, actions], dim=-1))
        mu, log_sigma = torch.chunk(out, 2, dim=-1)
        sigma = torch.clamp(torch.exp(log_sigma), min=SIGMA_MIN, max=SIGMA_MAX)
        return mu, sigma

    def predict_delta(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One sample of the state change from Normal(mu, sigma), shape (N, S) (torch's global RNG)."""
        mu, sigma = self.distribution_params(states, actions)
        return torch.distributions.Normal(mu, sigma).sample()

    def loss(self, states: torch.Tensor, actions: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood of the true delta without the constant log(2 pi)/2, averaged."""
        mu, sigma = self.distribution_params(states, actions)
        target = next_states - states
        return ((target - mu) ** 2 / (2 * sigma**2) + torch.log(sigma)).mean()


class EnsembleModel(nn.Module):
    """K deterministic delta models, independently initialised, evaluated in one batched pass."""

    def __init__(
        self,
        n_members: int = N_MEMBERS,
        state_dim: int = STATE_DIM,
        action_dim: int = ACTION_DIM,
        hidden_size: int = HIDDEN_SIZE,
        n_hidden: int = N_HIDDEN,
    ):
        super().__init__()
        self.n_members = n_members
        self.net = build_ensemble_mlp(n_members, state_dim + action_dim, state_dim, hidden_size, n_hidden)

    def predict_delta(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """states (K, N, S) and actions (N, A), shared by all members -> deltas (K, N, S).

        Actions of shape (K, N, A), one set per member, are accepted too (training uses them).
        """
        if actions.dim() == 2:
            actions = actions.expand(self.n_members, -1, -1)
        return self.net(torch.cat([states, actions], dim=-1))

    def loss(self, states: torch.Tensor, actions: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        """Sum over members of each member's MSE on its own minibatch: inputs (K, B, .), row k for member k."""
        squared_errors = (self.predict_delta(states, actions) - (next_states - states)) ** 2  # (K, B, S)
        return squared_errors.mean(dim=(1, 2)).sum()


def sample_member_batches(buffer: ReplayBuffer, batch_size: int, n_members: int = N_MEMBERS):
    """One independently drawn minibatch per ensemble member, stacked: three tensors (K, B, .)."""
    batches = [buffer.sample(batch_size) for _ in range(n_members)]
    return tuple(torch.stack(parts) for parts in zip(*batches))
