"""A replay buffer over the offline transitions (s, a, s')."""

from __future__ import annotations

import numpy as np
import torch

from mbrl_helpers.env import ACTION_DIM, STATE_DIM, get_device


class ReplayBuffer:
    """Holds N transitions as tensors on one device and samples minibatches with replacement.

    Sampling draws from the buffer's own `torch.Generator`, seeded at construction, so the
    sequence of minibatches depends on `seed` alone, not on any other use of torch's global RNG.
    """

    def __init__(
        self,
        states: np.ndarray | torch.Tensor,
        actions: np.ndarray | torch.Tensor,
        next_states: np.ndarray | torch.Tensor,
        device: torch.device | str | None = None,
        seed: int = 0,
    ):
        self.device = torch.device(device) if device is not None else get_device()
        self.states = torch.as_tensor(np.asarray(states), dtype=torch.float32, device=self.device)
        self.actions = torch.as_tensor(np.asarray(actions), dtype=torch.float32, device=self.device)
        self.next_states = torch.as_tensor(np.asarray(next_states), dtype=torch.float32, device=self.device)
        n = len(self.states)
        expected = {"states": (n, STATE_DIM), "actions": (n, ACTION_DIM), "next_states": (n, STATE_DIM)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"ReplayBuffer: {name} must have shape {shape}, got {got}")
        if n == 0:
            raise ValueError("ReplayBuffer: no transitions given")
        # torch.randint on CUDA needs a CUDA generator; a CPU one keeps the draws device-independent.
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    @classmethod
    def from_dataset(cls, dataset: dict, device: torch.device | str | None = None, seed: int = 0) -> ReplayBuffer:
        """Build from the dict that `mbrl_helpers.data.load_dataset()` returns."""
        return cls(dataset["states"], dataset["actions"], dataset["next_states"], device=device, seed=seed)

    def __len__(self) -> int:
        return len(self.states)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (states (B, 4), actions (B, 1), next_states (B, 4)), drawn uniformly with replacement."""
        idx = torch.randint(len(self), (batch_size,), generator=self.generator).to(self.device)
        return self.states[idx], self.actions[idx], self.next_states[idx]
