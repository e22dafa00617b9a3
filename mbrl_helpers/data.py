"""The offline dataset: how it is collected, saved with a manifest, verified and loaded.

Behaviour policy ("spread starts + random actions"): each rollout starts either from the
environment's own reset (half of them) or from a state drawn uniformly from a box around the
upright state, set directly in the simulator; then it applies up to `ROLLOUT_STEPS` actions drawn
uniformly from [-3, 3], stopping early when the pole falls (|angle| > 0.2). Uniform random actions
from reset alone fall within about 2 steps and only ever see |x| < 0.3; the spread starts show the
model the states a planner visits when it corrects a disturbance.

Regenerate bit for bit:  python -m mbrl_helpers.make_dataset --regenerate
"""
from __future__ import annotations

import hashlib
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


class DatasetError(RuntimeError):
    """The dataset file is missing, corrupt, or does not match its manifest."""


def collect_transitions(n_transitions: int = N_TRANSITIONS, seed: int = SEED, progress: bool = True) -> dict:
    """Run the behaviour policy until `n_transitions` transitions are collected.

    Returns a dict of float arrays: states (N, 4), actions (N, 1), next_states (N, 4),
    terminated (N,) and rollout (N,) (index of the rollout each transition belongs to).
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    env = make_env()
    columns = {k: [] for k in ("states", "actions", "next_states", "terminated", "rollout")}
    rollout = 0
    with tqdm(total=n_transitions, desc="collecting transitions", disable=not progress) as bar:
        while len(columns["states"]) < n_transitions:
            state, _ = env.reset(seed=int(rng.integers(2**31)))
            if rollout % 2 == 1:
                state = set_env_state(env, rng.uniform(-START_BOX, START_BOX))
            for _ in range(ROLLOUT_STEPS):
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


def save_dataset(arrays: dict, path: Path = DATASET_PATH, manifest_path: Path = MANIFEST_PATH, seed: int = SEED) -> dict:
    """Save the arrays (npz) and a manifest recording count, dt, behaviour policy, seed and sha256."""
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

    def write_npz(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would otherwise append ".npz" to the name
            np.savez_compressed(f, **arrays)

    _atomic_write(path, write_npz)
    _atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2) + "\n"))
    return manifest


def load_dataset(path: Path | str = DATASET_PATH, manifest_path: Path | str = MANIFEST_PATH, verify: bool = True) -> dict:
    """Load the offline transitions as a dict of NumPy arrays, checked against the manifest.

    Raises DatasetError, naming the file and the command that regenerates it, when the file is
    missing, unreadable, or its contents differ from the manifest's sha256.
    """
    path, manifest_path = Path(path), Path(manifest_path)
    fix = f"Regenerate it with `{REGENERATE_COMMAND}` from the course's root folder."
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
