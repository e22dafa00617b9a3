"""The reference CEM planners on toy problems whose optimum is known in closed form."""
import torch

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
    action = ensemble_cem_plan(ensemble_delta, torch.zeros(1), n_members=3, reward_fn=distance_reward(1.2), horizon=1, n_samples=400, n_elite=40, n_iters=8, std_floor=0.5)
    # seeds 0-199: error std 0.006, largest 0.02; 0.05 is 8 std
    assert abs(action.item() - 1.2 * 6 / 14) < 0.05
