"""The planner checks' toys (mbrl_helpers.cem_toys, mbrl_helpers.hints): the reference planner passes,
each known CEM slip fails with the hint that names it, for several seeds (in this process, no grader).

benchmarks.check_rates measures the same over many more seeds and through the real checks."""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch

from mbrl_helpers import hints
from mbrl_helpers.cem_toys import FIRST_ACTION_SETTINGS, FIRST_ACTION_TOLERANCE, REFIT_SETTINGS, REFIT_TARGET, refit_verdict
from mbrl_reference import planners

ROLLOUT = "            states = states + predict_delta(states, actions[:, t])\n            returns += reward_fn(states)\n"
SLIPS = {
    "returns of s0..s(T-1)": [(ROLLOUT, "            returns += reward_fn(states)\n            states = states + predict_delta(states, actions[:, t])\n")],
    "returns not reset": [
        ("    for _ in range(n_iters):\n", "    returns = torch.zeros(n_samples, device=state.device)\n    for _ in range(n_iters):\n"),
        ("        returns = torch.zeros(n_samples, device=state.device)\n", ""),
    ],
    "std over all samples": [("std = elite_actions.std(dim=0)", "std = actions.std(dim=0)")],
    "std never refitted": [("        std = elite_actions.std(dim=0).clamp(min=std_floor)\n", "")],
}
SEEDS = (0, 1, 2)


def planner(substitutions=()):
    source = textwrap.dedent(inspect.getsource(planners.cem_plan))
    for old, new in substitutions:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    namespace = dict(vars(planners))
    exec(source, namespace)  # noqa: S102 - the reference's own code, with one slip
    return namespace["cem_plan"]


class Recorder:
    """The toy model (position += action, counter += 1) that records each call's actions."""

    def __init__(self):
        self.calls = []

    def __call__(self, states, actions):
        self.calls.append(actions.reshape(-1).clone())
        return torch.cat([actions, torch.ones_like(actions)], dim=-1)


def towards(target):
    return lambda states: -((states[..., 0] - target) ** 2)


def refit(plan, seed):
    recorder = Recorder()
    torch.manual_seed(seed)
    plan(recorder, torch.zeros(2), reward_fn=towards(REFIT_TARGET), **REFIT_SETTINGS)
    return refit_verdict(recorder.calls)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_reference_fits_the_refit_toy_and_returns_its_first_action(seed):
    mistake, z = refit(planner(), seed)
    assert mistake is None, f"seed {seed}: z = {z:.1f}"
    torch.manual_seed(seed)
    first = float(planner()(Recorder(), torch.zeros(2), reward_fn=towards(2.0), **FIRST_ACTION_SETTINGS)[0])
    assert abs(first - 2.0) < FIRST_ACTION_TOLERANCE


@pytest.mark.parametrize("slip", list(SLIPS))
@pytest.mark.parametrize("seed", SEEDS)
def test_each_slip_gets_the_hint_that_names_it(slip, seed):
    mistake, z = refit(planner(SLIPS[slip]), seed)
    # The two std slips both sample as widely as before: one hint names both.
    assert mistake is not None and hints.REFIT[mistake] == hints.REFIT[slip], f"seed {seed}: {slip} read as {mistake!r} (z = {z:.1f})"


def test_a_refit_over_the_horizon_axis_is_named_from_the_error():
    with pytest.raises(RuntimeError) as error:
        planner([("std = elite_actions.std(dim=0)", "std = elite_actions.std(dim=1)")])(Recorder(), torch.zeros(2), reward_fn=towards(1.0), **REFIT_SETTINGS)
    assert "computed over the horizon axis" in hints.std_over_horizon(str(error.value), REFIT_SETTINGS["horizon"], REFIT_SETTINGS["n_elite"])
    assert hints.std_over_horizon("some other error", 5, 30) is None
