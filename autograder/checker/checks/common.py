"""What the three notebooks' checks share: calling a student model, toy problems the checker
answers, the planner-against-reference comparison and the checker-owned episode.

Everything here runs in the checker: the toy models and rewards are callbacks this process
computes (so it sees exactly which actions the student's planner asked about), the expected
values come from `mbrl_reference`, and the environment of the return check is this process's own.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from autograder.checker.core import CheckFailed, Context, Runner, StudentError, Tensor, mlp_net
from mbrl_helpers import ACTION_DIM, ACTION_HIGH, ACTION_LOW, HIDDEN_SIZE, N_HIDDEN, STATE_DIM

REFERENCE_NET = dict(in_dim=STATE_DIM + ACTION_DIM, hidden=HIDDEN_SIZE, layers=N_HIDDEN)
# The planner's settings in the toy checks, as in the notebooks' toy-problem cells.
TOY_SETTINGS = dict(horizon=5, n_samples=300, n_elite=30, n_iters=5, std_floor=0.5)
TOY_START = np.zeros(2, dtype=np.float32)
STATE_SHAPE_ERRORS = ("RuntimeError", "ValueError", "IndexError")


@functools.lru_cache(maxsize=None)
def fixture(notebook: str) -> dict:
    from autograder.checker.fixtures import load_fixture

    return load_fixture(notebook)


def trained_net(notebook: str, out_dim: int = STATE_DIM, members: int = 0, key: str = "trained_state_dict") -> dict:
    """The network spec of a fixture's fixed weights (the reference's shape, whatever the student built)."""
    return mlp_net(fixture(notebook)[key], out_dim=out_dim, members=members, **REFERENCE_NET)


def reference_module(net_spec: dict) -> torch.nn.Module:
    """The same network as `net_spec`, here in the checker, to compute expected values."""
    from mbrl_helpers import build_ensemble_mlp, build_mlp

    mlp = net_spec["mlp"]
    sizes = (mlp["in"], mlp["out"], mlp["hidden"], mlp["layers"])
    net = build_ensemble_mlp(mlp["members"], *sizes) if mlp["members"] else build_mlp(*sizes)
    net.load_state_dict({k: torch.as_tensor(v) for k, v in mlp["weights"].items()})
    return net.eval()


def tensor_of_shape(value, shape: tuple, what: str, hint: str = "") -> np.ndarray:
    """The returned value as an array, if it is a tensor of `shape`; else the check fails."""
    if not value.is_tensor():
        raise CheckFailed(f"Wrong shapes: {what} must return a torch.Tensor of shape {shape}, got a {value.type_name}. {hint}".strip())
    if value.shape != tuple(shape):
        raise CheckFailed(f"Wrong shapes: {what} must return shape {tuple(shape)}, got {value.shape}. {hint}".strip())
    array = value.array()
    if not np.all(np.isfinite(array)):
        raise CheckFailed(f"{what} returned values that are not finite (nan or inf).")
    return array


def scalar_loss(value, what: str = "loss", expected_gradients: list | None = None) -> float:
    """A loss as a float, if it is a scalar tensor that training can differentiate; else the check fails.

    `value` comes from a call with backward=True. Whether the loss carries a gradient is judged from
    the gradients backward() gave the network's parameters (see `check_gradients` for their
    values): a flag the runner reports about its own tensor would prove nothing.
    """
    if not value.is_tensor() or value.shape != ():
        shape = value.shape if value.is_tensor() else value.type_name
        raise CheckFailed(f"Wrong shapes: {what} must return a scalar tensor (shape ()), got {shape}.")
    number = float(value.array())
    if not math.isfinite(number):
        raise CheckFailed(f"The {what} is not finite ({number}).")
    if value.gradients() is None:
        raise CheckFailed(
            f"The {what} carries no gradient: do not call .item() or .detach() on it, nor compute it under torch.no_grad(); training calls loss.backward()."
        )
    if expected_gradients is not None:
        check_gradients(value, expected_gradients, what)
    return number


def check_gradients(value, expected_gradients: list, what: str = "loss") -> None:
    """The gradients backward() gave the network must be those of the correct loss (computed here);
    call it after the checks of the loss's value, whose hints say more."""
    gradients = value.gradients()
    if gradients is None or len(gradients) != len(expected_gradients):
        raise CheckFailed(f"The {what} carries no gradient for the network's parameters: training calls loss.backward().")
    for got, want in zip(gradients, expected_gradients):
        want = np.asarray(want, dtype=np.float64)
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-6):
            raise CheckFailed(
                f"loss.backward() gave the network gradients that differ from those of the expected {what} "
                "(is part of the loss computed outside torch, or detached?)."
            )


def output_gradient(loss_of_output, output) -> list[np.ndarray]:
    """The gradient, with respect to a constant network's output vector, of the correct loss
    `loss_of_output(output_tensor)`: what a constant_net's bias must receive from backward()."""
    bias = torch.tensor(np.asarray(output, dtype=np.float32), requires_grad=True)
    loss_of_output(bias).backward()
    return [bias.grad.numpy()]


def network_gradients(net: torch.nn.Module, loss_of_net) -> list[np.ndarray]:
    """The gradients of the correct loss `loss_of_net(net)` for each parameter of `net`, in order."""
    net.zero_grad()
    loss_of_net(net).backward()
    return [p.grad.detach().numpy().copy() for p in net.parameters()]


def call(runner: Runner, context: Context, **kwargs):
    """runner.call within the check's remaining time."""
    kwargs.setdefault("timeout", context.remaining())
    return runner.call(**kwargs)


def shape_error(error: StudentError, message: str) -> CheckFailed | StudentError:
    """A student error that is about shapes becomes the hint `message` (with the error appended)."""
    if error.ename in STATE_SHAPE_ERRORS:
        return CheckFailed(f"{message} ({error.ename}: {error.evalue})")
    return error


# ---------------------------------------------------------------------------------------------
# toy problems for the planners


class ToyModel:
    """The toy of the planner checks: state [position, step counter], position += gain * action.

    A callback: the student's planner calls it as predict_delta(states, actions) and this object
    answers, recording every action and the actions asked about at step 0 (counter still 0).
    `gains` None: a single model, states (N, 2); a list: an ensemble, states (K, N, 2) with one
    gain per member, actions (N, 1) shared or (K, N, 1).
    """

    def __init__(self, gains=None):
        self.gains = None if gains is None else np.asarray(gains, dtype=np.float32).reshape(-1, 1, 1)
        self.all_actions: list[np.ndarray] = []
        self.first_step_actions: list[np.ndarray] = []
        self.grad_enabled: list[bool] = []

    def __call__(self, states, actions, grad=False):
        self.grad_enabled.append(grad)
        states, actions = np.asarray(states, dtype=np.float32), np.asarray(actions, dtype=np.float32)
        if self.gains is None:
            if states.ndim != 2 or states.shape[-1] != 2 or actions.shape != (states.shape[0], 1):
                raise CheckFailed(
                    f"Wrong shapes: the planner called predict_delta with states {states.shape} and actions {actions.shape}; "
                    "it must pass states (N, S) and the actions of one step, (N, A) = actions[:, t]."
                )
            self.first_step_actions.append(actions[states[:, 1] == 0].reshape(-1))
            self.all_actions.append(actions.reshape(-1))
            return np.concatenate([actions, np.ones_like(actions)], axis=-1)
        k = len(self.gains)
        if states.ndim != 3 or states.shape[0] != k or states.shape[-1] != 2:
            raise CheckFailed(
                f"Wrong shapes: the planner called predict_delta with states of shape {states.shape}. Roll every "
                f"sequence out under every member: states (K, N, S) = ({k}, N, 2), from state.expand(n_members, n_samples, -1)."
            )
        n = states.shape[1]
        if actions.shape == (n, 1):
            member_actions = np.broadcast_to(actions, (k, n, 1))
        elif actions.shape == (k, n, 1):
            member_actions = actions
        else:
            raise CheckFailed(f"Wrong shapes: with states {states.shape}, the planner passed actions {actions.shape}; pass (N, A) = actions[:, t].")
        first = member_actions[0]
        self.first_step_actions.append(first[states[0, :, 1] == 0].reshape(-1))
        self.all_actions.append(np.asarray(actions).reshape(-1))
        return np.concatenate([self.gains * member_actions, np.ones_like(member_actions)], axis=-1)


def reward_towards(target: float):
    """The toy's reward callback: -(position - target)^2 for each state, (..., 2) -> (...)."""
    target = np.float32(target)

    def reward(states, grad=False):
        states = np.asarray(states, dtype=np.float32)
        if states.ndim < 1 or states.shape[-1] != 2:
            raise CheckFailed(f"Wrong shapes: the planner called reward_fn with states of shape {states.shape}; pass the predicted states (..., S).")
        return -((states[..., 0] - target) ** 2)

    return reward


def first_action(value, what: str = "cem_plan") -> float:
    """The first number of what a planner returned (as the notebooks' as_action does)."""
    if value.kind not in ("tensor", "ndarray", "number"):
        raise CheckFailed(f"{what} must return a tensor holding the action, got a {value.type_name}.")
    array = value.array().reshape(-1)
    if array.size == 0:
        raise CheckFailed(f"{what} returned an empty tensor; return mean[0], shape (1,).")
    number = float(array[0])
    if not math.isfinite(number):
        raise CheckFailed(f"{what} returned a non-finite action ({number}).")
    return float(np.float32(number))


# ---------------------------------------------------------------------------------------------
# the pendulum: planner against the reference, and the checker's own episode


def plan_against_reference(
    runner: Runner,
    context: Context,
    *,
    planner: str,
    reference_planner,
    net_spec: dict,
    states: np.ndarray,
    seeds: list[int],
    members: int = 0,
    hint: str,
) -> None:
    """The student's planner and the reference, with the same fixed network as the model, from each
    state for each seed; their mean first actions must agree within a tolerance that fails a
    correct planner less than once in 10^4 runs (3 states, 30 seeds each)."""
    net = reference_module(net_spec)

    def reference_predict_delta(s, a):
        if members and a.dim() == 2:
            a = a.expand(members, -1, -1)
        return net(torch.cat([s, a], dim=-1))

    extra = {"n_members": members} if members else {}
    planned = np.zeros((len(states), len(seeds)))
    reference = np.zeros((len(states), len(seeds)))
    for i, state in enumerate(states):
        for j, seed in enumerate(seeds):
            # The fixed network runs in the runner: the planner calls it thousands of times here. Its
            # outputs are the student's planner's business; what counts is the action it returns.
            try:
                value = runner.call(planner, [{"network": net_spec, "members": members}, Tensor(state)], extra, seed=seed, timeout=context.remaining())
            except StudentError as error:
                raise shape_error(error, f"{planner} failed from a pendulum state {np.round(state, 3).tolist()} with a fixed model. {hint}") from None
            planned[i, j] = first_action(value, planner)
            torch.manual_seed(seed)
            with torch.no_grad():
                reference[i, j] = float(reference_planner(reference_predict_delta, torch.as_tensor(state, dtype=torch.float32), **extra)[0])
    # A correct planner's mean over 30 seeds is off from the reference's by about N(0, std * sqrt(2 / 30)):
    # 4.5 of those plus 0.05 fails a correct planner less than once in 10^4 runs (three states).
    tolerance = 4.5 * np.sqrt(2 * reference.var(axis=1, ddof=1) / reference.shape[1]) + 0.05
    gap = np.abs(planned.mean(axis=1) - reference.mean(axis=1))
    if not (gap < tolerance).all():
        raise CheckFailed(
            f"From three pendulum states, your planner's mean first actions are {[round(v, 2) for v in planned.mean(axis=1).tolist()]}, "
            f"the reference planner's {[round(v, 2) for v in reference.mean(axis=1).tolist()]} ({len(seeds)} seeds each, same model). {hint}"
        )
    if not (planned.std(axis=1, ddof=1) < 3 * reference.std(axis=1, ddof=1) + 0.1).all():
        raise CheckFailed(
            f"Your planner's actions vary across seeds much more than the reference's (std {np.round(planned.std(axis=1, ddof=1), 3).tolist()} "
            f"vs {np.round(reference.std(axis=1, ddof=1), 3).tolist()}): does the mean converge towards the elites over the iterations?"
        )


def checker_episode(runner: Runner, context: Context, *, planner: str, model: dict, seed: int, plan_kwargs: dict | None = None, max_steps: int = 1000) -> tuple[int, float]:
    """One episode in this process's own environment; the runner is asked for one action per step.

    Returns (steps, return). An action that is not one finite number ends the check with a hint.
    """
    from mbrl_helpers import make_env

    runner.start_agent(planner, model, seed=seed, plan_kwargs=plan_kwargs, timeout=context.remaining())
    env = make_env()
    try:
        state, _ = env.reset(seed=seed)
        total, steps = 0.0, 0
        for steps in range(1, max_steps + 1):
            value = runner.act(state, timeout=context.remaining())
            if value.kind not in ("tensor", "ndarray", "number") or value.array().size != ACTION_DIM:
                raise CheckFailed(f"the agent must produce one action of shape ({ACTION_DIM},), got {value.shape if value.shape is not None else value.type_name}")
            action = value.array().reshape(ACTION_DIM).astype(np.float32)
            if not np.all(np.isfinite(action)):
                raise CheckFailed(f"the planner returned a non-finite action ({action.tolist()}) at step {steps}")
            state, reward, terminated, truncated, _ = env.step(np.clip(action, ACTION_LOW, ACTION_HIGH))
            total += float(reward)
            if terminated or truncated:
                break
        return steps, total
    finally:
        env.close()


def pendulum_states(context: Context, name: str, base: np.ndarray) -> np.ndarray:
    """`base` states moved by a small amount that only the checker knows (hidden inputs)."""
    rng = context.rng(name)
    return (np.asarray(base, dtype=np.float64) + rng.normal(0.0, 0.01, np.shape(base))).astype(np.float32)
