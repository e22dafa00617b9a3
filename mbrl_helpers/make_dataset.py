"""Check or regenerate the course's offline dataset (data/transitions.npz and data/manifest.json).

    python -m mbrl_helpers.make_dataset               # check the file against its manifest
    python -m mbrl_helpers.make_dataset --regenerate  # collect it again, bit for bit
"""
from __future__ import annotations

import argparse
import sys

from mbrl_helpers.data import (
    DATASET_PATH,
    MANIFEST_PATH,
    N_TRANSITIONS,
    REGENERATE_COMMAND,
    SEED,
    DatasetError,
    collect_transitions,
    load_dataset,
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
    args = parser.parse_args(argv)
    if args.regenerate:
        manifest = save_dataset(collect_transitions(args.transitions, args.seed), seed=args.seed)
        print(f"wrote {DATASET_PATH} ({manifest['transitions']} transitions, sha256 {manifest['sha256'][:12]}...)")
        return 0
    try:
        arrays = load_dataset()
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{DATASET_PATH}: {len(arrays['states'])} transitions, matches {MANIFEST_PATH.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
