"""Plumbing for the model-based RL course: environment, data, buffer, reward, training, evaluation, plots.

Nothing here is an exercise's answer: the models' losses and predictions and the planner are the
students' to write.
"""

from mbrl_helpers.buffer import ReplayBuffer
from mbrl_helpers.config import BATCH_SIZE, CEM_SETTINGS, HIDDEN_SIZE, LEARNING_RATE, N_HIDDEN, N_MEMBERS, TRAIN_STEPS
from mbrl_helpers.data import DatasetError, load_dataset, load_noisy_dataset
from mbrl_helpers.displaced_starts import DISPLACED_STARTS, DisplacedStartSummary, evaluate_displaced_starts, horizon_sweep
from mbrl_helpers.env import (
    ACTION_DIM,
    ACTION_HIGH,
    ACTION_LOW,
    DT,
    MAX_EPISODE_STEPS,
    STATE_DIM,
    get_device,
    make_env,
    seed_everything,
    set_env_state,
)
from mbrl_helpers.evaluation import EpisodeResult, EvaluationSummary, MPCAgent, evaluate, run_episode
from mbrl_helpers.networks import EnsembleLinear, build_ensemble_mlp, build_mlp
from mbrl_helpers.own_code import OwnCodeError, OwnCodeMissing, load_own_code, load_own_code_or_none
from mbrl_helpers.planning import RANDOM_SHOOTING_SETTINGS, random_shooting_plan
from mbrl_helpers.plots import (
    animate_episode,
    animation_html,
    pendulum_filmstrip,
    plot_compounding_error,
    plot_episode,
    plot_training_curve,
    plot_uncertainty,
)
from mbrl_helpers.prediction import MultiStepErrors, UncertaintySweep, held_out_trajectories, multi_step_errors, predicted_uncertainty
from mbrl_helpers.reward import COST_MATRIX, compute_rewards
from mbrl_helpers.simulator_model import SimulatorModel
from mbrl_helpers.training import train_model
