"""Check or regenerate the course's offline datasets (data/transitions.npz and data/manifest.json;
the noisy variant data/transitions_noisy.npz and data/manifest_noisy.json).

    python -m mbrl_helpers.make_dataset                                # check the clean file against its manifest
    python -m mbrl_helpers.make_dataset --regenerate                   # collect it again, bit for bit
    python -m mbrl_helpers.make_dataset --variant noisy                # check the noisy variant
    python -m mbrl_helpers.make_dataset --variant noisy --regenerate   # collect it again, then add the seeded noise
"""

from __future__ import annotations

import argparse
import sys

from mbrl_helpers.data import (
    DATASET_PATH,
    MANIFEST_PATH,
    N_TRANSITIONS,
    NOISY_DATASET_PATH,
    NOISY_MANIFEST_PATH,
    REGENERATE_COMMAND,
    SEED,
    DatasetError,
    collect_noisy_transitions,
    collect_transitions,
    load_dataset,
    load_noisy_dataset,
    save_dataset,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mbrl_helpers.make_dataset",
        description="Check or regenerate the course's offline dataset.",
        epilog=f"example: {REGENERATE_COMMAND}",
    )
    parser.add_argument("--regenerate", action="store_true", help="collect the transitions again and overwrite data/")
    parser.add_argument("--transitions", type=int, default=N_TRANSITIONS, help="number of transitions (default %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the behaviour policy (default %(default)s)")
    parser.add_argument(
        "--variant",
        choices=("clean", "noisy"),
        default="clean",
        help="clean: the simulator's transitions; noisy: the same with sensor noise on next_states where x > 0 (default %(default)s)",
    )
    args = parser.parse_args(argv)
    noisy = args.variant == "noisy"
    path, manifest_path = (NOISY_DATASET_PATH, NOISY_MANIFEST_PATH) if noisy else (DATASET_PATH, MANIFEST_PATH)
    if args.regenerate:
        collect = collect_noisy_transitions if noisy else collect_transitions
        manifest = save_dataset(collect(args.transitions, args.seed), path, manifest_path, seed=args.seed, variant=args.variant)
        print(f"wrote {path} ({manifest['transitions']} transitions, sha256 {manifest['sha256'][:12]}...)")
        return 0
    try:
        arrays = load_noisy_dataset() if noisy else load_dataset()
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{path}: {len(arrays['states'])} transitions, matches {manifest_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
