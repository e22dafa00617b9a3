"""Checks of notebook 2, `02_stochastic`, in the notebook's order.

Each check repeats the visible test of its cell (same inputs where they matter, same hints) and
then, unless only the visible part is asked for, the hidden part: the student's code against the
reference (`mbrl_reference.models.StochasticModel` with the same weights) on inputs drawn for this
student, with the course's fixed weights.

Where the notebook sets the last layer of `model.net` so that the network outputs a fixed vector
(mu, then log_sigma), the checks give the model a `constant_net` of that vector instead: they
depend on nothing of the student's model but `self.net`.

The loss: the notebook's formula uses the clamped sigma of distribution_params; the course's
lecture notes write it as `GaussianNLLLoss(full=False)(mu, next_states - states, torch.exp(2 *
log_sigma))`, from the unclamped sigma (GaussianNLLLoss clamps the variance at 1e-6 itself). Both
are correct answers: the loss checks accept either value (and then the gradients of that form),
and still fail the constant kept, the next state as the target, a sum, log(sigma**2) and a division
by 2 sigma; hidden, they fail a loss that becomes infinite where exp(log_sigma) underflows to 0
(sigma neither clamped nor its variance floored, as when sigma = exp(log_sigma) is used as it is).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from autograder.checker.checks.common import (
    RETURN_CHECK_MIN,
    RETURN_CHECK_STEPS,
    call,
    check_gradients,
    checker_episode,
    first_action,
    fixture,
    model_loss,
    network_gradients,
    output_gradient,
    reference_decisions,
    reference_module,
    require_own_planner,
    scalar_loss,
    shape_error,
    trained_net,
)
from autograder.checker.core import CheckFailed, CheckRegistry, StudentError, Tensor, constant_net, model_spec
from mbrl_helpers import ACTION_DIM, ACTION_HIGH, ACTION_LOW, STATE_DIM, hints

NOTEBOOK = "02_stochastic"
MODEL = "StochasticModel"
checks = CheckRegistry(NOTEBOOK)

SIGMA_MIN, SIGMA_MAX = 1e-8, 10.0
GAUSSIAN_NLL_EPS = 1e-6  # torch.nn.GaussianNLLLoss's default floor on the variance
# The check cells' network output: mu, then log_sigma (the notebook's MU_CHECK and SIGMA_CHECK).
MU_CHECK = torch.tensor([0.3, -0.2, 0.1, 0.0])
SIGMA_CHECK = torch.tensor([0.5, 0.1, 1.0, 2.0])
CHECK_OUTPUT = torch.cat([MU_CHECK, SIGMA_CHECK.log()])
# Episode seeds on which the reference model and the notebook's planner (random shooting from
# mbrl_helpers.planning, with its default settings) stay up for all RETURN_CHECK_STEPS with the fixed weights.
EPISODE_SEEDS = (0, 1, 2, 3)
# The notebook's planner: not notebook 1's graded CEM, which is not handed out before it is due.
PLANNER = "random_shooting_plan"
SPLIT = "Split the network's (N, 8) output into two (N, 4) halves along the last dimension: torch.chunk(out, 2, dim=-1)."


def reference_model(net_spec: dict | None = None) -> torch.nn.Module:
    """The reference StochasticModel with these fixed weights (by default the well-trained ones)."""
    from mbrl_reference.models import StochasticModel as ReferenceModel

    model = ReferenceModel()
    model.net = reference_module(net_spec or trained_net(NOTEBOOK, out_dim=2 * STATE_DIM))
    return model.eval()


def _net(mu, log_sigma) -> dict:
    """A network that outputs (mu, log_sigma), 8 numbers, for every input."""
    return constant_net(torch.cat([torch.as_tensor(mu, dtype=torch.float32), torch.as_tensor(log_sigma, dtype=torch.float32)]).numpy())


def _inputs(rng: np.random.Generator, n: int, shift: float = 0.0):
    states = rng.standard_normal((n, STATE_DIM)).astype(np.float32) + np.float32(shift)
    actions = rng.uniform(ACTION_LOW, ACTION_HIGH, (n, ACTION_DIM)).astype(np.float32)
    return states, actions


def _hidden_inputs(context, name: str, n: int = 64):
    """Inputs only the checker knows: states and actions of the shipped data moved a little, and next states."""
    rng = context.rng(name)
    data = fixture(NOTEBOOK)
    rows = rng.integers(0, len(data["states"]), n)
    states = (data["states"].numpy()[rows] + rng.normal(0.0, 0.05, (n, STATE_DIM))).astype(np.float32)
    actions = np.clip(data["actions"].numpy()[rows] + rng.normal(0.0, 0.3, (n, ACTION_DIM)), ACTION_LOW, ACTION_HIGH).astype(np.float32)
    next_states = (states + rng.normal(0.0, 0.1, (n, STATE_DIM))).astype(np.float32)
    return states, actions, next_states


def _reference_output(net_spec: dict, states: np.ndarray, actions: np.ndarray):
    """The reference model with the same weights: (mu, sigma, log_sigma) as float32 tensors."""
    from mbrl_reference.models import StochasticModel

    with torch.random.fork_rng(devices=[]):
        model = StochasticModel()
    model.net = reference_module(net_spec)
    s, a = torch.as_tensor(states), torch.as_tensor(actions)
    with torch.no_grad():
        mu, sigma = model.distribution_params(s, a)
        _, log_sigma = torch.chunk(model.net(torch.cat([s, a], dim=-1)), 2, dim=-1)
    return mu, sigma, log_sigma


def _correct_loss(form: str, mu: torch.Tensor, log_sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One of the two correct losses (differentiable): the notebook's, from the clamped sigma, or the
    lecture notes', GaussianNLLLoss(full=False) on the variance exp(2 log_sigma)."""
    if form == "clamped sigma":
        sigma = torch.clamp(torch.exp(log_sigma), min=SIGMA_MIN, max=SIGMA_MAX)
        return ((target - mu) ** 2 / (2 * sigma**2) + torch.log(sigma)).mean()
    return F.gaussian_nll_loss(mu.expand_as(target), target, torch.exp(2 * log_sigma).expand_as(target), full=False, eps=GAUSSIAN_NLL_EPS)


LOSS_FORMS = ("clamped sigma", "lecture notes")


def _accepted_losses(mu: torch.Tensor, log_sigma: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The two correct values of the loss, by form."""
    with torch.no_grad():
        return {form: float(_correct_loss(form, mu, log_sigma, target)) for form in LOSS_FORMS}


def _constant_output_gradients(form: str, output: torch.Tensor, target: torch.Tensor) -> list:
    """What a constant network's bias (mu, then log_sigma) must receive from backward() of the correct loss `form`."""
    return output_gradient(lambda out: _correct_loss(form, *torch.chunk(out, 2, dim=-1), target), output.numpy())


def _network_gradients(form: str, net_spec: dict, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> list:
    """The gradients of the correct loss `form` for each parameter of the network `net_spec`."""
    s, a, s2 = map(torch.as_tensor, (states, actions, next_states))
    return network_gradients(reference_module(net_spec), lambda module: _correct_loss(form, *torch.chunk(module(torch.cat([s, a], dim=-1)), 2, dim=-1), s2 - s))


# ---------------------------------------------------------------------------------------------
# distribution_params


def _params(runner, context, states: np.ndarray, actions: np.ndarray, net: dict, seed: int = 0):
    """model.distribution_params(states, actions): a pair of tensors shaped like states, as arrays."""
    try:
        value = call(runner, context, model=model_spec(MODEL, seed=seed, net=net), method="distribution_params", args=[Tensor(states), Tensor(actions)])
    except StudentError as error:
        raise shape_error(error, f"Wrong shapes: distribution_params failed on states {states.shape} and actions {actions.shape}. {SPLIT}") from None
    items = value.items()
    if items is None or value.length != 2:
        raise CheckFailed(
            f"distribution_params must return a pair (mu, sigma), got {value.type_name}" + (f" of length {value.length}" if value.length is not None else "")
        )
    arrays = []
    for name, item in zip(("mu", "sigma"), items):
        if not item.is_tensor() or item.shape != states.shape:
            raise CheckFailed(
                f"Wrong shapes: {name} must have the shape of the states, {tuple(states.shape)}, got "
                f"{item.shape if item.is_tensor() else item.type_name}. {SPLIT}"
            )
        arrays.append(item.array())
    return arrays[0], arrays[1]


@checks.add("test-sto-split", reference_seconds=0.3)
def split(runner, context):
    """distribution_params splits the 8 outputs into mu (the first 4, unchanged) and sigma from the last 4; shapes (N, 4)."""
    states, actions = _inputs(np.random.default_rng(0), 6)
    mu, sigma = _params(runner, context, states, actions, constant_net(CHECK_OUTPUT.numpy()))
    if np.allclose(mu, np.broadcast_to(SIGMA_CHECK.log().numpy(), (6, STATE_DIM)), atol=1e-5):
        raise CheckFailed(hints.HALVES_SWAPPED)
    if not np.allclose(mu, np.broadcast_to(MU_CHECK.numpy(), (6, STATE_DIM)), atol=1e-5):
        raise CheckFailed(f"mu should be the first 4 outputs of the network as they are: expected {MU_CHECK.tolist()} here, got {mu[0].tolist()}.")
    if context.hidden:
        net = trained_net(NOTEBOOK, out_dim=2 * STATE_DIM)
        states, actions, _ = _hidden_inputs(context, "split")
        mu, sigma = _params(runner, context, states, actions, net)
        want_mu, want_sigma, _ = _reference_output(net, states, actions)
        if not np.allclose(mu, want_mu.numpy(), atol=1e-5):
            raise CheckFailed(
                "On the grader's fixed inputs and weights, mu differs from the expected values: feed the network "
                "torch.cat([states, actions], dim=-1) (state first) and take the first half of its output."
            )
        if not np.allclose(sigma, want_sigma.numpy(), rtol=1e-4, atol=1e-9):
            raise CheckFailed("On the grader's fixed inputs and weights, sigma differs from the expected clamp(exp(log_sigma), 1e-8, 10).")
    return "distribution_params: mu and shapes OK"


@checks.add("test-sto-sigma-clamp", reference_seconds=0.3, after=("test-sto-split",))
def sigma_clamp(runner, context):
    """sigma = clamp(exp(log_sigma), 1e-8, 10): the exponential of the second half, clamped at both ends."""
    states, actions = _inputs(np.random.default_rng(0), 6)
    _, sigma = _params(runner, context, states, actions, constant_net(CHECK_OUTPUT.numpy()))
    if not np.allclose(sigma, np.broadcast_to(SIGMA_CHECK.numpy(), (6, STATE_DIM)), rtol=1e-5, atol=1e-8):
        raise CheckFailed(
            f"With log_sigma = log({SIGMA_CHECK.tolist()}), sigma should be {SIGMA_CHECK.tolist()}, got {sigma[0].tolist()}. "
            "The network outputs log_sigma: sigma = exp(log_sigma), clamped after the exponential (clamping log_sigma "
            "before it changes sigma here)."
        )
    _, sigma = _params(runner, context, states, actions, _net(MU_CHECK, [5.0, 40.0, -30.0, -100.0]))
    expected = np.broadcast_to(np.array([SIGMA_MAX, SIGMA_MAX, SIGMA_MIN, SIGMA_MIN], dtype=np.float32).astype(np.float64), (6, STATE_DIM))
    if not (np.all(np.isfinite(sigma)) and sigma.max() <= SIGMA_MAX and sigma.min() >= SIGMA_MIN * (1 - 1e-6)):
        raise CheckFailed(
            f"Mistake: sigma from log_sigma without the clamp. With log_sigma = (5, 40, -30, -100), sigma came out as "
            f"{sigma[0].tolist()}; clamp it to [1e-8, 10]: torch.clamp(torch.exp(log_sigma), min=SIGMA_MIN, max=SIGMA_MAX)."
        )
    if not np.allclose(sigma, expected, rtol=1e-5, atol=0):
        raise CheckFailed(
            f"With log_sigma = (5, 40, -30, -100), sigma should be (10, 10, 1e-8, 1e-8), got {sigma[0].tolist()}. "
            "Clamp sigma after the exponential, not log_sigma before it."
        )
    if context.hidden:
        net = trained_net(NOTEBOOK, out_dim=2 * STATE_DIM, key="extreme_state_dict")
        states, actions, _ = _hidden_inputs(context, "sigma-clamp")
        mu, sigma = _params(runner, context, states, actions, net)
        want_mu, want_sigma, _ = _reference_output(net, states, actions)
        if not np.allclose(sigma, want_sigma.numpy(), rtol=1e-5, atol=0):
            raise CheckFailed("With weights whose log_sigma lies beyond both bounds, sigma differs from clamp(exp(log_sigma), 1e-8, 10).")
        if not np.allclose(mu, want_mu.numpy(), atol=1e-5):
            raise CheckFailed("mu must not depend on the clamp of sigma.")
    return hints.PASSED_SIGMA_CLAMP


# ---------------------------------------------------------------------------------------------
# predict_delta: sampling


def _draws(runner, context, states: np.ndarray, actions: np.ndarray, net: dict, seed: int) -> np.ndarray:
    n = len(states)
    try:
        value = call(runner, context, model=model_spec(MODEL, seed=0, net=net), method="predict_delta", args=[Tensor(states), Tensor(actions)], seed=seed)
    except StudentError as error:
        raise shape_error(error, f"Wrong shapes: predict_delta failed on states {states.shape} and actions {actions.shape}. {SPLIT}") from None
    if not value.is_tensor() or value.shape != (n, STATE_DIM):
        raise CheckFailed(f"Wrong shapes: predict_delta must return one change per row, ({n}, 4), got {value.shape if value.is_tensor() else value.type_name}.")
    draws = value.array()
    if not np.all(np.isfinite(draws)):
        raise CheckFailed("predict_delta returned values that are not finite (nan or inf).")
    return draws


@checks.add("test-sto-sampling", reference_seconds=0.5, after=("test-sto-split", "test-sto-sigma-clamp"))
def sampling(runner, context):
    """predict_delta draws random changes from Normal(mu, sigma): 20,000 draws have mean mu and std sigma."""
    n = 20_000
    states = np.full((n, STATE_DIM), 1.0, dtype=np.float32)  # every row starts at state (1, 1, 1, 1)
    actions = np.zeros((n, ACTION_DIM), dtype=np.float32)
    draws = _draws(runner, context, states, actions, constant_net(CHECK_OUTPUT.numpy()), seed=1)
    mean, std = draws.mean(axis=0), draws.std(axis=0, ddof=1)
    mu, sigma = MU_CHECK.numpy().astype(np.float64), SIGMA_CHECK.numpy().astype(np.float64)
    if not std.max() > 0:
        raise CheckFailed(hints.SAMPLES_ARE_MU)
    # Tolerances: 6 standard errors of the sample mean (sigma / sqrt(n)) and of the sample std (sigma / sqrt(2 n));
    # a correct model fails them less than once in 10^8 runs.
    if np.allclose(mean, 1.0 + mu, rtol=1e-5, atol=0.1):
        raise CheckFailed(hints.SAMPLES_OF_NEXT_STATE)
    # Draws of Normal(mu, 1) (the noise not scaled by sigma): the std is 1 in every component, 0.1 to 2 wanted
    # (and their mean strays from mu by more than sigma allows, so this comes first).
    if not (np.abs(std - sigma) < 6 * sigma / math.sqrt(2 * n)).all() and (np.abs(std - 1.0) < 6 / math.sqrt(2 * n)).all():
        raise CheckFailed(hints.SAMPLE_IGNORES_SIGMA)
    if not (np.abs(mean - mu) < 6 * sigma / math.sqrt(n)).all():
        raise CheckFailed(f"The mean of 20,000 draws is {mean.tolist()}, but mu is {MU_CHECK.tolist()}: sample around mu.")
    if not (np.abs(std - sigma) < 6 * sigma / math.sqrt(2 * n)).all():
        raise CheckFailed(
            f"The std of 20,000 draws is {[round(v, 3) for v in std.tolist()]}, but sigma is {SIGMA_CHECK.tolist()}. "
            "Pass sigma itself as the scale: Normal(mu, sigma), not log_sigma and not the variance sigma**2."
        )
    if context.hidden:
        net = trained_net(NOTEBOOK, out_dim=2 * STATE_DIM, key="untrained_state_dict")
        states, actions, _ = _hidden_inputs(context, "sampling")
        repeats = 500
        draws = _draws(runner, context, np.tile(states, (repeats, 1)), np.tile(actions, (repeats, 1)), net, seed=context.seed("sampling/torch"))
        draws = draws.reshape(repeats, *states.shape)  # (repeats, 64, 4)
        want_mu, want_sigma, _ = _reference_output(net, states, actions)
        mu, sigma = want_mu.numpy().astype(np.float64), want_sigma.numpy().astype(np.float64)
        # 256 (row, component) pairs, each with 500 draws: 6.5 standard errors keep false failures below 10^-7.
        if not (np.abs(draws.mean(axis=0) - mu) < 6.5 * sigma / math.sqrt(repeats)).all():
            raise CheckFailed("On the grader's fixed inputs and weights, the draws are not centred on the expected mu.")
        if not (np.abs(draws.std(axis=0, ddof=1) - sigma) < 6.5 * sigma / math.sqrt(2 * repeats)).all():
            raise CheckFailed("On the grader's fixed inputs and weights, the draws' spread differs from the expected sigma.")
    return hints.PASSED_SAMPLING


# ---------------------------------------------------------------------------------------------
# the loss


def _loss(runner, context, states, actions, next_states, net):
    """model_loss, with a hint when the shapes do not fit."""
    try:
        value = model_loss(runner, context, model_spec(MODEL, seed=0, net=net), states, actions, next_states)
    except StudentError as error:
        raise shape_error(
            error, f"Wrong shapes: loss failed on states {states.shape}, actions {actions.shape} and next_states {next_states.shape}. {SPLIT}"
        ) from None
    return value


def _matching_form(value: float, accepted: dict[str, float], rel_tol: float = 1e-4, abs_tol: float = 0.0) -> str | None:
    """The correct form of the loss whose value `value` is, if any."""
    return next((form for form, other in accepted.items() if math.isclose(value, other, rel_tol=rel_tol, abs_tol=abs_tol)), None)


def _expected_text(accepted: dict[str, float], fmt: str) -> str:
    """The expected value, or both when the two correct ways of writing the loss disagree here."""
    values = list(accepted.values())
    if math.isclose(values[0], values[1], rel_tol=1e-4):
        return format(values[0], fmt)
    return " or ".join(
        f"{format(v, fmt)} (from the {k})" if k != "lecture notes" else f"{format(v, fmt)} (as in the lecture notes)" for k, v in accepted.items()
    )


@checks.add("test-sto-nll", reference_seconds=0.3, after=("test-sto-split", "test-sto-sigma-clamp"))
def nll(runner, context):
    """loss is the Gaussian negative log-likelihood of the true change without the constant, averaged over rows and components."""
    rng = np.random.default_rng(3)
    states, actions = _inputs(rng, 32, shift=1.0)
    next_states = (states + rng.standard_normal((32, STATE_DIM))).astype(np.float32)
    returned = _loss(runner, context, states, actions, next_states, constant_net(CHECK_OUTPUT.numpy()))
    value = scalar_loss(returned)

    def wrong(target, sigma_power=2, log_term=1.0, reduce=torch.mean):
        terms = (torch.as_tensor(target) - MU_CHECK) ** 2 / (2 * SIGMA_CHECK**sigma_power) + log_term * SIGMA_CHECK.log()
        return reduce(terms).item()

    change = torch.as_tensor(next_states - states)
    accepted = _accepted_losses(MU_CHECK, SIGMA_CHECK.log(), change)
    expected = accepted["clamped sigma"]
    close = lambda other: math.isclose(value, other, rel_tol=1e-4, abs_tol=1e-6)  # noqa: E731
    if close(expected + 0.5 * math.log(2 * math.pi)):
        raise CheckFailed(hints.NLL_WITH_CONSTANT)
    if close(wrong(next_states)):
        raise CheckFailed(hints.NLL_ON_NEXT_STATE)
    if close(wrong(change, reduce=torch.sum)):
        raise CheckFailed(hints.NLL_SUMMED)
    if close(wrong(change, log_term=2.0)):
        raise CheckFailed(hints.NLL_LOG_OF_VARIANCE)
    if close(wrong(change, sigma_power=1)):
        raise CheckFailed(hints.NLL_DIVIDED_BY_SIGMA)
    # GaussianNLLLoss(full=False)(mu, y, sigma): 0.5 * (log(var) + (y - mu)**2 / var) with var = sigma.
    if close(wrong(change, sigma_power=1, log_term=0.5)):
        raise CheckFailed(hints.NLL_SIGMA_AS_VARIANCE)
    if any(close(STATE_DIM * other) for other in accepted.values()):
        raise CheckFailed(hints.NLL_SUMMED_OVER_COMPONENTS)
    form = _matching_form(value, accepted, abs_tol=1e-6)
    if form is None:
        raise CheckFailed(
            f"loss returned {value:.5f}, expected {_expected_text(accepted, '.5f')}: the mean of (y - mu)**2 / (2 sigma**2) + log(sigma) "
            "with y = next_states - states and the clamped sigma of distribution_params."
        )
    check_gradients(returned, _constant_output_gradients(form, CHECK_OUTPUT, change))
    if context.hidden:
        net = trained_net(NOTEBOOK, out_dim=2 * STATE_DIM, key="untrained_state_dict")
        states, actions, next_states = _hidden_inputs(context, "nll")
        returned = _loss(runner, context, states, actions, next_states, net)
        got = scalar_loss(returned)
        mu, _, log_sigma = _reference_output(net, states, actions)
        accepted = _accepted_losses(mu, log_sigma, torch.as_tensor(next_states - states))
        form = _matching_form(got, accepted, abs_tol=1e-6)
        if form is None:
            raise CheckFailed(
                "On the grader's own inputs and fixed weights, the loss differs from the mean of (y - mu)**2 / (2 sigma**2) + log(sigma) "
                "(or the lecture notes' GaussianNLLLoss(full=False) form)."
            )
        check_gradients(returned, _network_gradients(form, net, states, actions, next_states))
    return "loss: OK"


def _nll_at(runner, context, output: torch.Tensor, states, actions, next_states):
    """The student's loss with a network that outputs `output` (mu, then log_sigma): (the call's result, its value, the accepted values)."""
    returned = _loss(runner, context, states, actions, next_states, constant_net(output.numpy()))
    accepted = _accepted_losses(output[:STATE_DIM], output[STATE_DIM:], torch.as_tensor(next_states - states))
    if returned.is_tensor() and returned.shape == () and not math.isfinite(float(returned.array())):
        return returned, float(returned.array()), accepted  # an infinite loss: the check says why
    return returned, scalar_loss(returned), accepted


@checks.add("test-sto-nll-clamped", reference_seconds=0.1, after=("test-sto-split", "test-sto-sigma-clamp", "test-sto-nll"))
def nll_clamped(runner, context):
    """with log_sigma = 4 > log 10 the loss is the NLL of the clamped sigma (10), or, as the lecture notes write it, GaussianNLLLoss(full=False) on exp(2 log_sigma).

    Hidden: log_sigma above the bounds, then far below them, where exp(log_sigma)**2 underflows to 0:
    the loss must stay finite (the clamp, or GaussianNLLLoss's floor on the variance) and be one of
    the two correct values. A loss from the unclamped sigma written by hand is infinite there.
    """
    rng = np.random.default_rng(4)
    states, actions = _inputs(rng, 32)
    next_states = (states + 5 * rng.standard_normal((32, STATE_DIM))).astype(np.float32)
    output = torch.cat([MU_CHECK, torch.full((STATE_DIM,), 4.0)])
    returned, value, accepted = _nll_at(runner, context, output, states, actions, next_states)
    form = _matching_form(value, accepted) if math.isfinite(value) else None
    if form is None:
        raise CheckFailed(
            f"loss returned {value:.4f}, expected {accepted['clamped sigma']:.4f} (from the clamped sigma, clamp(e^4, 1e-8, 10) = 10) or "
            f"{accepted['lecture notes']:.4f} (GaussianNLLLoss(full=False) on the variance exp(2 log_sigma)). Compute the loss from the sigma that "
            "distribution_params returns, or as the lecture notes do."
        )
    check_gradients(returned, _constant_output_gradients(form, output, torch.as_tensor(next_states - states)))
    if context.hidden:
        rng = context.rng("nll-clamped")
        states, actions = _inputs(rng, 64)
        next_states = (states + rng.normal(0.0, 5.0, (64, STATE_DIM))).astype(np.float32)
        change = torch.as_tensor(next_states - states)
        # One call above log 10, one far below log 1e-8 (where exp(log_sigma)**2 underflows to 0 in float32),
        # each with a component inside the bounds. Not both in one call: a loss written as GaussianNLLLoss on
        # the clamped sigma**2 (also correct) is the clamped form above and the lecture notes' form below.
        for log_sigma in (
            [rng.uniform(2.5, 5.0), rng.uniform(-1.0, 1.0), rng.uniform(2.5, 5.0), rng.uniform(3.0, 6.0)],
            [-100.0, rng.uniform(-1.0, 1.0), rng.uniform(-80.0, -50.0), -100.0],
        ):
            output = torch.cat([torch.as_tensor(rng.normal(0.0, 0.5, STATE_DIM), dtype=torch.float32), torch.tensor(log_sigma, dtype=torch.float32)])
            returned, value, accepted = _nll_at(runner, context, output, states, actions, next_states)
            # (No log_sigma, loss or expected value in these hints: they are the grader's own inputs.)
            if not math.isfinite(value):
                raise CheckFailed(
                    "With log_sigma far below the clamp's lower bound (the grader's own values), the loss is not finite: "
                    "exp(log_sigma)**2 underflows to 0 in float32 below about -50, so a "
                    "sigma that is not clamped makes the loss infinite. Compute it from the clamped sigma that distribution_params returns "
                    "(clamp(exp(log_sigma), 1e-8, 10)), or as the lecture notes do, GaussianNLLLoss(full=False), which floors the variance at 1e-6."
                )
            form = _matching_form(value, accepted)
            if form is None:
                raise CheckFailed(
                    "On the grader's own inputs, with log_sigma beyond the bounds of the clamp, the loss differs from the expected value. "
                    "Compute the loss from the sigma that distribution_params returns, or as the lecture notes do."
                )
            check_gradients(returned, _constant_output_gradients(form, output, change))
    return "loss: right where sigma is clamped"


# ---------------------------------------------------------------------------------------------
# planning with the stochastic model


@checks.add("test-sto-return", reference_seconds=7.0, after=("test-sto-split", "test-sto-sigma-clamp", "test-sto-sampling"))
def sto_return(runner, context):
    """the planner drives your StochasticModel; hidden: fixed well-trained weights in your class, one 150-step episode, return >= 142, planned by the course's random shooting (its actions distributed as with the reference model)."""
    value = call(
        runner,
        context,
        function=PLANNER,
        args=[{"method_of": model_spec(MODEL, seed=0), "method": "predict_delta"}, Tensor(np.array([0.0, 0.05, 0.0, 0.0]))],
        seed=0,
    )
    if value.shape != (ACTION_DIM,):
        raise CheckFailed(f"the agent must produce one action of shape (1,), got shape {value.shape if value.shape is not None else value.type_name}")
    first_action(value, PLANNER)
    if context.hidden:
        from mbrl_helpers.planning import random_shooting_plan

        net = trained_net(NOTEBOOK, out_dim=2 * STATE_DIM)
        try:
            episode = checker_episode(
                runner,
                context,
                planner=PLANNER,
                model=model_spec(MODEL, seed=0, net=net, eval=True),
                seed=EPISODE_SEEDS[context.seed("sto-return") % len(EPISODE_SEEDS)],
            )
        except StudentError as error:
            if error.ename not in ("ValueError", "RuntimeError", "IndexError"):
                raise
            raise CheckFailed(
                f"With fixed, well-trained weights in your StochasticModel, planning the episode failed (your code raised {error.describe()}). "
                "A sigma that is not finite or not positive stops Normal(mu, sigma): check distribution_params (split, exp, clamp) "
                "and predict_delta (a sample of the change)."
            ) from None
        if episode.total < RETURN_CHECK_MIN:
            raise CheckFailed(
                f"With fixed, well-trained weights in your StochasticModel, the planner did not keep the pole up for the {RETURN_CHECK_STEPS} steps "
                f"of the grader's episode (a return under {RETURN_CHECK_MIN}); the reference model reaches {RETURN_CHECK_STEPS} with the same weights and "
                "planner. Check distribution_params (split, exp, clamp) and predict_delta (a sample of the change)."
            )
        # The planner is the course's, looked up by its name in the student's namespace: a cell that
        # rebinds the name to another controller would otherwise drive the episode.
        require_own_planner(context, "sto-return", episode, reference_decisions(random_shooting_plan, reference_model(net).predict_delta), planner=PLANNER)
    return "the agent plans an action"
