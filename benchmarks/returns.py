"""Returns of the three reference agents on the real environment.

    python -m benchmarks.returns --episodes 5 --json
    python -m benchmarks.returns --transitions 250 --json   # trained on the first 250 transitions only

Trains each reference model on the shipped dataset with a fixed seed, then runs its CEM planner
for seeded episodes of up to 1000 steps. Target: every model's min_return >= 950, mean >= 990.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.common import MODEL_KINDS, build_agent, train_reference
from mbrl_helpers import CEM_SETTINGS, evaluate, load_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.returns", description=__doc__.split("\n\n")[0], epilog="example: python -m benchmarks.returns --episodes 5 --json"
    )
    parser.add_argument("--episodes", type=int, default=5, help="seeded episodes per model (seeds 0..N-1)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--models", nargs="+", choices=MODEL_KINDS, default=list(MODEL_KINDS))
    parser.add_argument("--max-steps", type=int, default=1000, help="episode length limit (1000 is the real task)")
    parser.add_argument("--transitions", type=int, default=None, help="train on the first N transitions of the shipped data (default: all)")
    parser.add_argument("--train-steps", type=int, default=None, help="override the training length (smoke tests only)")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)

    dataset = load_dataset()
    if args.transitions is not None:
        # The first N in collection order: whole rollouts, half of them from reset, as in the full data.
        dataset = {key: value[: args.transitions] for key, value in dataset.items()}
    report = {"transitions": int(len(dataset["states"])), "cem_settings": CEM_SETTINGS}
    for kind in args.models:
        model, train_seconds = train_reference(kind, dataset, seed=args.seed, steps=args.train_steps, progress=not args.json)
        summary = evaluate(build_agent(kind, model), seeds=range(args.episodes), max_steps=args.max_steps, progress=not args.json)
        report[kind] = {
            "mean_return": summary.mean_return,
            "min_return": summary.min_return,
            "episodes": [e.episode_return for e in summary.episodes],
            "train_seconds": round(train_seconds, 2),
            "median_decision_ms": round(summary.median_decision_ms, 3),
        }
        if not args.json:
            print(f"{kind}: returns {report[kind]['episodes']}, {report[kind]['median_decision_ms']} ms per decision", file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
