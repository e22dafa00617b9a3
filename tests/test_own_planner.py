"""The return checks' own-planner test (checks.common.require_own_planner) on planners whose action
distributions are known: the reference's own passes, a controller without sampling, a noisier or a
biased planner fail; and the comparison with the mirrored model, which a controller that ignores
its model fails. The figures on the course's real planners: python -m benchmarks.own_planner."""

from __future__ import annotations

import re

import numpy as np
import pytest

from autograder.checker.checks.common import (
    OWN_PLANNER_REFERENCES,
    OWN_PLANNER_STEPS,
    Episode,
    own_planner_passes,
    own_planner_statistic,
    rank_statistic,
    require_own_planner,
)
from autograder.checker.core import CheckFailed, Context

# A stand-in planner: at state s its action is Normal(mean(s), 0.1), as the reference CEM's first
# action is roughly (0.085 at the upright state, benchmarks.own_planner).
SPREAD = 0.1


def mean_action(state: np.ndarray) -> float:
    return float(np.tanh(-2.0 * state[1] - 0.5 * state[0]))


def reference(state: np.ndarray, seed: int) -> float:
    return mean_action(state) + SPREAD * float(np.random.default_rng(seed).standard_normal())


def episode_of(act, steps: int = 1000, seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed)
    states = rng.normal(0.0, 0.05, (steps, 4)).astype(np.float32)
    return Episode(steps, float(steps), states, np.array([act(s, rng) for s in states]))


PLANNERS = {
    "the reference": lambda s, rng: mean_action(s) + SPREAD * rng.standard_normal(),
    "no sampling, at the reference's median": lambda s, rng: mean_action(s),
    "no sampling, two spreads off either way (an LQR, a table)": lambda s, rng: mean_action(s) + 2 * SPREAD * np.sign(s[0]),
    "biased by one spread": lambda s, rng: mean_action(s) + SPREAD + SPREAD * rng.standard_normal(),
    "four times as noisy": lambda s, rng: mean_action(s) + 4 * SPREAD * rng.standard_normal(),
}


@pytest.mark.parametrize("name", PLANNERS)
def test_only_a_planner_distributed_as_the_reference_passes(name):
    failed = 0
    runs = 40
    for run in range(runs):
        episode = episode_of(PLANNERS[name], seed=run)
        chi_square, z, counts = own_planner_statistic(episode, reference, np.random.default_rng([1, run]))
        assert counts.sum() == OWN_PLANNER_STEPS and len(counts) == OWN_PLANNER_REFERENCES + 1
        failed += not own_planner_passes(chi_square, z)
    if name == "the reference":
        assert failed == 0
    elif name == "no sampling, at the reference's median":
        # the hardest case: its ranks are Binomial(4, 1/2), and about 5 % of such episodes pass
        assert failed >= 0.85 * runs, f"{name}: passed {runs - failed} of {runs}"
    else:
        assert failed == runs, f"{name}: passed {runs - failed} of {runs}"


def test_ranks_are_counted_with_ties_split_at_random():
    rng = np.random.default_rng(0)
    actions = np.full(400, 3.0)  # a planner clamped at the limit, as the reference there
    chi_square, z, counts = rank_statistic(actions, np.full((400, OWN_PLANNER_REFERENCES), 3.0), rng)
    assert own_planner_passes(chi_square, z) and counts.min() > 50  # all ties: ranks uniform
    _, _, counts = rank_statistic(np.array([0.5]), np.array([[0.0, 1.0, 0.2, 0.7]]), rng)
    assert counts.tolist() == [0, 0, 1, 0, 0]


def test_the_hint_shows_nothing_of_the_episode():
    episode = episode_of(PLANNERS["no sampling, two spreads off either way (an LQR, a table)"])
    with pytest.raises(CheckFailed) as failed:
        require_own_planner(Context(secret="s", student="ada", notebook="01"), "cem-return", episode, reference, planner="cem_plan")
    message = str(failed.value)
    assert "cem_plan" in message and not any(ch.isdigit() for ch in message), message


def test_hidden_inputs_change_with_the_submitted_code_and_repeat_for_the_same():
    from autograder.checker.core import submission_hash

    first, again, changed = (submission_hash(cells) for cells in (["a = 1", "def f(): pass"], ["a = 1", "def f(): pass"], ["a = 1 ", "def f(): pass"]))
    seed = lambda submission: Context(secret="s", student="ada", notebook="01", submission=submission).seed("cem-return")  # noqa: E731
    assert first == again and seed(first) == seed(again)
    assert first != changed and seed(first) != seed(changed)
    assert submission_hash(["ab", "c"]) != submission_hash(["a", "bc"])


# ---------------------------------------------------------------------------------------------
# the mirrored model: a planner that ignores its model pushes the wrong way


def test_the_mirrored_network_is_the_network_with_the_action_negated():
    import torch

    from autograder.checker.checks.common import mirrored_net, reference_module, trained_net
    from mbrl_helpers import N_MEMBERS, STATE_DIM

    for notebook, members in (("01_deterministic_cem", 0), ("03_ensemble", N_MEMBERS)):
        net = trained_net(notebook, members=members)
        before = {key: value.copy() for key, value in net["mlp"]["weights"].items()}
        real, mirrored = reference_module(net), reference_module(mirrored_net(net))
        inputs = torch.randn(*((members,) if members else ()), 7, STATE_DIM + 1)
        flipped = inputs.clone()
        flipped[..., STATE_DIM:] *= -1
        with torch.no_grad():
            assert torch.allclose(mirrored(inputs), real(flipped), atol=1e-6)
            assert not torch.allclose(mirrored(inputs), real(inputs), atol=1e-3)
        assert all(np.array_equal(before[key], value) for key, value in net["mlp"]["weights"].items()), "the fixture's spec was changed"


class InProcessRunner:
    """Stands in for the runner in plan_against_reference: `act(predict_delta, state)` plans with the
    network spec it is sent, built here (the sandbox's runner builds the same from the same weights)."""

    def __init__(self, act):
        self.act, self.calls = act, 0

    def call(self, planner, args, extra, seed, timeout):
        import torch

        from autograder.checker.checks.common import network_predict_delta, reference_module
        from autograder.checker.core import Returned

        self.calls += 1
        model, state = args
        torch.manual_seed(seed)
        predict = network_predict_delta(reference_module(model["network"]), model["members"])
        action = self.act(predict, torch.as_tensor(state["tensor"]))
        return Returned({"kind": "tensor", "array": np.asarray(action, dtype=np.float32).reshape(1)})


def _mirror_verdict(act):
    from autograder.checker.checks.common import fixture, plan_against_mirrored_reference, trained_net
    from mbrl_reference.planners import cem_plan

    runner = InProcessRunner(act)
    context = Context(secret="s", student="ada", notebook="01_deterministic_cem")
    try:
        plan_against_mirrored_reference(
            runner,
            context,
            "cem-return",
            planner="cem_plan",
            reference_planner=cem_plan,
            net_spec=trained_net("01_deterministic_cem"),
            plan_states=fixture("01_deterministic_cem")["plan_states"].numpy(),
            hint="HINT",
        )
    except CheckFailed as failed:
        return str(failed), runner.calls
    return None, runner.calls


def test_with_the_mirrored_model_a_planner_that_uses_it_passes_and_an_lqr_does_not():
    import torch

    from benchmarks.own_planner import cem_randn_biased_std, lqr_gain_of_course, mistake_planner
    from mbrl_reference.planners import cem_plan

    gain = lqr_gain_of_course().reshape(-1)

    def lqr(predict, state):  # as the cheats' lqr_action: the model is not asked
        return np.clip(-gain @ state.double().numpy(), -3.0, 3.0)

    def noisy_lqr(predict, state):
        return lqr(predict, state) + 0.1 * torch.randn(1).numpy()

    with torch.no_grad():
        assert _mirror_verdict(lambda predict, state: cem_plan(predict, state)) == (None, 2 * 10)
        verdict, _ = _mirror_verdict(lambda predict, state: cem_randn_biased_std(predict, state))
        assert verdict is None, verdict
        # CEM mistakes that still plan with the model are graded by other checks, not here
        for name in ("rewards-of-s0-to-sT-1", "returns-not-reset"):
            verdict, _ = _mirror_verdict(mistake_planner(name))
            assert verdict is None, (name, verdict)
        for controller in (lqr, noisy_lqr):
            verdict, calls = _mirror_verdict(controller)
            assert verdict is not None and "HINT" in verdict and calls == 2 * 10, (controller.__name__, verdict)
            assert not re.search(r"\d\.\d", verdict), verdict  # no states, no actions: only counts
