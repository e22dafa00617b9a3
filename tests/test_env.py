import numpy as np
import torch

from mbrl_helpers import ACTION_HIGH, ACTION_LOW, DT, get_device, make_env, seed_everything, set_env_state


def test_env_runs_at_10_hz_with_the_documented_spaces():
    env = make_env()
    assert env.unwrapped.dt == DT == 0.1
    assert env.observation_space.shape == (4,)
    assert env.action_space.shape == (1,)
    assert env.action_space.low[0] == ACTION_LOW == -3.0 and env.action_space.high[0] == ACTION_HIGH == 3.0
    assert env.spec.max_episode_steps == 1000
    env.close()


def test_set_env_state_puts_the_simulator_where_asked():
    env = make_env()
    env.reset(seed=0)
    wanted = np.array([0.5, -0.1, 0.2, 0.3])
    np.testing.assert_allclose(set_env_state(env, wanted), wanted)
    next_obs, *_ = env.step(np.zeros(1, dtype=np.float32))
    assert abs(next_obs[0] - 0.5 - 0.1 * 0.2) < 0.02  # the cart moved on from where it was put
    env.close()


def test_episode_ends_when_the_pole_passes_0_2_rad():
    env = make_env()
    env.reset(seed=0)
    set_env_state(env, np.array([0.0, 0.19, 0.0, 2.0]))
    _, _, terminated, _, _ = env.step(np.zeros(1, dtype=np.float32))
    assert terminated
    env.close()


def test_seed_everything_repeats_torch_and_numpy_draws():
    seed_everything(3)
    first = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    second = (torch.rand(3), np.random.rand(3))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_device_is_cuda_exactly_when_cuda_is_available():
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
