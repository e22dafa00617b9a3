"""The MuJoCo simulator itself behind a learned model's interface: a "model" with no model error.

Give a planner `SimulatorModel().predict_delta` in place of a trained model's and whatever it still
gets wrong is the planner's own limit (its horizon, its samples, its reward), not the model's.
Comparing the two at the same settings tells planner limits from model error.

It is exact but slow: every prediction is 5 MuJoCo steps (RK4) run one state at a time, 0.07 to
0.2 ms per state on a 2-core CPU depending on its load, so one CEM decision (200 samples, horizon 5,
5 iterations) takes 0.3 to 1 s, against 5 to 15 ms with a learned model.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from mbrl_helpers.env import ACTION_DIM, STATE_DIM, make_env


class SimulatorModel:
    """The true dynamics, asked the way a model is: predict_delta(states, actions) -> s' - s."""

    def __init__(self):
        env = make_env()
        self.mj_model = env.unwrapped.model  # the env's own physics, so the two cannot drift apart
        self.frame_skip = env.unwrapped.frame_skip
        env.close()
        self.mj_data = mujoco.MjData(self.mj_model)  # a simulator of its own, apart from any env's

    @torch.no_grad()
    def predict_delta(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """states (..., S) and actions (..., A) -> the true state changes (..., S), like env.step's.

        Each state is put in the simulator (qpos = [x, angle], qvel = [x_dot, angle_dot]) and
        stepped `frame_skip` times with the action as the motor's control, as env.step does.
        The result has the states' dtype and device.
        """
        flat_states = states.detach().reshape(-1, STATE_DIM).cpu().double().numpy()
        flat_actions = actions.detach().reshape(-1, ACTION_DIM).cpu().double().numpy()
        if len(flat_states) != len(flat_actions):
            raise ValueError(f"one action per state: got states {tuple(states.shape)} and actions {tuple(actions.shape)}")
        next_states = np.empty_like(flat_states)
        for i, (state, action) in enumerate(zip(flat_states, flat_actions)):
            mujoco.mj_resetData(self.mj_model, self.mj_data)  # no solver warm start carried between states
            self.mj_data.qpos[:] = state[:2]
            self.mj_data.qvel[:] = state[2:]
            self.mj_data.ctrl[:] = action  # MuJoCo clamps it to the motor's range [-3, 3]
            mujoco.mj_step(self.mj_model, self.mj_data, nstep=self.frame_skip)
            next_states[i, :2] = self.mj_data.qpos
            next_states[i, 2:] = self.mj_data.qvel
        deltas = torch.as_tensor(next_states - flat_states, dtype=states.dtype, device=states.device)
        return deltas.reshape(states.shape)
