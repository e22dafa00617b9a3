"""How good is a learned model over more than one step? Open-loop prediction error and uncertainty.

A planner rolls its model forward several steps, feeding each prediction back in as the next
input, so small one-step errors compound. `held_out_trajectories` collects real trajectories the
model has never seen, `multi_step_errors` replays their actions through a model open-loop and
measures how far the prediction drifts at each horizon, and `predicted_uncertainty` sweeps one
state component to show where a model's predicted uncertainty grows (where the data is thin).
`predict_no_change` is the baseline a model must beat, and `as_one_member_ensemble` lets a
planner written for ensembles plan with a single model.

Every model is passed as a plain function, e.g. `model.predict_delta`, so any model works.
Shapes: M trajectories, L steps, K ensemble members, P sweep points, S = 4 state dims, A = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mbrl_helpers.env import ACTION_DIM, ACTION_HIGH, ACTION_LOW, DT, STATE_DIM, STATE_NAMES, get_device, make_env, set_env_state

PredictDelta = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DistributionParams = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

# Held-out policy: a noisy linear feedback controller, action = -LQR_GAIN @ state + noise.
# LQR_GAIN is the discrete-time LQR gain of this system at 10 Hz; without noise it balances the pole
# for the full 1000 steps. The noise makes the actions vary (their std is about 1) as the model's
# training data do, while the feedback keeps the pole up long enough for a multi-step comparison.
LQR_GAIN = np.array([-0.78, -6.81, -0.96, -1.08])
HELD_OUT_NOISE_STD = 0.5
# Half-widths of the box the start states are drawn from: [x, angle, x_dot, angle_dot]. It lies
# inside the training data's start box, so the errors measure compounding, not extrapolation.
HELD_OUT_START_BOX = np.array([0.5, 0.05, 0.5, 0.3])
HELD_OUT_SEED = 12345  # the training data use seed 2026 (mbrl_helpers.data.SEED)
HELD_OUT_POLICY = (
    f"start uniform in |x|<{HELD_OUT_START_BOX[0]}, |angle|<{HELD_OUT_START_BOX[1]}, "
    f"|x_dot|<{HELD_OUT_START_BOX[2]}, |angle_dot|<{HELD_OUT_START_BOX[3]}; "
    f"action = clip(-LQR_GAIN @ state + Normal(0, {HELD_OUT_NOISE_STD}), -3, 3); "
    "trajectories in which the pole falls are dropped"
)


def held_out_trajectories(n_trajectories: int = 20, length: int = 15, seed: int = HELD_OUT_SEED) -> dict:
    """Collect `n_trajectories` real trajectories of `length` steps in which the pole stays up.

    Policy (HELD_OUT_POLICY): each trajectory starts from a state drawn uniformly from
    HELD_OUT_START_BOX, set in the simulator, then applies a noisy LQR controller,
    action = clip(-LQR_GAIN @ state + noise, -3, 3). A trajectory in which the pole falls
    (|angle| > 0.2) before `length` steps is dropped and another one is drawn.

    Returns a dict of float32 arrays: states (M, L + 1, 4) (the start state, then the state after
    each action) and actions (M, L, 1), with M = n_trajectories and L = length. The same seed
    always gives the same trajectories.
    """
    if n_trajectories < 1 or length < 1:
        raise ValueError(f"n_trajectories and length must be at least 1, got {n_trajectories} and {length}")
    rng = np.random.default_rng(seed)
    env = make_env()
    all_states, all_actions = [], []
    max_attempts = 100 * n_trajectories
    try:
        for _ in range(max_attempts):
            env.reset(seed=int(rng.integers(2**31)))
            state = set_env_state(env, rng.uniform(-HELD_OUT_START_BOX, HELD_OUT_START_BOX))
            states, actions = [state], []
            for _ in range(length):
                action = -LQR_GAIN @ state + HELD_OUT_NOISE_STD * rng.standard_normal()
                action = np.clip(np.array([action], dtype=np.float32), ACTION_LOW, ACTION_HIGH)
                state, _, terminated, truncated, _ = env.step(action)
                states.append(state)
                actions.append(action)
                if terminated or truncated:
                    break
            if len(actions) == length and not terminated:
                all_states.append(states)
                all_actions.append(actions)
                if len(all_states) == n_trajectories:
                    break
    finally:
        env.close()
    if len(all_states) < n_trajectories:
        raise RuntimeError(
            f"held_out_trajectories: only {len(all_states)} of {n_trajectories} trajectories kept the pole up "
            f"for {length} steps in {max_attempts} attempts. Ask for a shorter length."
        )
    return {
        "states": np.asarray(all_states, dtype=np.float32),  # (M, L + 1, S)
        "actions": np.asarray(all_actions, dtype=np.float32),  # (M, L, A)
    }


@dataclass
class MultiStepErrors:
    """Open-loop prediction error of one model at each horizon h = 1..L (h steps = h * 0.1 s ahead)."""

    rmse: np.ndarray  # (L,): root-mean-square error over trajectories (and samples) and the 4 state dims
    rmse_per_dim: np.ndarray  # (L, 4): the same, for each state component separately
    spread: np.ndarray | None = None  # (L,): ensembles only: the members' disagreement, in the units of rmse
    spread_per_dim: np.ndarray | None = None  # (L, 4): ensembles only: the same, for each state component
    member_rmse_per_dim: np.ndarray | None = None  # (K, L, 4): ensembles only: each member's own rollout error

    @property
    def horizons(self) -> np.ndarray:
        """(L,): the prediction horizons in steps, 1..L."""
        return np.arange(1, len(self.rmse) + 1)

    @property
    def horizon_seconds(self) -> np.ndarray:
        """(L,): the prediction horizons in seconds, 0.1..L * 0.1."""
        return self.horizons * DT


def _check_trajectories(trajectories: dict) -> tuple[np.ndarray, np.ndarray]:
    """The states (M, L + 1, S) and actions (M, L, A) of `trajectories`, or a ValueError saying what is wrong."""
    if not isinstance(trajectories, dict) or not {"states", "actions"} <= set(trajectories):
        raise ValueError("trajectories must be a dict with 'states' and 'actions', as held_out_trajectories() returns")
    states, actions = np.asarray(trajectories["states"]), np.asarray(trajectories["actions"])
    if states.ndim != 3 or states.shape[2] != STATE_DIM:
        raise ValueError(f"trajectories['states'] must have shape (M, L + 1, {STATE_DIM}), got {states.shape}")
    n_trajectories, length = states.shape[0], states.shape[1] - 1
    if actions.shape != (n_trajectories, length, ACTION_DIM):
        raise ValueError(
            f"trajectories['actions'] must have shape (M, L, {ACTION_DIM}) = {(n_trajectories, length, ACTION_DIM)} "
            f"to match states {states.shape}, got {actions.shape}"
        )
    if length < 1:
        raise ValueError("trajectories must have at least one step (states of shape (M, 2, 4) or longer)")
    return states, actions


def _call_model(predict_delta: PredictDelta, states: torch.Tensor, actions: torch.Tensor, n_members: int | None) -> torch.Tensor:
    """predict_delta(states, actions), checked to return deltas of the same shape as `states`."""
    hint = "For an ensemble, pass n_members=K; for a single model, leave n_members out."
    try:
        deltas = predict_delta(states, actions)
    except RuntimeError as error:  # usually a shape mismatch inside the model
        raise ValueError(
            f"predict_delta failed on states {tuple(states.shape)} and actions {tuple(actions.shape)} (n_members={n_members}): {error}. {hint}"
        ) from error
    if not isinstance(deltas, torch.Tensor) or deltas.shape != states.shape:
        got = tuple(deltas.shape) if isinstance(deltas, torch.Tensor) else type(deltas).__name__
        raise ValueError(f"predict_delta must return deltas of shape {tuple(states.shape)} like its states, got {got}. {hint}")
    return deltas


@torch.no_grad()  # evaluation only reads the model
def multi_step_errors(
    predict_delta: PredictDelta,
    trajectories: dict,
    n_members: int | None = None,
    n_samples: int = 1,
    device: torch.device | str | None = None,
) -> MultiStepErrors:
    """Open-loop prediction error at horizons 1..L: start from each real start state, apply the recorded actions.

    The model sees the real state only once, at t = 0; after that it is fed its own predictions,
    s_hat_{t+1} = s_hat_t + predict_delta(s_hat_t, a_t), as a planner's rollout is. The error at
    horizon h compares s_hat_h with the real s_h.

    predict_delta: maps states (N, S) and actions (N, A) to deltas (N, S), e.g. `model.predict_delta`.
        For an ensemble, pass n_members=K: it then maps states (K, N, S) and actions (N, A) to (K, N, S)
        and every member rolls out its own prediction.
    trajectories: dict with states (M, L + 1, S) and actions (M, L, A), as held_out_trajectories() returns.
    n_samples: rollouts per trajectory, for a model whose predict_delta samples (a stochastic model);
        the squared errors are averaged over the samples.

    Returns MultiStepErrors: rmse (L,) is the root of the mean squared error over trajectories,
    samples and state dims. For an ensemble it is the error of the members' mean prediction, and
    spread (L,) is the members' standard deviation around that mean (root of the variance
    averaged over trajectories and state dims): the ensemble's own guess of its error;
    spread_per_dim (L, S) is the same per state component, and member_rmse_per_dim (K, L, S)
    the error of each member's own rollout, as if it were used alone.
    Runs on float32 tensors on `device` (default: get_device()), where the model must be.
    """
    true_states, actions = _check_trajectories(trajectories)
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    if n_members is not None and n_members < 1:
        raise ValueError(f"n_members must be a positive number of ensemble members or None, got {n_members}")
    device = torch.device(device) if device is not None else get_device()
    # Each trajectory repeated n_samples times, so all samples roll out in one batch of N = M * n_samples.
    true_states = torch.as_tensor(true_states, dtype=torch.float32, device=device).repeat_interleave(n_samples, dim=0)
    actions = torch.as_tensor(actions, dtype=torch.float32, device=device).repeat_interleave(n_samples, dim=0)
    length = actions.shape[1]

    state = true_states[:, 0]  # (N, S)
    if n_members is not None:
        state = state.expand(n_members, -1, -1)  # (K, N, S): every member starts from the real state
    predicted = []
    for t in range(length):
        state = state + _call_model(predict_delta, state, actions[:, t], n_members)
        predicted.append(state)
    predicted = torch.stack(predicted, dim=-2)  # (N, L, S), or (K, N, L, S) for an ensemble

    spread = spread_per_dim = member_rmse_per_dim = None
    if n_members is not None:
        member_variance = predicted.var(dim=0, unbiased=False)  # (N, L, S)
        spread = member_variance.mean(dim=(0, 2)).sqrt().cpu().numpy()  # (L,)
        spread_per_dim = member_variance.mean(dim=0).sqrt().cpu().numpy()  # (L, S)
        member_squared_errors = (predicted - true_states[:, 1:]) ** 2  # (K, N, L, S)
        member_rmse_per_dim = member_squared_errors.mean(dim=1).sqrt().cpu().numpy()  # (K, L, S)
        predicted = predicted.mean(dim=0)  # (N, L, S): the ensemble's mean prediction
    squared_errors = (predicted - true_states[:, 1:]) ** 2  # (N, L, S)
    return MultiStepErrors(
        rmse=squared_errors.mean(dim=(0, 2)).sqrt().cpu().numpy(),
        rmse_per_dim=squared_errors.mean(dim=0).sqrt().cpu().numpy(),
        spread=spread,
        spread_per_dim=spread_per_dim,
        member_rmse_per_dim=member_rmse_per_dim,
    )


def predict_no_change(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The "predict no change" baseline, delta = 0 for any state and action: a learned model must beat it.

    Its open-loop error at horizon h is how far the real state has moved in h steps, so a model
    whose error comes close to it has learned little about where the state goes.
    """
    return torch.zeros_like(states)


def as_one_member_ensemble(predict_delta: PredictDelta) -> PredictDelta:
    """A single model's predict_delta seen as an ensemble of one member, for a planner written for ensembles.

    The result maps states (1, N, S) and actions (N, A) to deltas (1, N, S) by calling
    predict_delta(states[0], actions) (N, S) -> (N, S), so an ensemble planner called with
    n_members=1 plans with a deterministic or stochastic model exactly as a single-model planner would.
    """

    def one_member(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if states.dim() != 3 or states.shape[0] != 1:
            raise ValueError(f"a one-member ensemble takes states of shape (1, N, S), got {tuple(states.shape)}: plan with n_members=1")
        if actions.dim() == 3:  # per-member actions (1, N, A)
            actions = actions[0]
        return predict_delta(states[0], actions).unsqueeze(0)

    return one_member


# Default sweep range of each state component: about twice the range the training data cover.
SWEEP_RANGES = {0: (-2.0, 2.0), 1: (-0.4, 0.4), 2: (-6.0, 6.0), 3: (-10.0, 10.0)}


@dataclass
class UncertaintySweep:
    """Predicted uncertainty along one state component, the others held at 0 (and the action at `action`)."""

    axis: int  # index of the swept state component (0 cart x, 1 pole angle, 2 cart velocity, 3 pole angular velocity)
    values: np.ndarray  # (P,): the swept values of that component
    action: float  # the action at every sweep point
    sigma: np.ndarray | None = None  # (P, S): the stochastic model's predicted std of each delta component
    ensemble_std: np.ndarray | None = None  # (P, S): std across ensemble members of each predicted delta component
    # A probabilistic ensemble (K stochastic models): its total std and the two parts it adds up from,
    # total variance = mean over members of sigma^2 (noise) + variance over members of mu (disagreement).
    probabilistic_std: np.ndarray | None = None  # (P, S): sqrt(aleatoric_std^2 + epistemic_std^2)
    probabilistic_aleatoric_std: np.ndarray | None = None  # (P, S): sqrt of the members' mean sigma^2
    probabilistic_epistemic_std: np.ndarray | None = None  # (P, S): std over members of their mu

    @property
    def axis_name(self) -> str:
        return STATE_NAMES[self.axis]


def _state_axis(axis: int | str) -> int:
    """The index of a state component given by index (0..3) or name ('cart x', 'pole angle', ...)."""
    if isinstance(axis, str):
        if axis not in STATE_NAMES:
            raise ValueError(f"unknown state component {axis!r}: use one of {STATE_NAMES} or an index 0..3")
        return STATE_NAMES.index(axis)
    if not 0 <= int(axis) < STATE_DIM:
        raise ValueError(f"axis must be a state index 0..{STATE_DIM - 1} or one of {STATE_NAMES}, got {axis}")
    return int(axis)


@torch.no_grad()
def predicted_uncertainty(
    distribution_params: DistributionParams | None = None,
    ensemble_predict_delta: PredictDelta | None = None,
    n_members: int | None = None,
    axis: int | str = "cart x",
    values: np.ndarray | None = None,
    n_points: int = 201,
    action: float = 0.0,
    device: torch.device | str | None = None,
    probabilistic_members: Sequence[DistributionParams] | None = None,
) -> UncertaintySweep:
    """Sweep one state component and ask the models how uncertain they are about the next delta.

    The sweep states are 0 in every component but `axis`, which takes `values` (default: n_points
    values evenly spread over SWEEP_RANGES[axis], twice the span of the training data).

    distribution_params: a stochastic model's states (P, S), actions (P, A) -> (mu (P, S), sigma (P, S)),
        e.g. `stochastic_model.distribution_params`; gives `sigma`, the noise the model predicts.
    ensemble_predict_delta, n_members: an ensemble's predict_delta, states (K, P, S) and actions
        (P, A) -> (K, P, S), and its K; gives `ensemble_std`, how much the members disagree.
    probabilistic_members: the distribution_params of K >= 2 stochastic models trained apart (a
        probabilistic ensemble); gives `probabilistic_std`, the std of the mixture of their
        Gaussians: total variance = mean_k sigma_k^2 + var_k mu_k, kept as its two parts as well.
    Pass any of them. Returns an UncertaintySweep with arrays (P,) and (P, S) on the CPU.
    """
    if distribution_params is None and ensemble_predict_delta is None and probabilistic_members is None:
        raise ValueError("pass distribution_params (a stochastic model's), ensemble_predict_delta with n_members, or probabilistic_members, or several")
    if probabilistic_members is not None and len(probabilistic_members) < 2:
        raise ValueError(f"probabilistic_members needs at least 2 stochastic models' distribution_params, got {len(probabilistic_members)}")
    if ensemble_predict_delta is not None and (n_members is None or n_members < 2):
        raise ValueError(f"ensemble_predict_delta needs n_members, the number of members (at least 2), got {n_members}")
    axis = _state_axis(axis)
    values = np.linspace(*SWEEP_RANGES[axis], n_points) if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
    device = torch.device(device) if device is not None else get_device()
    states = torch.zeros(len(values), STATE_DIM, device=device)
    states[:, axis] = torch.as_tensor(values, dtype=torch.float32, device=device)
    actions = torch.full((len(values), ACTION_DIM), float(action), device=device)

    sweep = UncertaintySweep(axis=axis, values=values, action=float(action))
    if distribution_params is not None:
        _, sigma = distribution_params(states, actions)
        if sigma.shape != states.shape:
            raise ValueError(f"distribution_params must return (mu, sigma), each of shape {tuple(states.shape)}; sigma has {tuple(sigma.shape)}")
        sweep.sigma = sigma.cpu().numpy()
    if ensemble_predict_delta is not None:
        member_states = states.expand(n_members, -1, -1)  # (K, P, S)
        deltas = _call_model(ensemble_predict_delta, member_states, actions, n_members)
        sweep.ensemble_std = deltas.std(dim=0, unbiased=False).cpu().numpy()
    if probabilistic_members is not None:
        mus, sigmas = [], []
        for member in probabilistic_members:
            mu, sigma = member(states, actions)
            if mu.shape != states.shape or sigma.shape != states.shape:
                raise ValueError(f"each probabilistic member must return (mu, sigma) of shape {tuple(states.shape)}")
            mus.append(mu)
            sigmas.append(sigma)
        aleatoric_variance = torch.stack(sigmas).pow(2).mean(dim=0)  # (P, S): the noise the members expect
        epistemic_variance = torch.stack(mus).var(dim=0, unbiased=False)  # (P, S): how much their means disagree
        sweep.probabilistic_aleatoric_std = aleatoric_variance.sqrt().cpu().numpy()
        sweep.probabilistic_epistemic_std = epistemic_variance.sqrt().cpu().numpy()
        sweep.probabilistic_std = (aleatoric_variance + epistemic_variance).sqrt().cpu().numpy()
    return sweep
