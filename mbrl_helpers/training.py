"""The training loop: Adam on a model's own `loss`, minibatches from the replay buffer."""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from mbrl_helpers.buffer import ReplayBuffer
from mbrl_helpers.config import BATCH_SIZE, LEARNING_RATE, TRAIN_STEPS

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def train_model(
    model: torch.nn.Module,
    buffer: ReplayBuffer,
    steps: int = TRAIN_STEPS,
    batch_size: int = BATCH_SIZE,
    lr: float = LEARNING_RATE,
    sample_batch: Callable[[ReplayBuffer, int], Batch] | None = None,
    progress: bool = True,
) -> list[float]:
    """Run `steps` Adam steps on `model.loss(states, actions, next_states)`; returns every step's loss.

    `sample_batch(buffer, batch_size)` draws the minibatch of each step; the default is
    `buffer.sample(batch_size)`. An ensemble passes a function that draws one minibatch per member.
    The model is moved to the buffer's device (CUDA when present) first.
    """
    sample_batch = sample_batch or (lambda buf, size: buf.sample(size))
    model.to(buffer.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    bar = tqdm(range(steps), desc=f"training {type(model).__name__}", disable=not progress)
    for step in bar:
        loss = model.loss(*sample_batch(buffer, batch_size))
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training {type(model).__name__}: the loss became {loss.item()} at step {step}. "
                "Check the loss function (a log of zero? sigma not clamped?) or lower the learning rate."
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 100 == 0:
            bar.set_postfix(loss=f"{loss.item():.3g}")
    model.eval()
    return losses
