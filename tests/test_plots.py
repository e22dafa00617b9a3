import matplotlib

matplotlib.use("Agg")  # no windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mbrl_helpers import (  # noqa: E402
    DT,
    DisplacedStartSummary,
    EpisodeResult,
    MultiStepErrors,
    UncertaintySweep,
    animate_episode,
    animation_html,
    pendulum_filmstrip,
    plot_compounding_error,
    plot_episode,
    plot_training_curve,
    plot_uncertainty,
)
from mbrl_helpers.plots import plot_displaced_starts, plot_uncertainty_side_by_side  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def fake_episode(steps=20, seed=0, fell=False) -> EpisodeResult:
    """An EpisodeResult with made-up but plausible numbers; no simulator needed."""
    times = np.arange(steps + 1) * DT
    states = np.stack([0.3 * np.sin(times), 0.1 * np.sin(3 * times), 0.3 * np.cos(times), 0.3 * np.cos(3 * times)], axis=1)
    if fell:
        states[-1, 1] = 0.25
    actions = np.clip(2 * np.sin(2 * times[:-1]), -3, 3).astype(np.float32)[:, None]
    return EpisodeResult(seed=seed, episode_return=float(steps), states=states, actions=actions, decision_seconds=np.full(steps, 0.01), terminated=fell)


def labelled_lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_training_curve_is_log_scaled_for_a_positive_loss_and_smoothed():
    losses = np.exp(-np.linspace(0, 5, 300)) + 0.01
    fig = plot_training_curve(losses, title="MSE")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    raw, smoothed = ax.get_lines()
    assert len(raw.get_xdata()) == 300
    assert len(smoothed.get_xdata()) == 300 - 30 + 1  # window: a tenth of the steps
    np.testing.assert_allclose(smoothed.get_ydata()[0], losses[:30].mean())
    assert ax.get_title() == "MSE" and ax.get_xlabel() == "training step" and "loss" in ax.get_ylabel()


def test_training_curve_of_a_negative_nll_is_linear_and_draws_into_a_given_axes():
    fig, ax = plt.subplots()
    returned = plot_training_curve(np.linspace(2, -3, 200), ax=ax)
    assert returned is fig
    assert ax.get_yscale() == "linear"
    assert ax.get_ylim()[0] < -3
    with pytest.raises(ValueError, match="empty"):
        plot_training_curve([])


def test_episode_plot_has_three_panels_against_time_in_seconds():
    episode = fake_episode(steps=20)
    fig = plot_episode(episode)
    assert len(fig.axes) == 3
    angle_ax, cart_ax, action_ax = fig.axes
    assert "rad" in angle_ax.get_ylabel() and "m" in cart_ax.get_ylabel() and "action" in action_ax.get_ylabel()
    assert action_ax.get_xlabel() == "time (s)"
    (angle_line,) = labelled_lines(angle_ax)
    np.testing.assert_allclose(angle_line.get_xdata()[-1], 20 * DT)
    np.testing.assert_allclose(angle_line.get_ydata(), episode.states[:, 1])
    assert len(angle_ax.patches) == 2  # the failure bands above +0.2 and below -0.2 rad
    assert sorted(line.get_ydata()[0] for line in cart_ax.get_lines()[1:]) == [-1.0, 1.0]  # the rail's ends
    assert sorted(line.get_ydata()[0] for line in action_ax.get_lines()[1:]) == [-3.0, 3.0]  # the action limits
    assert "seed 0" in angle_ax.get_title() and "20 steps" in angle_ax.get_title()


def test_episode_plot_compares_a_dict_of_episodes_one_line_each():
    fig = plot_episode({"planner": fake_episode(20), "random": fake_episode(5, seed=1, fell=True)})
    angle_ax = fig.axes[0]
    names = [line.get_label().split("\n")[0] for line in labelled_lines(angle_ax)]
    assert names == ["planner", "random"]
    assert angle_ax.get_ylim()[1] > 0.25  # the fallen pole's angle stays in view
    with pytest.raises(ValueError, match="EpisodeResult"):
        plot_episode({})


def test_compounding_error_plot_draws_a_line_per_model_and_the_ensembles_spread():
    errors = {
        "deterministic": MultiStepErrors(rmse=np.geomspace(0.01, 1, 10), rmse_per_dim=np.ones((10, 4))),
        "ensemble": MultiStepErrors(rmse=np.geomspace(0.01, 0.5, 10), rmse_per_dim=np.ones((10, 4)), spread=np.geomspace(0.02, 0.4, 10)),
        "as an array": np.geomspace(0.1, 0.2, 10),
    }
    fig = plot_compounding_error(errors)
    ax = fig.axes[0]
    lines = labelled_lines(ax)
    assert len(lines) == 4  # three models and one spread
    np.testing.assert_array_equal(lines[0].get_xdata(), np.arange(1, 11))
    assert ax.get_yscale() == "log"
    assert "steps" in ax.get_xlabel() and "RMSE" in ax.get_ylabel()
    (seconds_axis,) = ax.child_axes  # the horizon in seconds on top
    assert "(s)" in seconds_axis.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "deterministic"


def seeded_errors(scale, members=False, spread=False, length=10):
    """MultiStepErrors whose component c has error scale * 10**c * horizon (members: 3 members around it)."""
    per_dim = scale * np.outer(np.arange(1, length + 1), 10.0 ** np.arange(4))
    return MultiStepErrors(
        rmse=per_dim.mean(axis=1),
        rmse_per_dim=per_dim,
        member_rmse_per_dim=np.stack([per_dim * f for f in (0.8, 1.0, 1.3)]) if members else None,
        spread_per_dim=per_dim / 2 if spread else None,
    )


def test_compounding_error_per_component_draws_a_panel_per_component_with_seed_bands_members_and_baseline():
    errors = {
        "deterministic": [seeded_errors(0.01), seeded_errors(0.02), seeded_errors(0.04)],
        "ensemble": [seeded_errors(0.01, members=True, spread=True), seeded_errors(0.03, members=True, spread=True)],
        "one seed only": seeded_errors(0.05),
    }
    fig = plot_compounding_error(errors, per_component=True, baseline=seeded_errors(1.0))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["cart x", "pole angle", "cart velocity", "pole angular velocity"]
    angle_ax = panels[1]
    assert angle_ax.get_yscale() == "log" and "rad" in angle_ax.get_ylabel()
    assert "(m/s" in panels[2].get_ylabel() and "steps" in panels[2].get_xlabel()
    # Bands over the seeds: one per model with more than one seed, spanning the lowest to the highest seed.
    assert len(angle_ax.collections) == 2
    band = angle_ax.collections[0].get_paths()[0].vertices
    assert np.isclose(band[:, 1].min(), 0.01 * 10) and np.isclose(band[:, 1].max(), 0.04 * 10 * 10)
    labels = [line.get_label() for line in labelled_lines(angle_ax)]
    assert labels[0] == "deterministic, median of 3 seeds"
    np.testing.assert_allclose(labelled_lines(angle_ax)[0].get_ydata(), 0.02 * 10 * np.arange(1, 11))
    member_lines = [line for line in angle_ax.get_lines() if line.get_linewidth() < 1]
    assert len(member_lines) == 3  # the ensemble's members, first seed only
    assert "ensemble: spread across members" in labels
    assert labels[-1] == "predict no change (Δs = 0)"
    np.testing.assert_allclose(labelled_lines(angle_ax)[-1].get_ydata(), 10 * np.arange(1, 11))
    assert fig.legends and fig._suptitle.get_text() == "Open-loop prediction error grows with the horizon"
    with pytest.raises(ValueError, match="per_component"):
        plot_compounding_error({"as an array": np.ones(10)}, per_component=True)


def test_compounding_error_single_panel_also_takes_the_baseline():
    fig = plot_compounding_error({"deterministic": seeded_errors(0.01)}, baseline=seeded_errors(1.0))
    assert [line.get_label() for line in labelled_lines(fig.axes[0])] == ["deterministic", "predict no change (Δs = 0)"]


def test_uncertainty_side_by_side_draws_the_probabilistic_ensemble_on_one_shared_scale():
    values = np.linspace(-2, 2, 41)
    clean = UncertaintySweep(axis=0, values=values, action=0.0, ensemble_std=np.full((41, 4), 0.01), probabilistic_std=np.full((41, 4), 0.02))
    noisy = UncertaintySweep(
        axis=0, values=values, action=0.0, ensemble_std=np.full((41, 4), 0.01), probabilistic_std=np.where(values[:, None] > 0, 1.0, 0.02) * np.ones((41, 4))
    )
    training_states = np.random.default_rng(0).uniform(-1, 1, size=(300, 4))
    fig = plot_uncertainty_side_by_side({"clean data": (clean, training_states), "noisy data": (noisy, {"states": training_states})})
    curve_axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in curve_axes] == ["clean data", "noisy data"]
    for ax in curve_axes:
        assert [line.get_label() for line in labelled_lines(ax)] == ["ensemble: std across members", "probabilistic ensemble: total std"]
    assert curve_axes[0].get_ylim() == curve_axes[1].get_ylim()  # one scale: the noisy panel's rise shows against the clean one
    assert curve_axes[0].get_ylim()[1] > 2.0


def test_displaced_starts_grid_has_a_row_per_model_and_seed_and_a_column_per_start():
    starts = [(0.7, 0.0, 0.0, 0.0), (0.5, 0.1, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)]
    summaries = {
        "deterministic": DisplacedStartSummary(
            returns=np.array([[100, 2, 100], [1, 100, 100]]), succeeded=np.array([[1, 0, 1], [0, 1, 1]], bool), training_seeds=[0, 1]
        ),
        "ensemble": DisplacedStartSummary(
            returns=np.array([[100, 100, 100], [100, 3, 100]]), succeeded=np.array([[1, 1, 1], [1, 0, 1]], bool), training_seeds=[0, 1]
        ),
    }
    fig = plot_displaced_starts(summaries, starts, max_steps=100)
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["deterministic, seed 0", "deterministic, seed 1", "ensemble, seed 0", "ensemble, seed 1"]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["x +0.70", "x +0.50\nangle +0.10", "angle_dot +1.00"]
    assert [text.get_text() for text in ax.texts][:3] == ["100", "2", "100"]
    np.testing.assert_allclose(ax.images[0].get_array()[1], [0.01, 1.0, 1.0])
    assert "100" in ax.get_title()
    with pytest.raises(ValueError, match="starts"):
        plot_displaced_starts(summaries, starts[:2], max_steps=100)


def test_uncertainty_plot_puts_the_curves_above_a_histogram_of_the_same_axis():
    values = np.linspace(-2, 2, 41)
    sigma = np.ones((41, 4)) * (0.1 + values[:, None] ** 2)
    sweep = UncertaintySweep(axis=0, values=values, action=0.0, sigma=sigma, ensemble_std=np.full((41, 4), 0.05))
    training_states = np.random.default_rng(0).uniform(-1, 1, size=(500, 4))
    fig = plot_uncertainty(sweep, {"states": training_states})
    curve_ax, hist_ax = fig.axes
    assert len(labelled_lines(curve_ax)) == 2
    np.testing.assert_allclose(curve_ax.get_lines()[0].get_ydata(), 2 * (0.1 + values**2))  # norm over 4 equal components
    bar_heights = [bar.get_height() for bar in hist_ax.patches if bar.get_width() < 0.5]  # the histogram's bars, not the shading
    assert sum(bar_heights) == 500
    assert hist_ax.get_xlabel() == "cart x (m)"
    assert curve_ax.get_xlim() == hist_ax.get_xlim() == (-2.0, 2.0)

    one_component = plot_uncertainty(sweep, training_states, state_dim=2)
    assert "cart velocity" in one_component.axes[0].get_ylabel()


def test_filmstrip_draws_n_frames_panels_with_the_pole_leaning_the_right_way():
    states = np.zeros((31, 4))
    states[:, 0] = np.linspace(-0.5, 0.5, 31)  # the cart moves right
    states[:, 1] = np.linspace(-0.1, 0.1, 31)  # the pole tips from left to right
    fig = pendulum_filmstrip(states, n_frames=4)
    assert len(fig.axes) == 4
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["t = 0.0 s", "t = 1.0 s", "t = 2.0 s", "t = 3.0 s"]
    for ax, state in zip(fig.axes, states[[0, 10, 20, 30]]):
        pole = ax.get_lines()[-1]
        (base_x, tip_x), (base_y, tip_y) = pole.get_xdata(), pole.get_ydata()
        assert base_x == pytest.approx(state[0]) and tip_y > base_y + 0.5  # upright-ish, on the cart
        # Positive angle tips the pole towards +x, as in MuJoCo (a push to the right makes the angle negative).
        assert np.sign(tip_x - base_x) == np.sign(state[1])
    # a pole that falls at once: each of its states, no error (the notebooks call it on any episode)
    short = pendulum_filmstrip(states[:2], n_frames=8)
    assert [ax.get_title().split("\n")[0] for ax in short.axes] == ["t = 0.0 s", "t = 0.1 s"]
    with pytest.raises(ValueError, match="n_frames"):
        pendulum_filmstrip(states, n_frames=0)


def test_animation_has_one_frame_per_state_and_renders_without_ffmpeg():
    episode = fake_episode(steps=4)
    animation = animate_episode(episode.states)
    assert isinstance(animation, FuncAnimation)
    assert len(list(animation.new_frame_seq())) == 5
    html = animation.to_jshtml()
    assert html.count("data:image/png;base64") == 5


def test_the_animation_player_needs_no_network():
    """matplotlib's player loads its button icons from a CDN; animation_html's buttons are text."""
    html = animation_html(animate_episode(fake_episode(steps=3).states))
    assert html.count("data:image/png;base64") == 4
    assert "http://" not in html and "https://" not in html and 'class="fa' not in html
    assert 'alt="Animation of the cart and pole"' in html
    for glyph in ("&#x25B6;", "&#x2016;", "|&#x25C0;", "&#x25B6;|"):  # play, pause, first, last
        assert glyph in html
