"""The offline dataset: how it is collected, saved with a manifest, verified and loaded.

Behaviour policy ("spread starts + random actions"): each rollout starts either from the
environment's own reset (half of them) or from a state drawn uniformly from a box around the
upright state, set directly in the simulator; then it applies up to `ROLLOUT_STEPS` actions drawn
uniformly from [-3, 3], stopping early when the pole falls (|angle| > 0.2). Uniform random actions
from reset alone fall within about 2 steps and only ever see |x| < 0.3; the spread starts show the
model the states a planner visits when it corrects a disturbance.

Regenerate bit for bit:  python -m mbrl_helpers.make_dataset --regenerate

The noisy variant (data/transitions_noisy.npz, data/manifest_noisy.json) holds the same
transitions with seeded Gaussian sensor noise added to the next states of every transition whose
state has cart x > 0, and nowhere else: noise the model can learn (aleatoric uncertainty) on one
half of the data, so that a stochastic model's sigma has something real to measure there.

Regenerate bit for bit:  python -m mbrl_helpers.make_dataset --variant noisy --regenerate
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from mbrl_helpers.env import ACTION_HIGH, ACTION_LOW, DT, ENV_ID, FRAME_SKIP, STATE_DIM, make_env, set_env_state

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATASET_PATH = DATA_DIR / "transitions.npz"
MANIFEST_PATH = DATA_DIR / "manifest.json"
REGENERATE_COMMAND = "python -m mbrl_helpers.make_dataset --regenerate"

N_TRANSITIONS = 5_000
SEED = 2026
ROLLOUT_STEPS = 10
# Half-widths of the box that spread start states are drawn from: [x, angle, x_dot, angle_dot].
START_BOX = np.array([0.9, 0.15, 1.0, 1.0])
BEHAVIOUR_POLICY = (
    f"rollouts of up to {ROLLOUT_STEPS} uniform random actions in [-3, 3]; half start from env.reset(), "
    f"half from a state uniform in |x|<{START_BOX[0]}, |angle|<{START_BOX[1]}, "
    f"|x_dot|<{START_BOX[2]}, |angle_dot|<{START_BOX[3]} set in the simulator; a rollout stops when the pole falls"
)


NOISY_DATASET_PATH = DATA_DIR / "transitions_noisy.npz"
NOISY_MANIFEST_PATH = DATA_DIR / "manifest_noisy.json"
NOISY_REGENERATE_COMMAND = "python -m mbrl_helpers.make_dataset --variant noisy --regenerate"
# Std of the sensor noise on each next-state component where x > 0, chosen by measurement: the
# reference StochasticModel trained on the clean data predicts sigma = (0.005, 0.006, 0.026, 0.16)
# at x = +0.5 (other components and the action 0); on this variant (0.12, 0.15, 0.17, 0.18), while
# at x = -0.5 it stays near the clean values (0.012, 0.015, 0.025, 0.035). With std 0.05 the rise
# in x and angle was 10x as well, but the norm over the 4 components did not rise at all (the
# clean fit's own error in the angular velocity dominates it).
NOISE_STD = 0.1
NOISE_SEED = 7
NOISE_REGION = "cart x > 0"
NOISE_DESCRIPTION = (
    f"the transitions of {DATASET_PATH.name} with Gaussian noise (std {NOISE_STD}, seed {NOISE_SEED}) added to every "
    f"component of next_states where the state's {NOISE_REGION}; states, actions and the rest unchanged"
)


class DatasetError(RuntimeError):
    """The dataset file is missing, corrupt, or does not match its manifest."""


def collect_transitions(
    n_transitions: int = N_TRANSITIONS, seed: int = SEED, progress: bool = True, spread_starts: bool = True, rollout_steps: int | None = ROLLOUT_STEPS
) -> dict:
    """Run the behaviour policy until `n_transitions` transitions are collected.

    Returns a dict of float arrays: states (N, 4), actions (N, 1), next_states (N, 4),
    terminated (N,) and rollout (N,) (index of the rollout each transition belongs to).
    spread_starts=False starts every rollout from env.reset(); rollout_steps=None lets each run
    until the pole falls (notebook 4's start data, `mbrl_helpers.closing_the_loop.collect_reset_only`).
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    env = make_env()
    columns = {k: [] for k in ("states", "actions", "next_states", "terminated", "rollout")}
    rollout = 0
    with tqdm(total=n_transitions, desc="collecting transitions", disable=not progress) as bar:
        while len(columns["states"]) < n_transitions:
            state, _ = env.reset(seed=int(rng.integers(2**31)))
            if spread_starts and rollout % 2 == 1:
                state = set_env_state(env, rng.uniform(-START_BOX, START_BOX))
            for _ in range(rollout_steps) if rollout_steps is not None else itertools.count():
                action = rng.uniform(ACTION_LOW, ACTION_HIGH, size=1).astype(np.float32)
                next_state, _, terminated, truncated, _ = env.step(action)
                for key, value in zip(columns, (state, action, next_state, terminated, rollout)):
                    columns[key].append(value)
                bar.update(1)
                state = next_state
                if terminated or truncated or len(columns["states"]) == n_transitions:
                    break
            rollout += 1
    env.close()
    return {
        "states": np.asarray(columns["states"], dtype=np.float64),
        "actions": np.asarray(columns["actions"], dtype=np.float32),
        "next_states": np.asarray(columns["next_states"], dtype=np.float64),
        "terminated": np.asarray(columns["terminated"], dtype=bool),
        "rollout": np.asarray(columns["rollout"], dtype=np.int64),
    }


def dataset_digest(arrays: dict) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes (independent of the zip container)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the data is meant to be read by everyone
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def add_sensor_noise(arrays: dict, std: float = NOISE_STD, seed: int = NOISE_SEED) -> dict:
    """A copy of the clean arrays with Gaussian noise on next_states where the state's cart x > 0.

    The noise is drawn for every transition (so each row's draw depends on the seed alone, not on
    how many rows lie in the region) and applied only to the rows with x > 0.
    """
    noisy = {key: np.array(value, copy=True) for key, value in arrays.items()}
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, std, size=noisy["next_states"].shape)
    in_region = noisy["states"][:, 0] > 0
    noisy["next_states"][in_region] += noise[in_region]
    return noisy


def collect_noisy_transitions(n_transitions: int = N_TRANSITIONS, seed: int = SEED, progress: bool = True) -> dict:
    """The clean transitions collected again, then the sensor noise of add_sensor_noise."""
    return add_sensor_noise(collect_transitions(n_transitions, seed, progress))


def save_dataset(
    arrays: dict,
    path: Path = DATASET_PATH,
    manifest_path: Path = MANIFEST_PATH,
    seed: int = SEED,
    variant: str = "clean",
) -> dict:
    """Save the arrays (npz) and a manifest recording count, dt, behaviour policy, seed and sha256.

    variant "noisy" records the sensor noise (std, seed, region) and its own regenerate command.
    """
    if variant not in ("clean", "noisy"):
        raise ValueError(f"variant must be 'clean' or 'noisy', got {variant!r}")
    manifest = {
        "file": path.name,
        "transitions": int(len(arrays["states"])),
        "rollouts": int(arrays["rollout"].max() + 1),
        "env_id": ENV_ID,
        "frame_skip": FRAME_SKIP,
        "dt": DT,
        "behaviour_policy": BEHAVIOUR_POLICY,
        "seed": seed,
        "sha256": dataset_digest(arrays),
        "regenerate": REGENERATE_COMMAND,
    }
    if variant == "noisy":
        manifest["sensor_noise"] = {"std": NOISE_STD, "seed": NOISE_SEED, "region": NOISE_REGION, "description": NOISE_DESCRIPTION}
        manifest["regenerate"] = NOISY_REGENERATE_COMMAND

    def write_npz(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would otherwise append ".npz" to the name
            np.savez_compressed(f, **arrays)

    _atomic_write(path, write_npz)
    _atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2) + "\n"))
    return manifest


def load_dataset(
    path: Path | str = DATASET_PATH,
    manifest_path: Path | str = MANIFEST_PATH,
    verify: bool = True,
    regenerate_command: str = REGENERATE_COMMAND,
) -> dict:
    """Load the offline transitions as a dict of NumPy arrays, checked against the manifest.

    Raises DatasetError, naming the file and the command that regenerates it, when the file is
    missing, unreadable, or its contents differ from the manifest's sha256.
    """
    path, manifest_path = Path(path), Path(manifest_path)
    fix = f"Regenerate it with `{regenerate_command}` from the course's root folder."
    if not path.exists():
        raise DatasetError(f"Dataset file not found: {path}. {fix}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as error:  # zipfile.BadZipFile, ValueError, OSError, EOFError, ...
        raise DatasetError(f"Dataset file {path} is corrupt or not an .npz file ({error}). {fix}") from error
    missing = {"states", "actions", "next_states"} - set(arrays)
    if missing:
        raise DatasetError(f"Dataset file {path} lacks the arrays {sorted(missing)}. {fix}")
    if verify:
        if not manifest_path.exists():
            raise DatasetError(f"Dataset manifest not found: {manifest_path}. {fix}")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise DatasetError(f"Dataset manifest {manifest_path} is not valid JSON ({error}). {fix}") from error
        if dataset_digest(arrays) != manifest.get("sha256"):
            raise DatasetError(f"Dataset file {path} does not match the sha256 in {manifest_path}. {fix}")
    n = len(arrays["states"])
    if arrays["states"].shape != (n, STATE_DIM) or arrays["next_states"].shape != (n, STATE_DIM):
        raise DatasetError(f"Dataset file {path} has states of the wrong shape. {fix}")
    return arrays


def load_noisy_dataset(verify: bool = True) -> dict:
    """The noisy variant: the same transitions as load_dataset(), with sensor noise on next_states where x > 0.

    Same dict of arrays as load_dataset(), checked against data/manifest_noisy.json.
    """
    return load_dataset(NOISY_DATASET_PATH, NOISY_MANIFEST_PATH, verify=verify, regenerate_command=NOISY_REGENERATE_COMMAND)
