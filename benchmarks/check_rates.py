"""False-fail and false-pass rates of the graded checks whose verdict rests on sampled numbers.

    python -m benchmarks.check_rates --students 200 --json
    python -m benchmarks.check_rates --checks test-cem-elites test-cem-std-floor --students 50

A check with hidden parts draws its seeds (and inputs) for each student, so a verdict may depend on
them: this measures, over many made-up students, how often each check fails the reference planner
(a false failure) and how often it passes each known mistake it is meant to catch (a false pass),
and how often it fails the mistakes it is not meant for (which must be 0 % or 100 %: a verdict that
depends on the student's seed is unfair). The planners are the reference's, changed by one text
substitution each (the mistakes of autograder/examples/catalogue.py and the toy checks), run in a
runner without the sandbox (the same checks, the same calls; the sandbox changes no number).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import textwrap
import time

import numpy as np

ROLLOUT = "            states = states + predict_delta(states, actions[:, t])\n            returns += reward_fn(states)\n"
RESET = "        returns = torch.zeros(n_samples, device=state.device)\n"
# name -> substitutions (old, new) in mbrl_reference.planners.cem_plan's source
PLANNER_MISTAKES = {
    "reference": [],
    # A correct planner that draws its samples in another order: unlike the reference itself, it gets
    # other random numbers from the same seed, so it measures the false failures of the comparisons.
    "reference-other-draws": [("Normal(mean, std).sample((n_samples,))", "(mean + std * torch.randn(horizon, n_samples, ACTION_DIM).transpose(0, 1))")],
    "rewards-of-s0-to-sT-1": [
        (
            ROLLOUT,
            "            returns += reward_fn(states)\n            states = states + predict_delta(states, actions[:, t])\n",
        )
    ],
    "std-over-all-samples": [("std = elite_actions.std(dim=0)", "std = actions.std(dim=0)")],
    "std-never-refitted": [("        std = elite_actions.std(dim=0).clamp(min=std_floor)\n", "")],
    "returns-not-reset": [
        (
            "    for _ in range(n_iters):\n",
            "    returns = torch.zeros(n_samples, device=state.device)\n    for _ in range(n_iters):\n",
        ),
        (RESET, ""),
    ],
    "last-action": [("    return mean[0]", "    return mean[-1]")],
    "elites-lowest-return": [
        (
            "returns.topk(n_elite).indices",
            "returns.topk(n_elite, largest=False).indices",
        )
    ],
    "std-not-floored": [
        (
            "std = elite_actions.std(dim=0).clamp(min=std_floor)",
            "std = elite_actions.std(dim=0)",
        )
    ],
    "elites-wrong-axis": [
        ("elite_actions.mean(dim=0)", "elite_actions.mean(dim=1)"),
        ("elite_actions.std(dim=0)", "elite_actions.std(dim=1)"),
    ],
}
ENSEMBLE_ROLLOUT = "            states = states + predict_delta(states, actions[:, t])\n            returns += reward_fn(states)\n"
ENSEMBLE_MISTAKES = {
    "reference": [],
    "rewards-of-s0-to-sT-1": [
        (
            ENSEMBLE_ROLLOUT,
            "            returns += reward_fn(states)\n            states = states + predict_delta(states, actions[:, t])\n",
        )
    ],
    "std-over-all-samples": [("std = elite_actions.std(dim=0)", "std = actions.std(dim=0)")],
    "std-never-refitted": [("        std = elite_actions.std(dim=0).clamp(min=std_floor)\n", "")],
    "returns-not-reset": [
        (
            "    for _ in range(n_iters):\n",
            "    returns = torch.zeros(n_members, n_samples, device=state.device)\n    for _ in range(n_iters):\n",
        ),
        (
            "        returns = torch.zeros(n_members, n_samples, device=state.device)\n",
            "",
        ),
    ],
    "ranked-by-first-member": [("expected_returns = returns.mean(dim=0)", "expected_returns = returns[0]")],
    "ranked-by-best-member": [("expected_returns = returns.mean(dim=0)", "expected_returns = returns.max(dim=0).values")],
    "ensemble-std-not-floored": [
        (
            "std = elite_actions.std(dim=0).clamp(min=std_floor)",
            "std = elite_actions.std(dim=0)",
        )
    ],
}
NOTEBOOK_CHECKS = {
    "01_deterministic_cem": (
        "cem_plan",
        PLANNER_MISTAKES,
        (
            "test-cem-elites",
            "test-cem-first-action",
            "test-cem-std-floor",
            "test-cem-reference",
        ),
    ),
    "03_ensemble": (
        "ensemble_cem_plan",
        ENSEMBLE_MISTAKES,
        (
            "test-ens-cem-mean-return",
            "test-ens-cem-elites-first-floor",
            "test-ens-cem-reference",
        ),
    ),
}
HEADER = "from typing import Callable\nimport torch\nPredictDelta = Callable\nfrom torch.distributions import Normal\nfrom mbrl_helpers import ACTION_DIM, ACTION_HIGH, ACTION_LOW, CEM_SETTINGS, compute_rewards\n"


def planner_source(function: str, substitutions: list[tuple[str, str]]) -> str:
    from mbrl_reference import planners

    source = textwrap.dedent(inspect.getsource(getattr(planners, function)))
    for old, new in substitutions:
        if source.count(old) != 1:
            raise SystemExit(f"{function}: the substitution {old!r} does not occur exactly once in the reference")
        source = source.replace(old, new)
    return source


def pendulum_gaps(notebook: str, names: list[str], students: int) -> dict:
    """The hidden part of test-cem-reference / test-ens-cem-reference, in this process: for each made-up
    student (its own pendulum states and seeds, as `plan_against_reference` draws them: 30 seeds, 90
    more when the gap or the spread is ambiguous), the verdict (`plan_failure`), the largest gap /
    tolerance over the three states (>= 1 fails) and the spread ratio (`spread_ratio`), with the
    check's own rules (autograder.checker.checks.common)."""
    import torch

    from autograder.checker.checks.common import (
        _gap_over_tolerance,
        fixture,
        needs_more_seeds,
        network_predict_delta,
        pendulum_states,
        plan_failure,
        reference_module,
        spread_ratio,
        trained_net,
    )
    from autograder.checker.core import Context
    from mbrl_reference import planners

    function, mistakes, _ = NOTEBOOK_CHECKS[notebook]
    members = int(fixture(notebook)["n_members"]) if notebook == "03_ensemble" else 0
    net = reference_module(trained_net(notebook, members=members) if members else trained_net(notebook))
    predict = network_predict_delta(net, members)
    extra = {"n_members": members} if members else {}
    reference_planner = getattr(planners, function)
    result = {}
    for name in names:
        namespace = dict(vars(planners))
        exec(planner_source(function, mistakes[name]), namespace)  # noqa: S102 - the reference's own code, changed by one substitution
        planner = namespace[function]
        ratios, first_ratios, spreads, failures, extended = [], [], [], [], 0
        for student in range(students):
            context = Context(student=f"student-{student}", notebook=notebook, secret="rates", hidden=True)
            states = pendulum_states(context, "cem-reference", fixture(notebook)["plan_states"].numpy())

            def both(seeds, states=states, planner=planner):
                planned, reference = np.zeros((len(states), len(seeds))), np.zeros((len(states), len(seeds)))
                with torch.no_grad():
                    for i, state in enumerate(states):
                        for j, seed in enumerate(seeds):
                            torch.manual_seed(seed)
                            planned[i, j] = float(planner(predict, torch.as_tensor(state), **extra)[0])
                            torch.manual_seed(seed)
                            reference[i, j] = float(reference_planner(predict, torch.as_tensor(state), **extra)[0])
                return planned, reference

            planned, reference = both([context.seed(f"cem-reference/{i}") % 100_000 for i in range(30)])
            first_ratios.append(_gap_over_tolerance(planned, reference))
            first_failure = plan_failure(planned, reference)
            if needs_more_seeds(planned, reference):
                extended += 1
                more = both([context.seed(f"cem-reference/{i}") % 100_000 for i in range(30, 120)])
                planned, reference = np.concatenate([planned, more[0]], axis=1), np.concatenate([reference, more[1]], axis=1)
            ratios.append(_gap_over_tolerance(planned, reference))
            spreads.append(spread_ratio(planned, reference))
            failures.append((plan_failure(planned, reference), first_failure))
        ratios, first, spreads = np.array(ratios), np.array(first_ratios), np.array(spreads)
        spread = lambda values: [round(float(values.min()), 2), round(float(np.median(values)), 2), round(float(values.max()), 2)]  # noqa: E731
        result[name] = {
            "failed": sum(final is not None for final, _ in failures),
            "of": students,
            "verdicts": {verdict or "passed": sum(final == verdict for final, _ in failures) for verdict in {final for final, _ in failures}},
            "gap_over_tolerance": spread(ratios),
            "spread_ratio": spread(spreads),
            "extended_to_120_seeds": extended,
            "with_30_seeds_only": {"failed": sum(first is not None for _, first in failures), "gap_over_tolerance": spread(first)},
        }
        print(f"{notebook} cem-reference (in process) {name:24s} {result[name]}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_rates", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--students",
        type=int,
        default=100,
        help="made-up students (hidden seeds) per planner and check",
    )
    parser.add_argument(
        "--notebooks",
        nargs="+",
        default=list(NOTEBOOK_CHECKS),
        choices=list(NOTEBOOK_CHECKS),
    )
    parser.add_argument("--checks", nargs="+", default=None, help="only these graded cells")
    parser.add_argument("--mistakes", nargs="+", default=None, help="only these planners")
    parser.add_argument(
        "--pendulum",
        action="store_true",
        help="only the reference checks' hidden pendulum comparison, in this process (fast)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.pendulum:
        import torch

        torch.set_num_threads(1)
        report = {
            notebook: pendulum_gaps(
                notebook,
                args.mistakes or list(NOTEBOOK_CHECKS[notebook][1]),
                args.students,
            )
            for notebook in args.notebooks
        }
        if args.json:
            json.dump(report, sys.stdout, indent=1)
            print()
        return 0

    from autograder.checker.checks import registry
    from autograder.checker.core import Context, Runner, run_check
    from autograder.protocol.limits import Limits

    report: dict = {"students": args.students, "rates": {}}
    started = time.perf_counter()
    with Runner(Limits(sandbox=False)) as runner:
        for notebook in args.notebooks:
            function, mistakes, check_ids = NOTEBOOK_CHECKS[notebook]
            checks = registry(notebook).checks
            for name, substitutions in mistakes.items():
                if args.mistakes and name not in args.mistakes:
                    continue
                cell = runner.run_cell(HEADER + planner_source(function, substitutions), timeout=120)
                if cell.error:
                    raise SystemExit(f"{notebook}/{name}: the planner cell failed: {cell.error}")
                for check_id in check_ids:
                    if args.checks and check_id not in args.checks:
                        continue
                    failed, hints = 0, {}
                    for student in range(args.students):
                        verdict = run_check(
                            checks[check_id],
                            runner,
                            Context(
                                student=f"student-{student}",
                                notebook=notebook,
                                secret="rates",
                                hidden=True,
                            ),
                        )
                        if not verdict.passed:
                            failed += 1
                            key = verdict.message[:90]
                            hints[key] = hints.get(key, 0) + 1
                    row = {"failed": failed, "of": args.students, "hints": hints}
                    report["rates"][f"{notebook}/{check_id}/{name}"] = row
                    if not args.json:
                        print(
                            f"{notebook} {check_id:32s} {name:24s} failed {failed:4d}/{args.students}  {sorted(hints.items(), key=lambda kv: -kv[1])[:2]}",
                            flush=True,
                        )
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
