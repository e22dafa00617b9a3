"""The known reward the planner scores predicted states with.

    r(s) = -s^T P s

P is the solution of the discrete algebraic Riccati equation (DARE) for the simulator linearised
at the upright state, with state cost Q = diag(1, 10, 0.1, 0.1) on [x, angle, x_dot, angle_dot]
and action cost R = 0.1. So -s^T P s is (minus) the cost-to-go of the optimal linear controller
from s: summing it over a short horizon (0.5 s) still rewards states from which the whole future
goes well. Simpler rewards fail here: an alive indicator or an angle-only reward lets the cart
drift to the rail at |x| = 1, because bringing the cart back needs the pole first tipped the other
way, which a 0.5 s horizon cannot see.

P is derived once by `derive_cost_matrix()` (finite differences on MuJoCo + scipy) and shipped as
a constant, so the notebooks need neither scipy nor the linearisation; a test re-derives it.
"""
from __future__ import annotations

import numpy as np
import torch

from mbrl_helpers.env import ACTION_DIM, STATE_DIM, make_env, set_env_state

STATE_COST = np.diag([1.0, 10.0, 0.1, 0.1])
ACTION_COST = np.array([[0.1]])

# Output of derive_cost_matrix(), rounded to 4 significant digits (tests/test_reward.py checks it).
COST_MATRIX = np.array(
    [
        [12.17, 15.68, 6.299, 2.952],
        [15.68, 58.09, 14.23, 7.664],
        [6.299, 14.23, 5.802, 2.756],
        [2.952, 7.664, 2.756, 1.498],
    ]
)


def compute_rewards(states: torch.Tensor) -> torch.Tensor:
    """Reward of each state: -s^T P s.

    states: (..., 4) tensor, any leading dimensions: (N, 4) for one model's N rollouts,
    (K, N, 4) for K ensemble members.
    Returns: (...) tensor, one reward per state, on the states' device and dtype. Always <= 0,
    and 0 only at the upright, centred, resting state.
    """
    if not isinstance(states, torch.Tensor):
        raise TypeError(f"compute_rewards expects a torch.Tensor, got {type(states).__name__}")
    if states.shape[-1] != STATE_DIM:
        raise ValueError(
            f"compute_rewards expects states of shape (..., {STATE_DIM}), got {tuple(states.shape)}: "
            "pass predicted next states, not the model's input (state + action)."
        )
    cost_matrix = torch.as_tensor(COST_MATRIX, dtype=states.dtype, device=states.device)
    flat = states.reshape(-1, STATE_DIM)  # one (M, 4) @ (4, 4) matmul whatever the leading dims
    return -((flat @ cost_matrix) * flat).sum(dim=-1).reshape(states.shape[:-1])


def linearise_simulator(eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of s' = A s + B a around the upright rest state, by central differences on MuJoCo."""
    env = make_env()
    env.reset(seed=0)

    def step_from(state: np.ndarray, action: float) -> np.ndarray:
        set_env_state(env, state)
        next_obs, *_ = env.step(np.array([action], dtype=np.float32))
        return next_obs.astype(np.float64)

    rest = np.zeros(STATE_DIM)
    A = np.zeros((STATE_DIM, STATE_DIM))
    for i in range(STATE_DIM):
        d = np.zeros(STATE_DIM)
        d[i] = eps
        A[:, i] = (step_from(rest + d, 0.0) - step_from(rest - d, 0.0)) / (2 * eps)
    B = ((step_from(rest, eps) - step_from(rest, -eps)) / (2 * eps)).reshape(STATE_DIM, ACTION_DIM)
    env.close()
    return A, B


def derive_cost_matrix() -> np.ndarray:
    """Solve the DARE for the linearised simulator; returns P (4, 4)."""
    from scipy.linalg import solve_discrete_are

    A, B = linearise_simulator()
    return solve_discrete_are(A, B, STATE_COST, ACTION_COST)
