"""What both benchmarks share: building, training and wrapping the three reference agents."""

from __future__ import annotations

import time

import torch

from mbrl_helpers import N_MEMBERS, TRAIN_STEPS, MPCAgent, ReplayBuffer, load_dataset, seed_everything, train_model
from mbrl_reference import DeterministicModel, EnsembleModel, StochasticModel, cem_plan, ensemble_cem_plan, sample_member_batches

MODEL_KINDS = ("deterministic", "stochastic", "ensemble")


def build_model(kind: str) -> torch.nn.Module:
    return {"deterministic": DeterministicModel, "stochastic": StochasticModel, "ensemble": EnsembleModel}[kind]()


def build_agent(kind: str, model: torch.nn.Module, **cem_settings) -> MPCAgent:
    if kind == "ensemble":
        return MPCAgent(ensemble_cem_plan, model.predict_delta, n_members=N_MEMBERS, **cem_settings)
    return MPCAgent(cem_plan, model.predict_delta, **cem_settings)


def train_reference(kind: str, dataset: dict | None = None, seed: int = 0, steps: int | None = None, progress: bool = False) -> tuple[torch.nn.Module, float]:
    """Train one reference model on the shipped dataset; returns (model, training seconds)."""
    dataset = dataset if dataset is not None else load_dataset()
    seed_everything(seed)
    model = build_model(kind)
    buffer = ReplayBuffer.from_dataset(dataset, seed=seed)
    sample_batch = sample_member_batches if kind == "ensemble" else None
    start = time.perf_counter()
    train_model(model, buffer, steps=steps or TRAIN_STEPS, sample_batch=sample_batch, progress=progress)
    return model, time.perf_counter() - start
