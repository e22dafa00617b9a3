"""The data-size measurement notebook 3 plots: the shipped JSON and the helpers that read and draw it."""

import json

import numpy as np
import pytest

from mbrl_helpers import DISPLACED_STARTS
from mbrl_helpers.data_size import LABELS, MEASURED_DATA_SIZE, add_results, load_data_size_results, plot_data_size, successes_per_seed


def test_the_shipped_measurement_covers_every_size_kind_seed_and_start():
    report = load_data_size_results()
    assert report["command"].startswith("python -m benchmarks.data_size")
    assert set(report["sizes"]) <= {300, 1000, 5000} and 5000 in report["sizes"] and len(report["seeds"]) >= 3
    assert report["starts"] == [list(start) for start in DISPLACED_STARTS]
    for size in report["sizes"]:
        # all 5,000 transitions: notebook 3's own displaced-start table has the deterministic model and the ensemble
        for kind in LABELS if size < 5000 else ("pets",):
            result = report["results"][str(size)][kind]
            returns = np.asarray(result["returns"])
            assert returns.shape == (len(report["seeds"]), len(DISPLACED_STARTS))
            assert result["successes"] == int((returns >= report["max_steps"]).sum()) and result["cases"] == returns.size


def test_successes_are_counted_per_size_and_seed_and_drawn(tmp_path):
    report = {
        "command": "python -m benchmarks.data_size --sizes 10 20",
        "sizes": [10, 20],
        "seeds": [0, 1],
        "max_steps": 5,
        "starts": [[0.0, 0.0, 0.0, 0.0]] * 3,
        "results": {
            size: {kind: {"returns": returns} for kind in LABELS} for size, returns in (("10", [[5, 1, 5], [0, 0, 0]]), ("20", [[5, 5, 5], [5, 2, 5]]))
        },
    }
    path = tmp_path / "measured.json"
    path.write_text(json.dumps(report))
    loaded = load_data_size_results(path)
    counts = successes_per_seed(loaded, "ensemble")
    assert sorted(counts) == [10, 20]
    np.testing.assert_array_equal(counts[10], [2, 0])
    np.testing.assert_array_equal(counts[20], [3, 2])
    more = add_results(loaded, 40, "pets", [[5, 5, 0], [5, 5, 5]])
    assert more["sizes"] == [10, 20, 40] and sorted(successes_per_seed(more, "pets")) == [10, 20, 40]
    assert "40" not in loaded["results"]  # the report given is left as it was
    with pytest.raises(ValueError, match="shape"):
        add_results(loaded, 40, "pets", [[5, 5]])
    fig = plot_data_size(more)
    assert len(fig.axes) == 1
    path.write_text(json.dumps({"sizes": [10]}))
    with pytest.raises(ValueError, match="not the output of benchmarks.data_size"):
        load_data_size_results(path)


def test_the_measured_file_is_inside_the_package_so_the_student_bundle_ships_it():
    assert MEASURED_DATA_SIZE.parent.parent.name == "mbrl_helpers" and MEASURED_DATA_SIZE.suffix == ".json"
