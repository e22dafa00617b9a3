"""The planner's cost matrix P, derived from the offline data: a linear fit, then the Riccati equation.

Near upright the pendulum is almost linear, s' ≈ A s + B a. Given A and B, the discrete-time
linear-quadratic regulator (LQR) is the controller a = -K s that minimises the infinite sum of
stage costs  c(s, a) = sᵀ Q s + aᵀ R a  under that linear model. Its cost-to-go from a state is
quadratic, V(s) = sᵀ P s, where P solves the discrete algebraic Riccati equation (DARE)

    P = Q + Aᵀ P A - Aᵀ P B (R + Bᵀ P B)⁻¹ Bᵀ P A,      K = (R + Bᵀ P B)⁻¹ Bᵀ P A.

The course's reward is r(s) = -sᵀ P s (`mbrl_helpers.reward`). Here P comes from data alone:

1. `near_upright`: the transitions of the offline data in which the pole does not fall and
   |angle| < 0.1 rad, where the linear approximation holds (2,102 of the 5,000);
2. `fit_linear_dynamics`: A and B by least squares on them, no intercept;
3. `solve_riccati`: the DARE with Q = diag(1, 10, 0.1, 0.1) on [x, angle, x_dot, angle_dot], R = 0.1.

`cost_matrix_from_data()` runs all three on the shipped data; `mbrl_helpers.reward.COST_MATRIX`
is its result (tests/test_reward.py re-derives it). `cost_matrix_from_simulator()` derives P from
the MuJoCo simulator linearised by finite differences instead, only for comparison: the two
differ by about 4 %. `LinearController` is the LQR controller itself, a baseline for the agents.

Shapes: N transitions, S = 4 state dims, A = 1 action dim. Everything here is NumPy float64.
"""

from __future__ import annotations

import numpy as np

from mbrl_helpers.env import ACTION_DIM, ACTION_HIGH, ACTION_LOW, STATE_DIM, make_env, set_env_state

STATE_COST = np.diag([1.0, 10.0, 0.1, 0.1])  # Q (S, S): the angle weighs most, then the cart position
ACTION_COST = np.array([[0.1]])  # R (A, A)
NEAR_UPRIGHT_ANGLE = 0.1  # rad: transitions starting within this angle are used for the linear fit


def near_upright(dataset: dict, max_angle: float = NEAR_UPRIGHT_ANGLE) -> np.ndarray:
    """Boolean mask (N,): transitions whose start state has |angle| < max_angle and in which the pole does not fall.

    dataset: a dict with "states" (N, S) and "terminated" (N,), as `load_dataset()` returns.
    """
    states = np.asarray(dataset["states"])
    return (np.abs(states[:, 1]) < max_angle) & ~np.asarray(dataset["terminated"], dtype=bool)


def fit_linear_dynamics(states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of s' ≈ A s + B a (no intercept: the upright rest state is an equilibrium).

    states (N, S), actions (N, A), next_states (N, S). Returns A (S, S) and B (S, A), the minimisers
    of sum_i ||s'_i - A s_i - B a_i||².
    """
    states, actions, next_states = (np.asarray(x, dtype=np.float64) for x in (states, actions, next_states))
    if states.ndim != 2 or actions.ndim != 2 or next_states.shape != states.shape or len(actions) != len(states):
        raise ValueError(
            f"fit_linear_dynamics expects states (N, S), actions (N, A), next_states (N, S); got {states.shape}, {actions.shape}, {next_states.shape}"
        )
    inputs = np.hstack([states, actions])  # (N, S + A)
    weights, *_ = np.linalg.lstsq(inputs, next_states, rcond=None)  # (S + A, S): s' ≈ inputs @ weights
    n_state = states.shape[1]
    return weights[:n_state].T.copy(), weights[n_state:].T.copy()


def solve_riccati(A: np.ndarray, B: np.ndarray, Q: np.ndarray = STATE_COST, R: np.ndarray = ACTION_COST) -> np.ndarray:
    """P (S, S), the solution of the discrete algebraic Riccati equation for s' = A s + B a.

    A (S, S), B (S, A), Q (S, S), R (A, A). sᵀ P s is the LQR controller's total future cost
    sum_t (s_tᵀ Q s_t + a_tᵀ R a_t) from s, under the linear model. Needs scipy.
    """
    from scipy.linalg import solve_discrete_are

    return solve_discrete_are(A, B, Q, R)


def lqr_gain(A: np.ndarray, B: np.ndarray, P: np.ndarray, R: np.ndarray = ACTION_COST) -> np.ndarray:
    """K (A, S) of the LQR controller a = -K s that P is the cost-to-go of: (R + Bᵀ P B)⁻¹ Bᵀ P A."""
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


def cost_matrix_from_data(dataset: dict | None = None, max_angle: float = NEAR_UPRIGHT_ANGLE) -> np.ndarray:
    """P (S, S) derived from the offline data: `near_upright`, `fit_linear_dynamics`, `solve_riccati`.

    dataset: as `load_dataset()` returns (the shipped data when None).
    """
    if dataset is None:
        from mbrl_helpers.data import load_dataset

        dataset = load_dataset()
    keep = near_upright(dataset, max_angle)
    A, B = fit_linear_dynamics(dataset["states"][keep], dataset["actions"][keep], dataset["next_states"][keep])
    return solve_riccati(A, B)


def linearise_simulator(eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """A (S, S) and B (S, A) of the MuJoCo simulator around the upright rest state, by central differences."""
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


def cost_matrix_from_simulator() -> np.ndarray:
    """P (S, S) from the simulator linearised at upright: a comparison only, the course plans with the data's P."""
    return solve_riccati(*linearise_simulator())


class LinearController:
    """The LQR controller a = clip(-K s, -3, 3) as an agent: `run_episode(LinearController(K))`.

    gain: K, shape (A, S) or (S,). Calling it with a state (S,) returns the action (A,).
    """

    def __init__(self, gain: np.ndarray):
        self.gain = np.asarray(gain, dtype=np.float64).reshape(ACTION_DIM, STATE_DIM)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        return np.clip(-self.gain @ np.asarray(state, dtype=np.float64), ACTION_LOW, ACTION_HIGH)

    plan = __call__
