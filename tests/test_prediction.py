import numpy as np
import pytest
import torch

from mbrl_helpers import DT, get_device, multi_step_errors, predicted_uncertainty
from mbrl_helpers.prediction import SWEEP_RANGES, as_one_member_ensemble, held_out_trajectories, predict_no_change


def toy_trajectories(n_trajectories=6, length=8, drift=(0.1, -0.2, 0.05, 0.3), action_scale=1.0, seed=0):
    """A system that moves by a constant `drift` per step plus the action on x: s' = s + drift + [a, 0, 0, 0]."""
    rng = np.random.default_rng(seed)
    actions = action_scale * rng.uniform(-1, 1, size=(n_trajectories, length, 1)).astype(np.float32)
    states = np.zeros((n_trajectories, length + 1, 4), dtype=np.float32)
    states[:, 0] = rng.normal(size=(n_trajectories, 4))
    for t in range(length):
        states[:, t + 1] = states[:, t] + np.asarray(drift) + np.pad(actions[:, t], ((0, 0), (0, 3)))
    return {"states": states, "actions": actions}


def toy_true_delta(drift=(0.1, -0.2, 0.05, 0.3)):
    def predict_delta(states, actions):
        delta = torch.tensor(drift, dtype=states.dtype, device=states.device).expand_as(states).clone()
        delta[..., 0] += actions[..., 0]
        return delta

    return predict_delta


# --- held-out trajectories ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_held_out():
    return held_out_trajectories(n_trajectories=4, length=10, seed=7)


def test_held_out_trajectories_have_the_documented_shapes_and_keep_the_pole_up(small_held_out):
    states, actions = small_held_out["states"], small_held_out["actions"]
    assert states.shape == (4, 11, 4) and actions.shape == (4, 10, 1)
    assert states.dtype == np.float32 and actions.dtype == np.float32
    assert np.all(np.abs(states[:, :, 1]) <= 0.2)
    assert np.all(np.abs(actions) <= 3.0)
    assert np.std(actions) > 0.3  # the noise makes the actions vary, not a near-constant feedback


def test_held_out_trajectories_repeat_for_a_seed_and_differ_for_another(small_held_out):
    again = held_out_trajectories(n_trajectories=4, length=10, seed=7)
    other = held_out_trajectories(n_trajectories=4, length=10, seed=8)
    np.testing.assert_array_equal(again["states"], small_held_out["states"])
    np.testing.assert_array_equal(again["actions"], small_held_out["actions"])
    assert not np.allclose(other["states"], small_held_out["states"])


def test_held_out_trajectories_follow_the_real_dynamics(small_held_out):
    # Consecutive states are one 0.1 s step apart: x moves by about dt * x_dot.
    states = small_held_out["states"].astype(np.float64)
    midpoint_velocity = (states[:, 1:, 2] + states[:, :-1, 2]) / 2
    np.testing.assert_allclose(states[:, 1:, 0] - states[:, :-1, 0], DT * midpoint_velocity, atol=0.02)


# --- multi-step errors -------------------------------------------------------------------------


def test_a_perfect_model_has_no_error_at_any_horizon():
    errors = multi_step_errors(toy_true_delta(), toy_trajectories())
    assert errors.rmse.shape == (8,) and errors.rmse_per_dim.shape == (8, 4)
    assert errors.spread is None
    assert np.all(errors.rmse < 1e-5)
    np.testing.assert_array_equal(errors.horizons, np.arange(1, 9))
    np.testing.assert_allclose(errors.horizon_seconds, np.arange(1, 9) * DT)


def test_the_zero_delta_model_falls_behind_by_the_drift_every_step():
    drift = np.array([0.1, -0.2, 0.05, 0.3])
    trajectories = toy_trajectories(drift=drift, action_scale=0.0)  # the true change is the drift alone
    errors = multi_step_errors(lambda s, a: torch.zeros_like(s), trajectories)
    horizons = np.arange(1, 9)
    np.testing.assert_allclose(errors.rmse, horizons * np.sqrt(np.mean(drift**2)), rtol=1e-4)
    np.testing.assert_allclose(errors.rmse_per_dim, np.outer(horizons, np.abs(drift)), rtol=1e-4)


def test_replaying_the_recorded_deltas_reproduces_real_trajectories(small_held_out):
    recorded = torch.as_tensor(np.diff(small_held_out["states"], axis=1))  # (M, L, S)
    step = {"t": 0}

    def replay(states, actions):
        delta = recorded[:, step["t"]].to(states.device)
        step["t"] += 1
        return delta

    errors = multi_step_errors(replay, small_held_out)
    assert step["t"] == 10  # one call per step, the whole batch at once
    assert np.all(errors.rmse < 1e-5)


def test_sampled_errors_are_averaged_over_the_samples():
    # A model that adds Normal(0, 0.1) noise to the true change: its error after h steps is a random walk, 0.1 sqrt(h).
    true_delta = toy_true_delta()
    torch.manual_seed(0)
    errors = multi_step_errors(lambda s, a: true_delta(s, a) + 0.1 * torch.randn_like(s), toy_trajectories(), n_samples=500)
    np.testing.assert_allclose(errors.rmse, 0.1 * np.sqrt(np.arange(1, 9)), rtol=0.05)


def test_identical_ensemble_members_have_no_spread_and_the_single_models_error():
    trajectories = toy_trajectories()
    biased = lambda s, a: toy_true_delta()(s, a) + 0.01  # noqa: E731
    single = multi_step_errors(biased, trajectories)
    ensemble = multi_step_errors(biased, trajectories, n_members=3)  # works on (K, N, S) too
    np.testing.assert_array_equal(ensemble.spread, np.zeros(8))
    np.testing.assert_allclose(ensemble.rmse, single.rmse, rtol=1e-5)
    np.testing.assert_allclose(single.rmse, 0.01 * np.arange(1, 9), rtol=1e-3)


def test_ensemble_error_is_the_mean_predictions_and_spread_the_members_disagreement():
    # Two members off by +d and -d each step: their mean is exact, they disagree by d per step.
    d = 0.05
    true_delta = toy_true_delta()

    def two_members(states, actions):
        assert states.shape[0] == 2
        offsets = torch.tensor([d, -d], device=states.device).view(2, 1, 1)
        return true_delta(states, actions) + offsets

    errors = multi_step_errors(two_members, toy_trajectories(), n_members=2)
    assert np.all(errors.rmse < 1e-5)
    np.testing.assert_allclose(errors.spread, d * np.arange(1, 9), rtol=1e-4)


def test_an_ensembles_errors_come_per_component_and_per_member():
    # Member 0 is exact, member 1 is off by d on x only: per component, only x shows error and spread.
    d = 0.05
    true_delta = toy_true_delta()

    def two_members(states, actions):
        offsets = torch.zeros(2, 1, 4, device=states.device)
        offsets[1, 0, 0] = d
        return true_delta(states, actions) + offsets

    errors = multi_step_errors(two_members, toy_trajectories(), n_members=2)
    steps = np.arange(1, 9)
    assert errors.member_rmse_per_dim.shape == (2, 8, 4) and errors.spread_per_dim.shape == (8, 4)
    np.testing.assert_allclose(errors.member_rmse_per_dim[0], 0, atol=1e-5)  # the exact member
    np.testing.assert_allclose(errors.member_rmse_per_dim[1, :, 0], d * steps, rtol=1e-4)  # its offset adds up step by step
    np.testing.assert_allclose(errors.member_rmse_per_dim[1, :, 1:], 0, atol=1e-5)
    np.testing.assert_allclose(errors.rmse_per_dim[:, 0], d * steps / 2, rtol=1e-4)  # the mean is off by half
    np.testing.assert_allclose(errors.spread_per_dim[:, 0], d * steps / 2, rtol=1e-4)  # two members: std = half the gap
    np.testing.assert_allclose(errors.spread_per_dim[:, 1:], 0, atol=1e-6)
    single = multi_step_errors(true_delta, toy_trajectories())
    assert single.member_rmse_per_dim is None and single.spread_per_dim is None


def test_predicting_no_change_costs_how_far_the_state_really_moves():
    drift = np.array([0.1, -0.2, 0.05, 0.3])
    trajectories = toy_trajectories(action_scale=0.0)  # no action: every step moves the state by drift exactly
    errors = multi_step_errors(predict_no_change, trajectories)
    np.testing.assert_allclose(errors.rmse_per_dim, np.abs(drift) * np.arange(1, 9)[:, None], rtol=1e-4)


def test_a_single_model_seen_as_a_one_member_ensemble():
    single = toy_true_delta()
    one_member = as_one_member_ensemble(single)
    states, actions = torch.randn(1, 7, 4), torch.rand(7, 1)
    deltas = one_member(states, actions)
    assert deltas.shape == (1, 7, 4)
    torch.testing.assert_close(deltas[0], single(states[0], actions))
    torch.testing.assert_close(one_member(states, actions[None]), deltas)  # per-member actions (1, N, A) too
    with pytest.raises(ValueError, match="n_members=1"):
        one_member(torch.randn(2, 7, 4), actions)
    # An ensemble planner run with n_members=1 plans with it; multi_step_errors rolls it out like the model itself.
    trajectories = toy_trajectories()
    np.testing.assert_allclose(multi_step_errors(one_member, trajectories, n_members=1).rmse, multi_step_errors(single, trajectories).rmse, atol=1e-6)


def test_a_probabilistic_ensembles_total_variance_adds_the_noise_and_the_disagreement():
    # Member k predicts mu = k (for every component) with sigma = 1 + k: mean sigma^2 = (1 + 4) / 2, var of mu = 1/4.
    members = [lambda s, a, k=k: (torch.full_like(s, float(k)), torch.full_like(s, 1.0 + k)) for k in range(2)]
    sweep = predicted_uncertainty(probabilistic_members=members, axis="cart x", n_points=5)
    assert sweep.sigma is None and sweep.ensemble_std is None and sweep.probabilistic_std.shape == (5, 4)
    np.testing.assert_allclose(sweep.probabilistic_aleatoric_std, np.sqrt(2.5), rtol=1e-6)
    np.testing.assert_allclose(sweep.probabilistic_epistemic_std, 0.5, rtol=1e-6)
    np.testing.assert_allclose(sweep.probabilistic_std, np.sqrt(2.5 + 0.25), rtol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        predicted_uncertainty(probabilistic_members=members[:1])


def test_the_reference_models_predict_delta_can_be_passed_as_it_is(small_held_out):
    from mbrl_reference import DeterministicModel, EnsembleModel, StochasticModel

    device = get_device()
    torch.manual_seed(0)
    deterministic, stochastic, ensemble = DeterministicModel().to(device), StochasticModel().to(device), EnsembleModel(n_members=3).to(device)
    for errors in (
        multi_step_errors(deterministic.predict_delta, small_held_out),
        multi_step_errors(stochastic.predict_delta, small_held_out, n_samples=3),
        multi_step_errors(ensemble.predict_delta, small_held_out, n_members=3),
    ):
        assert errors.rmse.shape == (10,) and np.all(np.isfinite(errors.rmse)) and np.all(errors.rmse > 0)
    assert errors.spread.shape == (10,) and np.all(errors.spread > 0)  # untrained members disagree
    sweep = predicted_uncertainty(stochastic.distribution_params, ensemble.predict_delta, n_members=3, axis=1, n_points=5)
    assert sweep.sigma.shape == sweep.ensemble_std.shape == (5, 4) and np.all(sweep.sigma > 0)


def test_multi_step_errors_explain_wrong_inputs():
    trajectories = toy_trajectories()
    with pytest.raises(ValueError, match="actions"):
        multi_step_errors(toy_true_delta(), {"states": trajectories["states"], "actions": trajectories["actions"][:, :-1]})
    with pytest.raises(ValueError, match="states"):
        multi_step_errors(toy_true_delta(), {"states": trajectories["states"][..., :3], "actions": trajectories["actions"]})
    # An ensemble's predict_delta returns (K, N, S) from (N, S) states: the message points at n_members.
    with pytest.raises(ValueError, match="n_members"):
        multi_step_errors(lambda s, a: torch.zeros(3, *s.shape), trajectories)


# --- predicted uncertainty ---------------------------------------------------------------------


def test_predicted_uncertainty_sweeps_one_axis_and_returns_both_models_uncertainty():
    def distribution_params(states, actions):  # sigma grows with |angle|; the other components must be 0
        assert torch.all(states[:, [0, 2, 3]] == 0) and torch.all(actions == 0.5)
        sigma = (0.01 + states[:, 1:2].abs()).expand(-1, 4)
        return torch.zeros_like(states), sigma

    def ensemble(states, actions):  # member k scales the state by k: members disagree in proportion to |angle|
        scale = torch.arange(3, dtype=states.dtype, device=states.device).view(3, 1, 1)
        return scale * states

    sweep = predicted_uncertainty(distribution_params, ensemble, n_members=3, axis="pole angle", n_points=11, action=0.5)
    assert sweep.axis == 1 and sweep.axis_name == "pole angle"
    np.testing.assert_allclose(sweep.values, np.linspace(*SWEEP_RANGES[1], 11))
    assert sweep.sigma.shape == (11, 4) and sweep.ensemble_std.shape == (11, 4)
    np.testing.assert_allclose(sweep.sigma[:, 2], 0.01 + np.abs(sweep.values), rtol=1e-5)
    np.testing.assert_allclose(sweep.ensemble_std[:, 1], np.std([0, 1, 2]) * np.abs(sweep.values), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(sweep.ensemble_std[:, [0, 2, 3]], 0)


def test_predicted_uncertainty_accepts_an_index_and_explains_wrong_arguments():
    identical = lambda s, a: s + 1  # noqa: E731  (every member the same)
    sweep = predicted_uncertainty(ensemble_predict_delta=identical, n_members=4, axis=0, values=[-1.0, 0.0, 1.0])
    assert sweep.sigma is None and sweep.axis_name == "cart x"
    np.testing.assert_array_equal(sweep.ensemble_std, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="pass distribution_params"):
        predicted_uncertainty()
    with pytest.raises(ValueError, match="n_members"):
        predicted_uncertainty(ensemble_predict_delta=identical)
    with pytest.raises(ValueError, match="unknown state component"):
        predicted_uncertainty(ensemble_predict_delta=identical, n_members=4, axis="angle")
