import json
import shutil

import numpy as np
import pytest

from mbrl_helpers import data


def test_manifest_matches_the_shipped_file():
    manifest = json.loads(data.MANIFEST_PATH.read_text())
    arrays = data.load_dataset()
    assert manifest["transitions"] == len(arrays["states"]) <= 20_000
    assert manifest["dt"] == 0.1 and manifest["seed"] == data.SEED
    assert manifest["sha256"] == data.dataset_digest(arrays)
    assert manifest["behaviour_policy"] == data.BEHAVIOUR_POLICY
    assert manifest["regenerate"] == data.REGENERATE_COMMAND


def test_regenerating_gives_the_shipped_data_bit_for_bit():
    manifest = json.loads(data.MANIFEST_PATH.read_text())
    fresh = data.collect_transitions(manifest["transitions"], manifest["seed"], progress=False)
    assert data.dataset_digest(fresh) == manifest["sha256"]


def test_dataset_covers_more_than_random_actions_from_reset():
    arrays = data.load_dataset()
    assert np.abs(arrays["states"][:, 0]).max() > 0.8  # reset plus random actions stays within |x| < 0.3
    assert arrays["actions"].min() >= -3 and arrays["actions"].max() <= 3


def test_consecutive_transitions_of_a_rollout_chain_up():
    arrays = data.load_dataset()
    same_rollout = arrays["rollout"][1:] == arrays["rollout"][:-1]
    assert same_rollout.sum() > 1000
    np.testing.assert_array_equal(arrays["next_states"][:-1][same_rollout], arrays["states"][1:][same_rollout])
    assert not arrays["terminated"][:-1][same_rollout].any()  # a rollout stops when the pole falls


def test_save_then_load_round_trips(tmp_path):
    arrays = data.collect_transitions(50, seed=1, progress=False)
    data.save_dataset(arrays, tmp_path / "t.npz", tmp_path / "m.json", seed=1)
    loaded = data.load_dataset(tmp_path / "t.npz", tmp_path / "m.json")
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], loaded[key])
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind


def test_missing_file_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(data.DatasetError, match=r"not found: .*nope\.npz.*python -m mbrl_helpers\.make_dataset --regenerate"):
        data.load_dataset(tmp_path / "nope.npz")


def test_corrupt_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "transitions.npz"
    shutil.copy(data.DATASET_PATH, path)
    path.write_bytes(path.read_bytes()[:1000])  # truncated download
    with pytest.raises(data.DatasetError, match=r"corrupt.*transitions\.npz.*--regenerate"):
        data.load_dataset(path, data.MANIFEST_PATH)


def test_tampered_file_fails_the_checksum(tmp_path):
    arrays = data.load_dataset()
    arrays["states"] = arrays["states"].copy()
    arrays["states"][0, 0] += 1e-3
    path = tmp_path / "transitions.npz"
    np.savez_compressed(path, **arrays)
    with pytest.raises(data.DatasetError, match="does not match the sha256"):
        data.load_dataset(path, data.MANIFEST_PATH)


def test_command_line_check_reports_success(capsys):
    from mbrl_helpers import make_dataset

    assert make_dataset.main([]) == 0
    assert "matches manifest.json" in capsys.readouterr().out


# ---- the noisy variant: the same transitions, sensor noise on next_states where x > 0 --------------


def test_noisy_manifest_matches_the_shipped_file():
    manifest = json.loads(data.NOISY_MANIFEST_PATH.read_text())
    arrays = data.load_noisy_dataset()
    assert manifest["file"] == data.NOISY_DATASET_PATH.name
    assert manifest["transitions"] == len(arrays["states"])
    assert manifest["sha256"] == data.dataset_digest(arrays)
    assert manifest["regenerate"] == data.NOISY_REGENERATE_COMMAND
    assert manifest["sensor_noise"]["std"] == data.NOISE_STD and manifest["sensor_noise"]["seed"] == data.NOISE_SEED


def test_regenerating_the_noisy_variant_gives_the_shipped_data_bit_for_bit():
    manifest = json.loads(data.NOISY_MANIFEST_PATH.read_text())
    fresh = data.collect_noisy_transitions(manifest["transitions"], manifest["seed"], progress=False)
    assert data.dataset_digest(fresh) == manifest["sha256"]
    # and from the shipped clean file, without collecting again
    assert data.dataset_digest(data.add_sensor_noise(data.load_dataset())) == manifest["sha256"]


def test_noise_only_on_next_states_where_cart_x_is_positive():
    clean, noisy = data.load_dataset(), data.load_noisy_dataset()
    assert set(clean) == set(noisy)
    for key in clean:
        if key != "next_states":
            np.testing.assert_array_equal(clean[key], noisy[key])
    noise = noisy["next_states"] - clean["next_states"]
    positive = clean["states"][:, 0] > 0
    assert 0.3 < positive.mean() < 0.7  # about half the data carry noise
    np.testing.assert_array_equal(noise[~positive], 0.0)
    assert (noise[positive] != 0).all()  # every component of every noisy row
    # The noise is N(0, NOISE_STD) on each component: its mean and std within 5 standard errors.
    n = positive.sum() * noise.shape[1]
    assert abs(noise[positive].mean()) < 5 * data.NOISE_STD / np.sqrt(n)
    assert abs(noise[positive].std() - data.NOISE_STD) < 5 * data.NOISE_STD / np.sqrt(2 * n)


def test_clean_file_untouched_by_the_noisy_variant():
    # The noise is added to a copy: the clean arrays passed in keep their values.
    arrays = data.load_dataset()
    before = data.dataset_digest(arrays)
    data.add_sensor_noise(arrays)
    assert data.dataset_digest(arrays) == before == json.loads(data.MANIFEST_PATH.read_text())["sha256"]


def test_load_noisy_dataset_is_exported_and_names_its_own_fix(tmp_path, monkeypatch):
    import mbrl_helpers

    assert mbrl_helpers.load_noisy_dataset is data.load_noisy_dataset
    monkeypatch.setattr(data, "NOISY_DATASET_PATH", tmp_path / "transitions_noisy.npz")
    with pytest.raises(data.DatasetError, match=r"not found: .*transitions_noisy\.npz.*--variant noisy --regenerate"):
        data.load_noisy_dataset()


def test_command_line_checks_the_noisy_variant(capsys):
    from mbrl_helpers import make_dataset

    assert make_dataset.main(["--variant", "noisy"]) == 0
    assert "matches manifest_noisy.json" in capsys.readouterr().out
