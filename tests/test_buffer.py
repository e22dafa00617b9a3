import numpy as np
import pytest
import torch

from mbrl_helpers import ReplayBuffer


def make_buffer(seed=0, n=100):
    rng = np.random.default_rng(0)
    return ReplayBuffer(rng.normal(size=(n, 4)), rng.normal(size=(n, 1)), rng.normal(size=(n, 4)), device="cpu", seed=seed)


def test_sample_shapes_dtype_and_device():
    states, actions, next_states = make_buffer().sample(32)
    assert states.shape == (32, 4) and actions.shape == (32, 1) and next_states.shape == (32, 4)
    assert states.dtype == torch.float32 and states.device.type == "cpu"


def test_same_seed_same_minibatches_whatever_the_global_rng_does():
    a, b = make_buffer(seed=5), make_buffer(seed=5)
    first = a.sample(16)
    torch.manual_seed(123)
    torch.rand(10)  # other use of the global RNG must not change the buffer's draws
    second = b.sample(16)
    for x, y in zip(first, second):
        assert torch.equal(x, y)


def test_different_seeds_give_different_minibatches():
    assert not torch.equal(make_buffer(seed=1).sample(16)[0], make_buffer(seed=2).sample(16)[0])


def test_transitions_stay_aligned():
    n = 50
    states = np.arange(n * 4, dtype=float).reshape(n, 4)
    buffer = ReplayBuffer(states, states[:, :1] * 10, states + 1, device="cpu")
    s, a, s2 = buffer.sample(20)
    torch.testing.assert_close(a, s[:, :1] * 10)
    torch.testing.assert_close(s2, s + 1)


def test_wrong_shapes_are_rejected_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"actions must have shape \(10, 1\)"):
        ReplayBuffer(np.zeros((10, 4)), np.zeros((10, 2)), np.zeros((10, 4)), device="cpu")
