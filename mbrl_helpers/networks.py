"""Network building blocks the dynamics models are made of (not the models themselves)."""

from __future__ import annotations

import math

import torch
from torch import nn


def build_mlp(in_dim: int, out_dim: int, hidden_size: int, n_hidden: int = 2) -> nn.Sequential:
    """in_dim -> [Linear(hidden_size), ReLU] x n_hidden -> Linear(out_dim)."""
    layers, width = [], in_dim
    for _ in range(n_hidden):
        layers += [nn.Linear(width, hidden_size), nn.ReLU()]
        width = hidden_size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matmul (as in mbrl-lib).

    weight (K, in, out), bias (K, 1, out); input (K, N, in) -> output (K, N, out).
    Each member is initialised on its own, with nn.Linear's default distribution.
    """

    def __init__(self, n_members: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_dim))
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for both
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.weight.shape[0]:
            raise ValueError(f"EnsembleLinear expects input (K={self.weight.shape[0]}, N, in), got {tuple(x.shape)}")
        return torch.baddbmm(self.bias, x, self.weight)


def build_ensemble_mlp(n_members: int, in_dim: int, out_dim: int, hidden_size: int, n_hidden: int = 2) -> nn.Sequential:
    """K MLPs with build_mlp's shape, as one stack of EnsembleLinear layers: (K, N, in) -> (K, N, out)."""
    layers, width = [], in_dim
    for _ in range(n_hidden):
        layers += [EnsembleLinear(n_members, width, hidden_size), nn.ReLU()]
        width = hidden_size
    layers.append(EnsembleLinear(n_members, width, out_dim))
    return nn.Sequential(*layers)
