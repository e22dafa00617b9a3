"""The benchmarks' command lines, on a tiny budget: they run and print the documented JSON."""

import json

import pytest

from benchmarks import planning_speed, returns


def test_returns_benchmark_prints_the_documented_fields(capsys):
    assert returns.main(["--episodes", "1", "--max-steps", "5", "--train-steps", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["transitions"] > 0
    for kind in ("deterministic", "stochastic", "ensemble"):
        assert set(report[kind]) == {"mean_return", "min_return", "episodes", "train_seconds", "median_decision_ms"}
        assert 0 <= report[kind]["min_return"] <= 5  # v5 pays 0 for the step on which the pole falls


def test_planning_speed_benchmark_prints_the_ratio_of_cpu_times_on_one_thread(capsys):
    assert planning_speed.main(["--decisions", "50", "--warmup", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert abs(report["ensemble_over_single_cpu"] - report["ensemble_median_cpu_ms"] / report["single_median_cpu_ms"]) < 0.01
    assert abs(report["ensemble_over_single_wall"] - report["ensemble_median_wall_ms"] / report["single_median_wall_ms"]) < 0.01
    assert report["decisions"] == 50 and report["n_members"] == 5 and report["torch_threads"] == 1 and len(report["load_average"]) == 3


def test_grading_benchmark_times_each_number_of_workers_of_a_process_cluster(tmp_path):
    # on the toy course (instant cells, its own checks): the real course's figures come from running it by hand
    from autograder_fixtures.toy_course import AUTO_MAX, make_course

    from benchmarks import grading

    report = grading.grading_times(students=2, jobs=(1, 2), course=make_course(tmp_path / "course"), cluster=True)
    assert report["students"] == 2 and report["notebooks"] == ["toy"] and report["engine"] == "process cluster"
    assert [run["jobs"] for run in report["runs"]] == [1, 2] and report["runs"][0]["speedup"] == 1.0
    for run in report["runs"]:
        assert run["points"] == run["max_points"] == [AUTO_MAX, AUTO_MAX]
        assert len(run["student_seconds"]) == 2 and run["seconds"] > 0
        # nbgrader and the runners, in worker processes that have ended, did work: it is counted
        assert run["cpu_seconds"] > 1 and run["cpu_seconds_per_submission"] == pytest.approx(run["cpu_seconds"] / 2, abs=0.1)
        assert run["machine_cpu_seconds_per_submission"] > 0.5
        assert len(run["load_average_before"]) == len(run["load_average_after"]) == 3
        assert len(run["host_probe_seconds"]) == 2 and all(0.01 < probe < 60 for probe in run["host_probe_seconds"])
        assert run["submissions_per_minute"] == pytest.approx(2 / run["seconds"] * 60, rel=0.01)  # seconds are rounded to 0.1
    hours = report["projection_1000_students_hours"]
    assert hours["1"] / hours["8"] == pytest.approx(8, rel=0.01)  # hours are rounded to 0.001


def test_separation_benchmark_prints_the_table_and_the_sweep(capsys):
    from benchmarks import separation

    argv = ["--seeds", "1", "--max-steps", "3", "--train-steps", "20", "--sweep-starts", "0", "--sweep-max-steps", "2", "--horizons", "5", "10", "--json"]
    assert separation.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["training_seeds"] == [0] and len(report["starts"]) >= 6
    for kind in ("deterministic", "stochastic", "ensemble"):
        assert set(report["displaced_starts"][kind]) == {"success_rate", "mean_return", "returns"}
        assert len(report["displaced_starts"][kind]["returns"]) == 1 and len(report["displaced_starts"][kind]["returns"][0]) == len(report["starts"])
    for name in ("deterministic", "simulator"):
        assert set(report["horizon_sweep"][name]) == {"5", "10"} and all(len(r) == 1 for r in report["horizon_sweep"][name].values())


def test_closing_the_loop_benchmark_prints_each_iteration(capsys):
    from benchmarks import closing_the_loop

    assert closing_the_loop.main(["--start-sizes", "20", "--iterations", "2", "--train-steps", "5", "--max-steps", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [run["model"] for run in report["runs"]] == ["deterministic", "ensemble"]
    for run in report["runs"]:
        assert run["start_size"] == 20 and len(run["returns"]) == 2 and all(0 <= r <= 3 for r in run["returns"])
        # the second agent trained on the start data plus the first episode
        assert run["trained_on"][0] == 20 and 20 < run["trained_on"][1] <= 23
    assert set(report["median_loop_seconds"]) == {"deterministic", "ensemble"}


def test_looping_benchmark_grades_a_student_who_loops_in_every_function_within_one_budget_per_function(tmp_path):
    # on the toy course, whose checks have a budget of a few CPU seconds (tests/autograder_fixtures/toy_checks.py)
    from autograder_fixtures.toy_checks import BUDGET
    from autograder_fixtures.toy_course import make_course

    from benchmarks import looping

    report = looping.looping_times(
        course=make_course(tmp_path / "course"), notebook="toy", scenarios={"loop-everywhere": looping.at_top_of_functions(looping.LOOP)}
    )
    run = report["scenarios"]["loop-everywhere"]
    assert run["points"] == 0 and run["max_points"] > 0
    # square loops (one budget), cube loops (one budget); test_quiet calls both again and waits for neither
    # (3: the wall-clock backstop, for a machine so busy that the loops get under a third of a core)
    assert run["student_seconds"] < 2 * 3 * BUDGET + 60 and run["cpu_seconds"] > 1
