"""How often the return checks' own-planner conditions fail a correct planner, and pass another one.

    python -m benchmarks.own_planner --notebook 01_deterministic_cem --null-runs 200 --swap-runs 20 --plan-runs 200 --json
    python -m benchmarks.own_planner --null-only

The return's points need three conditions after the episode (`autograder.checker.checks.common`):
the rank test (`require_own_planner`, below), the comparison on the fixture's plan_states with the
fixed model (`plan_against_reference`, 30 seeds and 90 more when ambiguous, min_spread 0.25) and the same comparison with the
MIRRORED model (`plan_against_mirrored_reference`: the side of the reference's mean, within a
margin). The two are measured in `plan_condition_runs` and `mirror_runs` (`--plan-runs` runs, and 5 times as many of the cheap mirror test,
from pools of decisions at the exact plan_states, so runs share decisions: each run is exact in
distribution, the runs are not independent). A correct
planner there is a planner whose draws differ from the reference's (a student's CEM run under the
same seed as the reference but drawing in another order): the reference itself is measured that
way, with draws independent of the reference's; run under the same seeds, as in the check, an exact
copy of the reference returns the reference's actions and cannot fail. The catalogue mistakes whose
expected lost checks do not include the return (`MISTAKES`) are measured too.

The test (`autograder.checker.checks.common.require_own_planner`) ranks the actions that drove the
checker's episode (RETURN_CHECK_STEPS steps) among the reference planner's decisions at the same states. Here, in
this process, with the notebook's fixed weights:

- null: a planner that is the reference in distribution. Its false-fail rate is that of the
  chi-square of uniform ranks (`--null-draws` multinomial draws), and is measured on real runs:
  `--null-runs` times, the test on states of the checker's episodes (one per episode seed, driven
  by the reference planner), with decisions of the planner and of the reference (see `null_runs`).
  Correct planners written differently (`variants`) are run the same way.
- swaps: episodes driven by another planner (the course's random shooting, the LQR controller of
  the course's P, the same with noise, a table of actions), `--swap-runs` episodes each from
  episode seeds 0, 1, ...; an episode whose return is under RETURN_CHECK_MIN earns nothing anyway and is
  counted apart. A swap passes the test when its statistic is at most the limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from autograder.checker.checks.common import (
    MIRROR_SEEDS,
    MIRROR_STATES,
    OWN_PLANNER_REFERENCES,
    OWN_PLANNER_STEPS,
    RETURN_CHECK_MIN,
    RETURN_CHECK_STEPS,
    Episode,
    fixture,
    mirror_passes,
    mirrored_net,
    needs_more_seeds,
    network_predict_delta,
    own_planner_passes,
    own_planner_statistic,
    plan_failure,
    rank_statistic,
    reference_decisions,
    reference_module,
    trained_net,
)
from mbrl_helpers import ACTION_HIGH, ACTION_LOW, N_MEMBERS, STATE_DIM, make_env
from mbrl_helpers.planning import random_shooting_plan


def null_tail(draws: int, seed: int = 0) -> float:
    """P(the test fails OWN_PLANNER_STEPS uniform ranks on 0..OWN_PLANNER_REFERENCES), by simulation."""
    rng = np.random.default_rng(seed)
    m, n = OWN_PLANNER_REFERENCES, OWN_PLANNER_STEPS
    spread = (np.arange(m + 1) - m / 2) ** 2
    exceed = 0
    for start in range(0, draws, 1_000_000):
        counts = rng.multinomial(n, [1 / (m + 1)] * (m + 1), size=min(1_000_000, draws - start))
        chi_square = ((counts - n / (m + 1)) ** 2 / (n / (m + 1))).sum(axis=1)
        z = ((counts * spread).sum(axis=1) / n - spread.mean()) / (spread.std() / np.sqrt(n))
        exceed += sum(not own_planner_passes(c, zz) for c, zz in zip(chi_square, z))
    return exceed / draws


def lqr_gain_of_course() -> np.ndarray:
    """K of the LQR controller whose cost-to-go is the course's P (mbrl_helpers.lqr), A and B fitted on the data."""
    from mbrl_helpers import load_dataset
    from mbrl_helpers.lqr import fit_linear_dynamics, lqr_gain, near_upright
    from mbrl_helpers.reward import COST_MATRIX

    data = load_dataset()
    mask = near_upright(data)
    A, B = fit_linear_dynamics(data["states"][mask], data["actions"][mask], data["next_states"][mask])
    return lqr_gain(A, B, np.asarray(COST_MATRIX, dtype=np.float64))


def plan_setup(notebook: str, mirrored: bool):
    """For the comparisons on plan_states: (the fixed (or mirrored) model's predict_delta, {name: decide(state, seed)}
    of the reference, the correct variants and, in notebook 1, the catalogue's MISTAKES)."""
    from mbrl_reference.planners import cem_plan, ensemble_cem_plan

    members = N_MEMBERS if notebook == "03_ensemble" else 0
    net = trained_net(notebook, members=members)
    predict = network_predict_delta(reference_module(mirrored_net(net) if mirrored else net), members)
    if notebook == "03_ensemble":
        return predict, {"reference": reference_decisions(ensemble_cem_plan, predict, n_members=N_MEMBERS)}
    if notebook != "01_deterministic_cem":
        raise SystemExit(f"the plan_states comparisons are those of notebooks 1 and 3, not {notebook!r}")
    decisions = {"reference": reference_decisions(cem_plan, predict), "cem-randn-biased-std": reference_decisions(cem_randn_biased_std, predict)}
    return predict, {**decisions, **{name: reference_decisions(mistake_planner(name), predict) for name in MISTAKES}}


def setup(notebook: str):
    """(reference decide(state, seed), the fixed model's predict_delta, episode seeds, correct variants)."""
    if notebook == "01_deterministic_cem":
        from autograder.checker.checks.deterministic_cem import EPISODE_SEEDS
        from mbrl_reference.planners import cem_plan

        predict = network_predict_delta(reference_module(trained_net(notebook)))
        decide = reference_decisions(cem_plan, predict)
        variants = {"cem-randn-biased-std": reference_decisions(cem_randn_biased_std, predict)}
        return decide, predict, EPISODE_SEEDS, variants
    if notebook == "03_ensemble":
        from autograder.checker.checks.ensemble import EPISODE_SEEDS
        from mbrl_reference.planners import ensemble_cem_plan

        predict = network_predict_delta(reference_module(trained_net(notebook, members=N_MEMBERS)), N_MEMBERS)
        return reference_decisions(ensemble_cem_plan, predict, n_members=N_MEMBERS), predict, EPISODE_SEEDS, {}
    if notebook == "02_stochastic":
        from autograder.checker.checks.stochastic import EPISODE_SEEDS, reference_model

        model = reference_model()
        return reference_decisions(random_shooting_plan, model.predict_delta), model.predict_delta, EPISODE_SEEDS, {}
    raise SystemExit(f"unknown notebook {notebook!r}")


@torch.no_grad()
def cem_randn_biased_std(predict_delta, state, horizon=5, n_samples=200, n_elite=20, n_iters=5, std_floor=0.5):
    """A correct CEM written otherwise: randn * std + mean, the biased std (divides by n_elite)."""
    from mbrl_helpers.reward import compute_rewards

    mean, std = torch.zeros(horizon, 1), torch.ones(horizon, 1)
    for _ in range(n_iters):
        actions = (mean + std * torch.randn(n_samples, horizon, 1)).clamp(ACTION_LOW, ACTION_HIGH)
        states, returns = state.expand(n_samples, -1), torch.zeros(n_samples)
        for t in range(horizon):
            states = states + predict_delta(states, actions[:, t])
            returns += compute_rewards(states)
        elites = actions[torch.argsort(returns, descending=True)[:n_elite]]
        mean, std = elites.mean(dim=0), elites.std(dim=0, unbiased=False).clamp(min=std_floor)
    return mean[0]


# Catalogue mistakes of notebook 1 whose expected lost checks do not include test-cem-return and
# that change the planner (autograder.examples.catalogue): the reference's source with the mistake's substitution.
MISTAKES = ("std-not-floored", "actions-not-clamped", "std-over-all-samples", "std-never-refitted", "returns-not-reset", "rewards-of-s0-to-sT-1")
# plan_against_reference in the return check on the real model: 30 seeds, 90 more when ambiguous, min_spread 0.25.
FIXED_SEEDS, FIXED_MORE_SEEDS, FIXED_MIN_SPREAD = 30, 90, 0.25


def mistake_planner(name: str):
    """The reference cem_plan with the catalogue mistake `name` substituted into its source."""
    import inspect

    import mbrl_reference.planners as planners
    from autograder.examples.catalogue import MISTAKES as CATALOGUE

    mistake = next(m for m in CATALOGUE if m.name == name)
    source = inspect.getsource(planners.cem_plan)
    old, new, count = mistake.substitution.old, mistake.substitution.new, mistake.substitution.count
    if source.count(old) != count:
        raise SystemExit(f"{name}: its substitution does not apply to mbrl_reference.planners.cem_plan")
    namespace = dict(vars(planners))
    exec(compile(source.replace(old, new), f"<{name}>", "exec"), namespace)  # noqa: S102 - the project's own catalogue
    return torch.no_grad()(namespace["cem_plan"])


def decision_pool(act, states: np.ndarray, size: int, seed: int) -> np.ndarray:
    """(len(states), size) first actions of `act(state, rng)`, each with fresh random numbers."""
    rng = np.random.default_rng(seed)
    return np.array([[act(state, rng) for _ in range(size)] for state in states])


def plan_condition_runs(planner_pool: np.ndarray, reference_pool: np.ndarray, seeds: int, more_seeds: int, min_spread: float, runs: int, seed: int) -> dict:
    """Verdicts of plan_against_reference (`plan_failure`) in `runs` runs: at each state `seeds`
    decisions of the planner and of the reference drawn from the pools without repeats, `more_seeds`
    more of each when the gap is ambiguous (`needs_more_seeds`)."""
    rng = np.random.default_rng(seed)
    n_states, size = planner_pool.shape
    verdicts = {"passed": 0, "mean": 0, "too wide": 0, "too narrow": 0, "asked_more": 0}
    for _ in range(runs):
        order_p = np.argsort(rng.random((n_states, size)), axis=1)
        order_r = np.argsort(rng.random((n_states, size)), axis=1)
        take = lambda pool, order, n: np.take_along_axis(pool, order[:, :n], axis=1)  # noqa: E731
        planned, reference = take(planner_pool, order_p, seeds), take(reference_pool, order_r, seeds)
        if more_seeds and needs_more_seeds(planned, reference):
            verdicts["asked_more"] += 1
            planned, reference = take(planner_pool, order_p, seeds + more_seeds), take(reference_pool, order_r, seeds + more_seeds)
        verdicts[plan_failure(planned, reference, min_spread) or "passed"] += 1
    return {"runs": runs, **verdicts}


def mirror_runs(planner_pool: np.ndarray, reference_pool: np.ndarray, runs: int, seed: int) -> dict:
    """Verdicts of plan_against_mirrored_reference (`mirror_passes`) in `runs` runs of MIRROR_SEEDS
    decisions of the planner and of the reference at each state, drawn from the pools without repeats;
    and the largest and smallest (over runs) of the gap |planner's mean - reference's mean| / |reference's mean|,
    the largest over states (a run fails at MIRROR_MARGIN)."""
    rng = np.random.default_rng(seed)
    n_states, size = planner_pool.shape
    passed, worst, best = 0, 0.0, np.inf
    for _ in range(runs):
        planned = np.take_along_axis(planner_pool, np.argsort(rng.random((n_states, size)), axis=1)[:, :MIRROR_SEEDS], axis=1)
        reference = np.take_along_axis(reference_pool, np.argsort(rng.random((n_states, size)), axis=1)[:, :MIRROR_SEEDS], axis=1)
        passed += mirror_passes(planned, reference)
        gap = float((np.abs(planned.mean(axis=1) - reference.mean(axis=1)) / np.abs(reference.mean(axis=1))).max())
        worst, best = max(worst, gap), min(best, gap)
    return {"runs": runs, "passed": passed, "failed": runs - passed, "max_gap_over_reference": round(worst, 3), "min_gap_over_reference": round(best, 3)}


def plan_conditions(notebook: str, planners: dict, mirrored_planners: dict, reference: str, runs: int, pool_size: int) -> dict:
    """For each planner: its verdicts in the fixed-state and the mirrored comparison (`plan_condition_runs`)."""
    states = fixture(notebook)["plan_states"].numpy()
    mirror_states = states[MIRROR_STATES]
    pools = {}
    for name in planners:
        started = time.process_time()
        pools[name] = (decision_pool(planners[name], states, pool_size, seed=11), decision_pool(mirrored_planners[name], mirror_states, pool_size, seed=12))
        print(f"pool {name}: {time.process_time() - started:.0f} s", file=sys.stderr, flush=True)
    # The reference's pools against themselves would share draws: a second pool of the reference stands in for it.
    reference_fixed = decision_pool(planners[reference], states, pool_size, seed=21)
    reference_mirror = decision_pool(mirrored_planners[reference], mirror_states, pool_size, seed=22)
    result = {}
    for name, (fixed_pool, mirror_pool) in pools.items():
        fixed = plan_condition_runs(fixed_pool, reference_fixed, FIXED_SEEDS, FIXED_MORE_SEEDS, FIXED_MIN_SPREAD, runs, seed=31)
        mirror = mirror_runs(mirror_pool, reference_mirror, 5 * runs, seed=32)
        result[name] = {
            "fixed_states": fixed,
            "mirror": mirror,
            "mean_first_action": np.round(fixed_pool.mean(axis=1), 3).tolist(),
            "mirror_mean_first_action": np.round(mirror_pool.mean(axis=1), 3).tolist(),
        }
        print(name, result[name], file=sys.stderr, flush=True)
    return result


def as_planner(decide):
    """decide(state, seed) as act(state, rng)."""
    return lambda state, rng: decide(state, int(rng.integers(2**31)))


def swaps(notebook: str, predict, decide, table_predict=None) -> dict:
    """Other planners, each f(state (S,) float32 array, rng) -> action; random shooting plans with
    `predict`, the table holds random shooting's actions with `table_predict` (default `predict`)."""
    gain = lqr_gain_of_course().reshape(-1)

    def random_shooting_with(model):
        return lambda state, rng: float(random_shooting_plan(model, torch.as_tensor(state))[0])

    random_shooting = random_shooting_with(predict)

    def lqr(state, rng):
        return float(np.clip(-gain @ state, ACTION_LOW, ACTION_HIGH))

    def lqr_noisy(state, rng):
        return float(np.clip(-gain @ state + rng.normal(0.0, 0.1), ACTION_LOW, ACTION_HIGH))

    table_states, table_actions = table_of_actions(random_shooting_with(predict if table_predict is None else table_predict))

    def table(state, rng):
        return float(table_actions[np.argmin(((table_states - state) ** 2).sum(axis=1))])

    return {"random-shooting": random_shooting, "lqr": lqr, "lqr-noisy": lqr_noisy, "table": table}


def table_of_actions(planner, seed: int = 1000, steps: int = 300):
    """A lookup table a student could have recorded: states and actions of an episode of `planner`."""
    episode = run_episode(lambda state: planner(state, None), seed, steps)
    return episode.states, episode.actions


def run_episode(act, seed: int, max_steps: int = RETURN_CHECK_STEPS) -> Episode:
    env = make_env()
    states, actions = [], []
    state, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    for steps in range(1, max_steps + 1):  # noqa: B007 (steps is the episode's length after the loop)
        state32 = np.asarray(state, dtype=np.float32)
        action = float(np.clip(act(state32), ACTION_LOW, ACTION_HIGH))
        states.append(state32)
        actions.append(action)
        state, reward, terminated, truncated, _ = env.step(np.array([action], dtype=np.float32))
        total += float(reward)
        if terminated or truncated:
            break
    env.close()
    return Episode(steps, total, np.asarray(states).reshape(-1, STATE_DIM), np.asarray(actions))


def null_runs(episodes: list[Episode], decide, runs: int, seed: int, pool_states: int = 400, pool_size: int = 8) -> list[float]:
    """The statistics (chi-square, z) of `runs` runs in which the action at each drawn step is a fresh decision of
    `decide` (the planner under test) and the reference decisions are fresh ones too.

    To spend less CPU, the decisions come from a pool: `pool_size` of `decide` and of the reference
    at each of `pool_states` states of the episodes; each run draws OWN_PLANNER_STEPS of those
    states and, at each, one decision of the planner and OWN_PLANNER_REFERENCES of the reference's
    without repeats. Each run is exactly a run of the test under the null (runs share decisions, so
    they are not independent of each other).
    """
    rng = np.random.default_rng(seed)
    states = np.concatenate([e.states for e in episodes])
    states = states[rng.choice(len(states), size=pool_states, replace=False)]
    planner_pool = np.array([[decide(s, int(rng.integers(2**31))) for _ in range(pool_size)] for s in states])
    reference_pool = (
        planner_pool if decide is reference_decide else np.array([[reference_decide(s, int(rng.integers(2**31))) for _ in range(pool_size)] for s in states])
    )
    statistics = []
    for _ in range(runs):
        picked = rng.choice(pool_states, size=OWN_PLANNER_STEPS, replace=False)
        actions, references = [], []
        for i in picked:
            order = rng.permutation(pool_size)
            actions.append(planner_pool[i, order[0]])
            references.append(reference_pool[i, order[1 : 1 + OWN_PLANNER_REFERENCES]])
        statistics.append(rank_statistic(np.array(actions), np.array(references), rng)[:2])
    return statistics


reference_decide = None  # set in main (the reference planner of the notebook)


def main(argv: list[str] | None = None) -> int:
    global reference_decide
    parser = argparse.ArgumentParser(prog="python -m benchmarks.own_planner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", default="01_deterministic_cem")
    parser.add_argument("--null-runs", type=int, default=200)
    parser.add_argument("--swap-runs", type=int, default=20)
    parser.add_argument("--null-draws", type=int, default=10_000_000)
    parser.add_argument("--null-only", action="store_true", help="only the multinomial tail")
    parser.add_argument("--no-variants", action="store_true", help="no correct planners written otherwise")
    parser.add_argument("--plan-runs", type=int, default=200, help="runs of each comparison on plan_states (0: none)")
    parser.add_argument("--pool-size", type=int, default=120, help="decisions of each planner at each plan_state")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.process_time()
    result = {"steps": OWN_PLANNER_STEPS, "references": OWN_PLANNER_REFERENCES, "null_tail": null_tail(args.null_draws), "null_draws": args.null_draws}
    if not args.null_only:
        decide, predict, seeds, variants = setup(args.notebook)
        reference_decide = decide
        result["notebook"] = args.notebook
        episodes = []
        for seed in seeds if args.null_runs else ():
            step_seeds = np.random.default_rng([3, seed])
            episodes.append(run_episode(lambda s: decide(s, int(step_seeds.integers(2**31))), seed))  # noqa: B023 (run now)
        result["reference_episode_returns"] = [round(e.total) for e in episodes]
        for name, planner in ({"reference": decide, **({} if args.no_variants else variants)} if args.null_runs else {}).items():
            statistics = null_runs(episodes, planner, args.null_runs, seed=1)
            chi, z = np.array(statistics).T
            result[f"null/{name}"] = {
                "runs": len(statistics),
                "failed": int(sum(not own_planner_passes(*s) for s in statistics)),
                "max_chi_square": float(chi.max()),
                "max_abs_z": float(np.abs(z).max()),
            }
            print(name, result[f"null/{name}"], file=sys.stderr, flush=True)
        for name, planner in swaps(args.notebook, predict, decide).items():
            passed = fell = 0
            zs = []
            for seed in range(args.swap_runs):
                rng = np.random.default_rng(seed)
                episode = run_episode(lambda s: planner(s, rng), seed)  # noqa: B023 (run now)
                if episode.total < RETURN_CHECK_MIN:
                    fell += 1
                    continue
                chi_square, z, _ = own_planner_statistic(episode, decide, np.random.default_rng([7, seed]))
                zs.append(round(z, 1))
                passed += own_planner_passes(chi_square, z)
            result[f"swap/{name}"] = {"episodes": args.swap_runs, "return_under_min": fell, "passed_test": int(passed), "z": zs}
            print(name, result[f"swap/{name}"], file=sys.stderr, flush=True)
    if args.plan_runs and not args.null_only:
        predict, planners = plan_setup(args.notebook, mirrored=False)
        mirrored_predict, mirrored_planners = plan_setup(args.notebook, mirrored=True)
        acts = {name: as_planner(decide) for name, decide in planners.items()}
        mirrored_acts = {name: as_planner(decide) for name, decide in mirrored_planners.items()}
        acts.update(swaps(args.notebook, predict, planners["reference"]))
        mirrored_acts.update(swaps(args.notebook, mirrored_predict, mirrored_planners["reference"], table_predict=predict))
        result["mirror_seeds"], result["fixed_seeds"], result["fixed_more_seeds"] = MIRROR_SEEDS, FIXED_SEEDS, FIXED_MORE_SEEDS
        result["plan_conditions"] = plan_conditions(args.notebook, acts, mirrored_acts, "reference", args.plan_runs, args.pool_size)
    result["cpu_seconds"] = round(time.process_time() - started, 1)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
