"""The known reward the planner scores predicted states with.

    r(s) = -s^T P s

P is the cost-to-go matrix of the linear-quadratic regulator (LQR) of a linear model s' ≈ A s + B a
fitted by least squares to the course's own offline data near upright, with state cost
Q = diag(1, 10, 0.1, 0.1) on [x, angle, x_dot, angle_dot] and action cost R = 0.1: s^T P s is the
total future cost of that linear controller from s (`mbrl_helpers.lqr` derives it and explains it).
So a state the planner reaches at the end of a short horizon (0.5 s) is scored by how well the
whole future can go from there. Simpler rewards fail here: an alive indicator or an angle-only
reward lets the cart drift to the rail at |x| = 1, because bringing the cart back needs the pole
first tipped the other way, which a 0.5 s horizon cannot see.

P is shipped as a constant, so that planning needs neither scipy nor the data; it is exactly
`mbrl_helpers.lqr.cost_matrix_from_data()` on data/transitions.npz, and tests/test_reward.py
derives it again and compares.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from mbrl_helpers.env import STATE_DIM

# mbrl_helpers.lqr.cost_matrix_from_data() on the shipped data, every digit (tests/test_reward.py checks it).
COST_MATRIX = np.array(
    [
        [12.026894320438794, 15.252069275539005, 6.120708598228145, 2.8894934432268986],
        [15.252069275539005, 55.84252262082546, 13.658057601520309, 7.381931952203139],
        [6.120708598228145, 13.658057601520309, 5.584344027847517, 2.669167356146194],
        [2.8894934432268986, 7.381931952203139, 2.669167356146194, 1.459592456229076],
    ]
)


@functools.lru_cache(maxsize=16)
def _negated_cost_matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # -P, made once per dtype and device: a planner calls compute_rewards thousands of times a
    # second, and converting the NumPy constant (and negating) each time cost half of the call.
    # Negation is exact, so s (-P) s is -(s P s) to the last bit.
    return -torch.as_tensor(COST_MATRIX, dtype=dtype, device=device)


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
    negated = _negated_cost_matrix(states.dtype, states.device)
    if states.dim() == 2:
        return ((states @ negated) * states).sum(dim=-1)
    flat = states.reshape(-1, STATE_DIM)  # one (M, 4) @ (4, 4) matmul whatever the leading dims
    return ((flat @ negated) * flat).sum(dim=-1).reshape(states.shape[:-1])
