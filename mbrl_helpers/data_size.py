"""Displaced-start success against the amount of training data, as measured by the course's benchmark.

Training 27 models (3 kinds x 3 data sizes x 3 seeds) and running 216 episodes takes 10 to 20
minutes on a 2-core CPU, too long for a notebook, so notebook 3 plots the numbers the benchmark
wrote, `mbrl_helpers/measured/data_size.json`, made by

    python -m benchmarks.data_size --sizes 300 1000 5000 --seeds 3 --max-steps 100 --output mbrl_helpers/measured/data_size.json

(the command is stored in the file too). The benchmark belongs to the course's repository, not to
the student bundle; its docstring says how each model is trained and planned with. With all 5,000
transitions the deterministic model and the ensemble are exactly notebook 3's own displaced-start
table (same training, seeds, planner and 100 steps), so the shipped file holds only the
probabilistic ensemble at that size and the notebook adds its own two rows (`add_results`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MEASURED_DATA_SIZE = Path(__file__).resolve().parent / "measured" / "data_size.json"
LABELS = {
    "deterministic": "deterministic",
    "ensemble": "ensemble of 5 (mean return)",
    "pets": "probabilistic ensemble of 5 (trajectory sampling)",
}


def load_data_size_results(path: str | Path = MEASURED_DATA_SIZE) -> dict:
    """The benchmark's JSON: sizes, seeds, max_steps, command, and results[size][kind] with
    success_rate, mean_return, successes, cases and returns (one row per seed, one column per start)."""
    report = json.loads(Path(path).read_text())
    for key in ("sizes", "seeds", "max_steps", "results", "command"):
        if key not in report:
            raise ValueError(f"{path} is not the output of benchmarks.data_size: it has no {key!r}")
    return report


def add_results(report: dict, size: int, kind: str, returns) -> dict:
    """A copy of `report` with one more entry: `kind` at `size` transitions, `returns` (seeds, starts)
    measured elsewhere with the same settings (e.g. a DisplacedStartSummary's `.returns`)."""
    returns = np.asarray(returns, dtype=float)
    if returns.shape != (len(report["seeds"]), len(report["starts"])):
        raise ValueError(f"returns must have shape (seeds, starts) = ({len(report['seeds'])}, {len(report['starts'])}), got {returns.shape}")
    results = {key: dict(value) for key, value in report["results"].items()}
    results.setdefault(str(size), {})[kind] = {"returns": returns.tolist()}
    sizes = sorted(set(report["sizes"]) | {int(size)})
    return {**report, "sizes": sizes, "results": results}


def successes_per_seed(report: dict, kind: str) -> dict[int, np.ndarray]:
    """size -> (seeds,): how many of the displaced starts each seed's agent recovered from, for
    every size at which `kind` was measured."""
    counts = {}
    for size in report["sizes"]:
        entry = report["results"].get(str(size), {}).get(kind)
        if entry is not None:
            returns = np.asarray(entry["returns"])  # (seeds, starts)
            counts[int(size)] = (returns >= report["max_steps"]).sum(axis=1)
    return counts


def plot_data_size(report: dict, title: str | None = None):
    """Starts recovered from (of 8) against the number of training transitions: one line per kind of
    model (the mean over the seeds), each seed a dot."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    sizes = np.asarray(report["sizes"], dtype=float)
    n_starts = len(report["starts"])
    for i, kind in enumerate(LABELS):
        per_size = successes_per_seed(report, kind)
        if not per_size:
            continue
        shift = 1.0 + 0.06 * (i - (len(LABELS) - 1) / 2)  # side by side on the log axis
        xs = np.array(sorted(per_size), dtype=float) * shift
        ax.plot(xs, [per_size[size].mean() for size in sorted(per_size)], marker="o", color=f"C{i}", label=LABELS[kind])
        for x, size in zip(xs, sorted(per_size)):
            ax.scatter(np.full(len(per_size[size]), x), per_size[size], color=f"C{i}", alpha=0.45, s=16)
    ax.set_xscale("log")
    ax.set_xlim(sizes.min() * 0.7, sizes.max() * 1.4)  # room for the side-by-side offsets, even with one size
    ax.set_xticks(sizes, [f"{int(s):,}" for s in sizes])
    ax.minorticks_off()
    ax.set_ylim(-0.3, n_starts + 0.3)
    ax.set_xlabel("training transitions (drawn from the offline dataset)")
    ax.set_ylabel(f"displaced starts recovered (of {n_starts})")
    ax.set_title(title or f"Recovery from the displaced starts ({report['max_steps']} steps), by amount of data", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig
