"""The course's environment, seeding and device selection: the one home of each."""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import torch

ENV_ID = "InvertedPendulum-v5"
FRAME_SKIP = 5  # MuJoCo's timestep is 0.02 s, so 5 substeps give dt = 0.1 s (10 Hz control)
DT = 0.1
STATE_DIM = 4  # [cart x, pole angle, cart velocity, pole angular velocity]
ACTION_DIM = 1
ACTION_LOW, ACTION_HIGH = -3.0, 3.0
MAX_EPISODE_STEPS = 1000
STATE_NAMES = ("cart x", "pole angle", "cart velocity", "pole angular velocity")


def make_env(render_mode: str | None = None) -> gym.Env:
    """InvertedPendulum-v5 controlled at 10 Hz (dt = 0.1 s), 1000 steps at most."""
    env = gym.make(ENV_ID, frame_skip=FRAME_SKIP, render_mode=render_mode)
    assert abs(env.unwrapped.dt - DT) < 1e-9, f"expected dt={DT}, got {env.unwrapped.dt}"
    return env


def set_env_state(env: gym.Env, state: np.ndarray) -> np.ndarray:
    """Put the simulator in `state` ([x, angle, x_dot, angle_dot]) and return the observation.

    Call after `env.reset()`. Used to start data-collection rollouts away from the upright
    position, a region the reset distribution alone never visits.
    """
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (STATE_DIM,):
        raise ValueError(f"state must have shape ({STATE_DIM},), got {state.shape}")
    env.unwrapped.set_state(state[:2].copy(), state[2:].copy())
    return env.unwrapped._get_obs()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) in one call. Seed the env with `env.reset(seed=...)`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def get_device() -> torch.device:
    """CUDA when present, else CPU. Every notebook and script asks here, nowhere else."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
