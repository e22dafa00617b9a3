"""The reference CEM planners and mbrl_helpers' random shooting, on toy problems whose optimum is known in closed form."""

import numpy as np
import pytest
import torch

from mbrl_helpers import ACTION_HIGH, ACTION_LOW, MPCAgent
from mbrl_helpers.planning import RANDOM_SHOOTING_SETTINGS, random_shooting_plan
from mbrl_reference import cem_plan, ensemble_cem_plan


def integrator(states, actions):
    """Toy dynamics s' = s + a: the state is a position moved directly by the action."""
    return actions


def distance_reward(target):
    return lambda states: -((states[..., 0] - target) ** 2)


SETTINGS = dict(horizon=3, n_samples=400, n_elite=40, n_iters=8, std_floor=0.5)


def test_cem_finds_the_closed_form_optimum():
    # Reward -(s_t - 1.2)^2 summed over 3 steps from s_0 = 0: the best plan is a_1 = 1.2, then 0, 0.
    # Seeded. Over seeds 0-199 the first action's error had std 0.027 (largest 0.08): a tolerance of
    # 0.15 is 5.5 std, so a correct CEM fails it for fewer than 1 seed in 10^7.
    torch.manual_seed(0)
    action = cem_plan(integrator, torch.zeros(1), reward_fn=distance_reward(1.2), **SETTINGS)
    assert action.shape == (1,)
    assert abs(action.item() - 1.2) < 0.15


def test_cem_respects_the_action_bounds():
    # The target is out of reach in one step: the best first action is the bound, +3.
    torch.manual_seed(0)
    action = cem_plan(integrator, torch.zeros(1), reward_fn=distance_reward(20.0), **SETTINGS)
    assert 2.95 < action.item() <= 3.0  # seeds 0-199: largest error 1e-4


def test_cem_returns_the_first_action_not_the_last():
    # Only the last step is rewarded for being at 0 while the first must move away: the plan's
    # actions differ per step, so returning a later one fails.
    def reward(states):
        return -((states[..., 0] - 2.0) ** 2)

    torch.manual_seed(0)
    action = cem_plan(integrator, torch.tensor([-2.0]), reward_fn=reward, horizon=2, n_samples=400, n_elite=40, n_iters=8, std_floor=0.5)
    assert abs(action.item() - 3.0) < 0.3  # from -2, going to +2 needs +3 (bound) then +1; seeds 0-199: error < 1e-3


def test_cem_builds_no_autograd_graph():
    weight = torch.ones(1, requires_grad=True)
    action = cem_plan(lambda s, a: a * weight, torch.zeros(1), reward_fn=distance_reward(1.0), **SETTINGS)
    assert action.grad_fn is None and not action.requires_grad


def test_ensemble_cem_ranks_by_the_mean_return_over_members():
    # Member k moves the state by (k + 1) * a. Aiming at 1.2 from 0 in one step, each member alone
    # wants a = 1.2 / (k + 1); the mean over members of -((k+1) a - 1.2)^2 is best at
    # a* = 1.2 * sum(k+1) / sum((k+1)^2) = 1.2 * 6 / 14 for 3 members.
    gains = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)

    def ensemble_delta(states, actions):
        return gains * actions.unsqueeze(0)

    torch.manual_seed(0)
    action = ensemble_cem_plan(
        ensemble_delta, torch.zeros(1), n_members=3, reward_fn=distance_reward(1.2), horizon=1, n_samples=400, n_elite=40, n_iters=8, std_floor=0.5
    )
    # seeds 0-199: error std 0.006, largest 0.02; 0.05 is 8 std
    assert abs(action.item() - 1.2 * 6 / 14) < 0.05


# ---- random shooting (mbrl_helpers.planning): the planner later notebooks use, not graded code ----


def test_random_shooting_finds_the_closed_form_optimum():
    # One step from 0, reward -(s_1 - 1.2)^2: the best action is 1.2. With 2000 uniform samples in
    # [-3, 3] the nearest one is about 6 / 2000 = 0.003 away; over seeds 0-199 the largest error was below 0.02.
    for seed in range(5):
        torch.manual_seed(seed)
        action = random_shooting_plan(integrator, torch.zeros(1), horizon=1, n_samples=2000, reward_fn=distance_reward(1.2))
        assert action.shape == (1,)
        assert abs(action.item() - 1.2) < 0.05


def test_random_shooting_returns_the_first_action_of_the_best_sequence():
    # From -2, only being at +2 pays; over two steps the best sequences start at the bound +3
    # (3 then +1). A planner that returned the second action, or the mean, would be far off.
    def reward(states):
        return -((states[..., 0] - 2.0) ** 2)

    torch.manual_seed(0)
    action = random_shooting_plan(integrator, torch.tensor([-2.0]), horizon=2, n_samples=4000, reward_fn=reward)
    assert action.item() > 2.0


def test_random_shooting_samples_within_the_given_bounds():
    seen = []

    def recording_model(states, actions):
        seen.append(actions.clone())
        return actions

    torch.manual_seed(0)
    random_shooting_plan(recording_model, torch.zeros(1), horizon=3, n_samples=500, action_low=-0.5, action_high=1.5, reward_fn=distance_reward(0.0))
    actions = torch.cat(seen)
    assert len(seen) == 3 and actions.shape == (1500, 1)
    assert actions.min() >= -0.5 and actions.max() <= 1.5
    assert actions.min() < -0.4 and actions.max() > 1.4  # uniform over the whole box, not a corner of it
    torch.manual_seed(0)
    default = random_shooting_plan(integrator, torch.zeros(1), reward_fn=distance_reward(50.0))
    assert ACTION_LOW <= default.item() <= ACTION_HIGH


def test_random_shooting_is_seeded_by_torch_and_builds_no_graph():
    weight = torch.ones(1, requires_grad=True)
    torch.manual_seed(3)
    first = random_shooting_plan(lambda s, a: a * weight, torch.zeros(1), reward_fn=distance_reward(1.0))
    torch.manual_seed(3)
    second = random_shooting_plan(lambda s, a: a * weight, torch.zeros(1), reward_fn=distance_reward(1.0))
    assert torch.equal(first, second)
    assert first.grad_fn is None and not first.requires_grad


def test_random_shooting_uses_the_course_settings_and_plugs_into_mpc_agent():
    calls = []

    def model(states, actions):
        calls.append((states.shape, actions.shape))
        return torch.zeros_like(states)

    agent = MPCAgent(random_shooting_plan, model, device="cpu")
    action = agent.plan([0.0, 0.05, 0.0, 0.0])
    assert action.shape == (1,) and isinstance(action, np.ndarray)
    n, horizon = RANDOM_SHOOTING_SETTINGS["n_samples"], RANDOM_SHOOTING_SETTINGS["horizon"]
    assert calls == [((n, 4), (n, 1))] * horizon


@pytest.mark.parametrize("members", [0, 3])
def test_the_graders_batched_cem_repeats_the_reference_decisions_seed_for_seed(members):
    """cem_first_actions (the grader's many decisions at once) gives what cem_plan / ensemble_cem_plan
    give one at a time after torch.manual_seed(seed), on a small real network."""
    from mbrl_helpers import build_ensemble_mlp, build_mlp
    from mbrl_reference.planners import cem_first_actions

    torch.manual_seed(0)
    net = build_ensemble_mlp(members, 5, 4, 16, 2) if members else build_mlp(5, 4, 16, 2)

    def predict_delta(states, actions):
        if members and actions.dim() == states.dim() - 1:
            actions = actions.expand(members, *actions.shape)
        return 0.1 * net(torch.cat([states, actions], dim=-1))

    states = torch.randn(12, 4) * 0.1
    seeds = list(range(100, 112))
    many = cem_first_actions(predict_delta, states, seeds, n_members=members)
    assert many.shape == (12, 1)
    for state, seed, action in zip(states, seeds, many):
        torch.manual_seed(seed)
        one = ensemble_cem_plan(predict_delta, state, n_members=members) if members else cem_plan(predict_delta, state)
        assert torch.allclose(one, action, atol=1e-5), (seed, one, action)


def test_the_graders_batched_cem_gives_the_same_numbers_in_chunks(monkeypatch):
    """Above FIRST_ACTIONS_CHUNK decisions cem_first_actions goes chunk by chunk (for the cache):
    every decision has its own generator, so the chunks change no number, the last short one included."""
    from mbrl_helpers import build_ensemble_mlp
    from mbrl_reference import planners

    torch.manual_seed(0)
    net = build_ensemble_mlp(3, 5, 4, 16, 2)

    def predict_delta(states, actions):
        if actions.dim() == states.dim() - 1:
            actions = actions.expand(3, *actions.shape)
        return 0.1 * net(torch.cat([states, actions], dim=-1))

    states, seeds = torch.randn(12, 4) * 0.1, list(range(12))
    whole = planners.cem_first_actions(predict_delta, states, seeds, n_members=3)
    monkeypatch.setattr(planners, "FIRST_ACTIONS_CHUNK", 5)
    chunked = planners.cem_first_actions(predict_delta, states, seeds, n_members=3)
    assert chunked.shape == whole.shape == (12, 1)
    assert torch.equal(chunked, whole)


def test_the_graders_batched_random_shooting_repeats_the_course_planner_seed_for_seed():
    """random_shooting_first_actions (the stochastic return check's many decisions at once) gives what
    the course's random_shooting_plan gives one at a time after torch.manual_seed(seed), with the
    reference StochasticModel (which samples its prediction), on a small real network."""
    from mbrl_helpers.planning import random_shooting_plan
    from mbrl_reference.models import StochasticModel
    from mbrl_reference.planners import random_shooting_first_actions

    torch.manual_seed(0)
    model = StochasticModel().eval()
    states = torch.randn(12, 4) * 0.1
    seeds = list(range(200, 212))
    many = random_shooting_first_actions(model.distribution_params, states, seeds)
    assert many.shape == (12, 1)
    for state, seed, action in zip(states, seeds, many):
        torch.manual_seed(seed)
        one = random_shooting_plan(model.predict_delta, state)
        assert torch.allclose(one, action, atol=1e-5), (seed, one, action)
    assert len(set(many[:, 0].tolist())) > 6  # the seeds matter: not one action for all
