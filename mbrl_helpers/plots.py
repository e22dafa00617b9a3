"""Plots for the course: training curves, episodes, compounding error, uncertainty, the pendulum itself.

Matplotlib only (no OpenGL, no ffmpeg). Every function returns its Figure and shows or saves
nothing: in a notebook the figure appears at the end of the cell (end the line with `;` or assign
the result, so it does not appear twice); save it with `fig.savefig("name.png")`. Pass `ax` (or
`axes`) to draw into a figure of your own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from mbrl_helpers.env import ACTION_HIGH, ACTION_LOW, DT, STATE_NAMES
from mbrl_helpers.evaluation import EpisodeResult

if TYPE_CHECKING:  # named in annotations only
    from mbrl_helpers.displaced_starts import DisplacedStartSummary
from mbrl_helpers.prediction import MultiStepErrors, UncertaintySweep

STATE_UNITS = ("m", "rad", "m/s", "rad/s")
ANGLE_LIMIT = 0.2  # rad: the episode ends when |pole angle| exceeds it
RAIL_LIMIT = 1.0  # m: the cart's slider stops at |x| = 1
POLE_LENGTH = 0.6  # m, as in the MuJoCo model; drawn to scale
CART_WIDTH, CART_HEIGHT = 0.4, 0.16  # m, drawn


def _figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _figure_and_axes_column(axes: Sequence[Axes] | None, n: int, figsize: tuple[float, float], **kwargs) -> tuple[Figure, list[Axes]]:
    """n stacked axes sharing the x axis, or the `axes` given (checked to be n of them)."""
    if axes is not None:
        axes = list(np.ravel(axes))
        if len(axes) != n:
            raise ValueError(f"this plot needs {n} axes, got {len(axes)}")
        return axes[0].figure, axes
    fig, axes = plt.subplots(n, 1, figsize=figsize, sharex=True, layout="constrained", **kwargs)
    return fig, list(axes)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` consecutive values: (N,) -> (N - window + 1,)."""
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_training_curve(losses: Sequence[float], ax: Axes | None = None, title: str = "Training loss", window: int | None = None) -> Figure:
    """The loss of every training step (faint) and its moving average over `window` steps (bold).

    `losses` is the list `train_model` returns. The y axis is logarithmic when every loss is
    positive (an MSE); linear otherwise (a Gaussian NLL goes below zero). `window` defaults to a
    tenth of the steps, at most 100.
    """
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    if len(losses) == 0:
        raise ValueError("losses is empty: pass the list of per-step losses that train_model returns")
    fig, ax = _figure_and_axes(ax, figsize=(6, 3.5))
    steps = np.arange(1, len(losses) + 1)
    window = window or max(1, min(100, len(losses) // 10))
    ax.plot(steps, losses, color="C0", alpha=0.3, linewidth=0.8, label="loss of each step")
    if 1 < window <= len(losses):
        ax.plot(steps[window - 1 :], moving_average(losses, window), color="C0", linewidth=2, label=f"mean of the last {window} steps")
    if np.all(losses > 0):
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)")
    else:
        # A linear scale: the first steps' large losses would squash the rest, so zoom on the later ones.
        later = losses[len(losses) // 20 :]
        low, high = np.min(later), np.max(later)
        margin = 0.05 * (high - low) + 1e-12
        ax.set_ylim(low - margin, high + margin)
        ax.set_ylabel("loss")
    ax.set_xlabel("training step")
    ax.set_title(title)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def plot_episode(results: EpisodeResult | Mapping[str, EpisodeResult], axes: Sequence[Axes] | None = None, title: str | None = None) -> Figure:
    """Pole angle, cart position and action against time, for one episode or several to compare.

    `results`: an EpisodeResult (from run_episode), or a dict name -> EpisodeResult (one line per
    name). `axes`: three axes to draw into (angle, cart, action), else a new figure.
    """
    if isinstance(results, EpisodeResult):
        single = results
        results = {f"seed {single.seed}": single}
        default_title = f"Episode (seed {single.seed}): {single.outcome}"
    else:
        results = dict(results)
        if not results or not all(isinstance(r, EpisodeResult) for r in results.values()):
            raise ValueError("results must be an EpisodeResult or a non-empty dict name -> EpisodeResult")
        default_title = "Episodes compared"
    fig, (angle_ax, cart_ax, action_ax) = _figure_and_axes_column(axes, 3, figsize=(9, 6.5))

    largest_angle = ANGLE_LIMIT
    for i, (name, result) in enumerate(results.items()):
        color = f"C{i}"
        label = f"{name}\nreturn {result.episode_return:.0f}" + (f", fell in step {result.steps}" if result.terminated else "") if len(results) > 1 else name
        times = np.arange(len(result.states)) * DT  # (T + 1,): s_0 at 0 s, s_t after t steps
        angle_ax.plot(times, result.states[:, 1], color=color, label=label)
        cart_ax.plot(times, result.states[:, 0], color=color, label=label)
        # Action a_t is held from t * dt to (t + 1) * dt: a step plot; repeat the last value to close the final step.
        actions = result.actions[:, 0]
        if len(actions):
            action_ax.step(times, np.append(actions, actions[-1]), where="post", color=color, label=label)
        largest_angle = max(largest_angle, float(np.max(np.abs(result.states[:, 1]))))

    angle_top = 1.15 * largest_angle + 0.02
    angle_ax.axhspan(ANGLE_LIMIT, angle_top, color="red", alpha=0.12, linewidth=0, label=f"|angle| > {ANGLE_LIMIT} rad:\nepisode ends")
    angle_ax.axhspan(-angle_top, -ANGLE_LIMIT, color="red", alpha=0.12, linewidth=0)
    angle_ax.set_ylim(-angle_top, angle_top)
    angle_ax.set_ylabel("pole angle (rad)")

    rail_ends = [cart_ax.axhline(limit, color="0.4", linestyle="--", linewidth=1) for limit in (-RAIL_LIMIT, RAIL_LIMIT)]
    cart_ax.set_ylim(-1.2 * RAIL_LIMIT, 1.2 * RAIL_LIMIT)
    cart_ax.set_ylabel("cart position (m)")

    action_limits = [action_ax.axhline(limit, color="0.4", linestyle="--", linewidth=1) for limit in (ACTION_LOW, ACTION_HIGH)]
    action_ax.set_ylim(1.15 * ACTION_LOW, 1.15 * ACTION_HIGH)
    action_ax.set_ylabel("action\n(force / 100 N)")
    action_ax.set_xlabel("time (s)")

    # Legends right of the panels, clear of the data: the episodes' names in the top panel's,
    # each lower panel's names its limits only.
    outside = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    angle_ax.legend(**outside)
    cart_ax.legend([rail_ends[0]], ["end of rail\n(±1 m)"], **outside)
    action_ax.legend([action_limits[0]], ["action limits\n(±3)"], **outside)
    for ax in (angle_ax, cart_ax, action_ax):
        ax.grid(alpha=0.3)
    angle_ax.set_title(title or default_title)
    return fig


def plot_compounding_error(
    errors_by_model: Mapping[str, MultiStepErrors | Sequence[float] | Sequence[MultiStepErrors]],
    ax: Axes | None = None,
    title: str = "Open-loop prediction error grows with the horizon",
    per_component: bool = False,
    baseline: MultiStepErrors | None = None,
) -> Figure:
    """RMSE of open-loop predictions against the horizon, one line per model (log y).

    `errors_by_model`: name -> MultiStepErrors (from multi_step_errors) or an array of RMSE (L,).
    An ensemble's spread, when present, is drawn dashed in the same colour: where it lies close to
    the RMSE line, the members' disagreement is an honest estimate of the ensemble's real error.
    The lower x axis counts steps, the upper one seconds (1 step = 0.1 s).

    per_component=True draws one panel per state component instead (2 x 2, each in its own unit:
    an RMSE over metres, radians and velocities together is dominated by the largest), and each
    model may then be a list of MultiStepErrors, one per training seed: the line is their median
    and the shaded band spans their smallest to largest error. An ensemble's members' own errors
    (the first seed's) are drawn as thin lines of its colour. `baseline` (e.g. the errors of
    `predict_no_change`) is drawn as a black dotted line.
    """
    if not errors_by_model:
        raise ValueError("errors_by_model is empty: pass a dict name -> multi_step_errors(...)")
    if per_component:
        if ax is not None:
            raise ValueError("per_component=True draws its own 2 x 2 figure: leave ax out")
        return _plot_compounding_error_per_component(errors_by_model, baseline, title)
    if baseline is not None:
        errors_by_model = {**errors_by_model, "predict no change (Δs = 0)": baseline}
    fig, ax = _figure_and_axes(ax, figsize=(6.5, 4))
    longest = 1
    for i, (name, errors) in enumerate(errors_by_model.items()):
        if not isinstance(errors, MultiStepErrors):
            errors = MultiStepErrors(rmse=np.asarray(errors, dtype=np.float64).reshape(-1), rmse_per_dim=None)
        color = f"C{i}"
        ax.plot(errors.horizons, errors.rmse, marker="o", markersize=3, color=color, label=name)
        if errors.spread is not None:
            # A line, not a band of rmse ± spread: the spread is often as large as the RMSE, and a band
            # reaching down to 0 cannot be drawn on a log axis.
            ax.plot(errors.horizons, errors.spread, linestyle="--", color=color, label=f"{name}: spread across members")
        longest = max(longest, len(errors.rmse))
    ax.set_yscale("log")
    ax.set_xlim(0.5, longest + 0.5)
    ax.set_xlabel("prediction horizon (steps)")
    ax.set_ylabel("RMSE over the 4 state components\n(log scale)")
    seconds_axis = ax.secondary_xaxis("top", functions=(lambda steps: steps * DT, lambda seconds: seconds / DT))
    seconds_axis.set_xlabel("prediction horizon (s)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def _per_seed(errors: MultiStepErrors | Sequence[MultiStepErrors], name: str) -> list[MultiStepErrors]:
    """One model's errors as a list over training seeds, each with its per-component RMSE."""
    seeds = [errors] if isinstance(errors, MultiStepErrors) else list(errors)
    if not seeds or not all(isinstance(one, MultiStepErrors) and one.rmse_per_dim is not None for one in seeds):
        raise ValueError(f"{name!r}: per_component needs MultiStepErrors (or a list of them, one per seed) from multi_step_errors")
    if len({one.rmse_per_dim.shape for one in seeds}) != 1:
        raise ValueError(f"{name!r}: the seeds' errors cover different horizons")
    return seeds


def _plot_compounding_error_per_component(
    errors_by_model: Mapping[str, MultiStepErrors | Sequence[MultiStepErrors]], baseline: MultiStepErrors | None, title: str
) -> Figure:
    """plot_compounding_error(per_component=True): a 2 x 2 grid, one state component per panel."""
    by_model = {name: _per_seed(errors, name) for name, errors in errors_by_model.items()}
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True, layout="constrained")
    for component, ax in enumerate(axes.ravel()):
        longest = 1
        for i, (name, seeds) in enumerate(by_model.items()):
            color = f"C{i}"
            rmse = np.stack([one.rmse_per_dim[:, component] for one in seeds])  # (n_seeds, L)
            horizons = seeds[0].horizons
            seeds_note = f", median of {len(seeds)} seeds" if len(seeds) > 1 else ""
            ax.plot(horizons, np.median(rmse, axis=0), marker="o", markersize=3, color=color, label=f"{name}{seeds_note}")
            if len(seeds) > 1:
                ax.fill_between(
                    horizons, rmse.min(axis=0), rmse.max(axis=0), color=color, alpha=0.18, linewidth=0, label=f"{name}: lowest to highest over the seeds"
                )
            members = seeds[0].member_rmse_per_dim
            if members is not None:
                for k, member in enumerate(members[:, :, component]):
                    ax.plot(horizons, member, color=color, linewidth=0.7, alpha=0.5, label=f"{name}: each member alone (first seed)" if k == 0 else None)
            if seeds[0].spread_per_dim is not None:
                spread = np.median(np.stack([one.spread_per_dim[:, component] for one in seeds]), axis=0)
                ax.plot(horizons, spread, linestyle="--", color=color, label=f"{name}: spread across members")
            longest = max(longest, len(horizons))
        if baseline is not None:
            ax.plot(baseline.horizons, baseline.rmse_per_dim[:, component], linestyle=":", linewidth=2, color="black", label="predict no change (Δs = 0)")
        ax.set_yscale("log")
        ax.set_xlim(0.5, longest + 0.5)
        ax.set_title(STATE_NAMES[component])
        ax.set_ylabel(f"RMSE ({STATE_UNITS[component]}, log scale)")
        ax.grid(alpha=0.3, which="both")
        if component >= 2:
            ax.set_xlabel("prediction horizon (steps)")
        else:
            seconds_axis = ax.secondary_xaxis("top", functions=(lambda steps: steps * DT, lambda seconds: seconds / DT))
            seconds_axis.set_xlabel("prediction horizon (s)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)
    fig.suptitle(title)
    return fig


def plot_uncertainty(
    sweep: UncertaintySweep,
    training_data: np.ndarray | Mapping[str, np.ndarray],
    axes: Sequence[Axes] | None = None,
    state_dim: int | None = None,
    title: str | None = None,
) -> Figure:
    """Predicted uncertainty along one state component (top), above a histogram of the training data (bottom).

    `sweep`: what predicted_uncertainty returns. `training_data`: the training states (N, 4), or the
    dataset dict load_dataset() returns. The curves show, for each model, the size of its predicted
    std of the state change: the norm over the 4 components, or component `state_dim` alone.
    Where no training data lie (shaded), the uncertainty should grow. A probabilistic ensemble's
    total std (sweep.probabilistic_std), when present, is drawn too. `title` replaces the default.
    """
    states = np.asarray(training_data["states"] if isinstance(training_data, Mapping) else training_data)
    if states.ndim != 2 or states.shape[1] != len(STATE_NAMES):
        raise ValueError(f"training_data must be states of shape (N, 4) or the dataset dict, got shape {states.shape}")
    if sweep.sigma is None and sweep.ensemble_std is None and sweep.probabilistic_std is None:
        raise ValueError("the sweep holds no uncertainty: call predicted_uncertainty with a model")
    fig, (curve_ax, hist_ax) = _figure_and_axes_column(axes, 2, figsize=(6.5, 5.5), gridspec_kw={"height_ratios": [2, 1]})

    def size(std: np.ndarray) -> np.ndarray:  # (P, S) -> (P,)
        return std[:, state_dim] if state_dim is not None else np.linalg.norm(std, axis=1)

    which = f"Δ {STATE_NAMES[state_dim]}" if state_dim is not None else "Δs\n(norm over the 4 components)"
    if sweep.sigma is not None:
        curve_ax.plot(sweep.values, size(sweep.sigma), color="C1", label="stochastic model: predicted σ")
    if sweep.ensemble_std is not None:
        curve_ax.plot(sweep.values, size(sweep.ensemble_std), color="C2", label="ensemble: std across members")
    if sweep.probabilistic_std is not None:
        curve_ax.plot(sweep.values, size(sweep.probabilistic_std), color="C3", label="probabilistic ensemble: total std")
    curve_ax.set_yscale("log")
    curve_ax.set_ylabel(f"predicted std of {which}\n(log scale)")
    curve_ax.set_title(title or f"Predicted uncertainty along {sweep.axis_name}\n(other state components 0, action {sweep.action:g})")
    # Leave the top of the axes free for the legend: raise the upper limit by 40% of the decades shown.
    shown = np.concatenate([line.get_ydata() for line in curve_ax.get_lines()])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    if len(shown):
        low, high = shown.min(), shown.max()
        curve_ax.set_ylim(low / 1.2, high * (high / low) ** 0.4 * 1.2)

    data_along_axis = states[:, sweep.axis]
    data_low, data_high = float(np.min(data_along_axis)), float(np.max(data_along_axis))
    sweep_low, sweep_high = float(np.min(sweep.values)), float(np.max(sweep.values))
    for ax in (curve_ax, hist_ax):
        for start, end in ((sweep_low, data_low), (data_high, sweep_high)):
            if end > start:
                label = "no training data" if ax is curve_ax and start == sweep_low else None
                ax.axvspan(start, end, color="0.5", alpha=0.15, linewidth=0, label=label)
    curve_ax.legend(loc="upper center", fontsize=8)
    curve_ax.grid(alpha=0.3, which="both")

    bins = np.linspace(min(sweep_low, data_low), max(sweep_high, data_high), 61)
    hist_ax.hist(data_along_axis, bins=bins, color="C0", alpha=0.8)
    hist_ax.set_xlim(sweep_low, sweep_high)
    hist_ax.set_ylabel("training\ntransitions")
    hist_ax.set_xlabel(f"{sweep.axis_name} ({STATE_UNITS[sweep.axis]})")
    hist_ax.grid(alpha=0.3)
    return fig


def plot_uncertainty_side_by_side(panels: Mapping[str, tuple[UncertaintySweep, np.ndarray | Mapping[str, np.ndarray]]], state_dim: int | None = None) -> Figure:
    """plot_uncertainty for several trainings side by side, on one shared y scale so the curves compare.

    `panels`: a title (e.g. "clean data") -> (the sweep, the training data it was trained on).
    Each column is one panel: the uncertainty curves above a histogram of its training data.
    """
    if not panels:
        raise ValueError("panels is empty: pass a dict title -> (predicted_uncertainty(...), training data)")
    fig, axes = plt.subplots(
        2, len(panels), figsize=(5.5 * len(panels), 5.5), sharex=True, squeeze=False, layout="constrained", gridspec_kw={"height_ratios": [2, 1]}
    )
    for column, (panel_title, (sweep, training_data)) in enumerate(panels.items()):
        plot_uncertainty(sweep, training_data, axes=axes[:, column], state_dim=state_dim, title=panel_title)
    low = min(ax.get_ylim()[0] for ax in axes[0])
    high = max(ax.get_ylim()[1] for ax in axes[0])
    for ax in axes[0]:
        ax.set_ylim(low, high)
    return fig


_SHORT_STATE_NAMES = ("x", "angle", "x_dot", "angle_dot")


def _start_label(start: Sequence[float]) -> str:
    """A displaced start in words, its non-zero components one per line: "x +0.70\nangle +0.10"."""
    parts = [f"{name} {_signed(value)}" for name, value in zip(_SHORT_STATE_NAMES, start) if round(float(value), 2) != 0]
    return "\n".join(parts) or "upright"


def plot_displaced_starts(
    summaries: Mapping[str, DisplacedStartSummary], starts: Sequence[Sequence[float]], max_steps: int, title: str | None = None
) -> Figure:
    """The return of every (model, training seed, start) case as a grid: green reached max_steps, red fell at once.

    `summaries`: what evaluate_displaced_starts returns, model name -> DisplacedStartSummary; `starts`:
    the starts it ran from (its columns), e.g. DISPLACED_STARTS. One row per model and training seed.
    """
    if not summaries:
        raise ValueError("summaries is empty: pass what evaluate_displaced_starts returns")
    rows, labels = [], []
    for name, summary in summaries.items():
        returns = np.asarray(summary.returns, dtype=np.float64)
        if returns.shape[1] != len(starts):
            raise ValueError(f"{name!r}: {returns.shape[1]} returns per seed for {len(starts)} starts")
        for seed, seed_returns in zip(summary.training_seeds, returns):
            rows.append(seed_returns)
            labels.append(f"{name}, seed {seed}")
    grid = np.stack(rows)  # (models x seeds, starts)
    fig, ax = plt.subplots(figsize=(1.1 * len(starts) + 2.5, 0.42 * len(rows) + 2.2), layout="constrained")
    image = ax.imshow(grid / max_steps, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for (row, column), value in np.ndenumerate(grid):
        ax.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(starts)), [_start_label(start) for start in starts], fontsize=7)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    for boundary in np.cumsum([len(summary.training_seeds) for summary in summaries.values()])[:-1]:
        ax.axhline(boundary - 0.5, color="white", linewidth=3)  # between models
    ax.set_xlabel("displaced start (non-zero components; m, rad, m/s, rad/s)")
    fig.colorbar(image, ax=ax, label=f"return / {max_steps} (the step limit)", shrink=0.8)
    ax.set_title(title or f"Return from each displaced start ({max_steps} steps at most)")
    return fig


def _as_states(states) -> np.ndarray:
    """(T + 1, 4) states from an array or an EpisodeResult."""
    states = np.asarray(states.states if isinstance(states, EpisodeResult) else states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != len(STATE_NAMES) or len(states) == 0:
        raise ValueError(f"states must have shape (T + 1, 4) (e.g. EpisodeResult.states), got {states.shape}")
    return states


def _signed(value: float) -> str:
    """+0.05, -0.12, and 0.00 rather than -0.00."""
    value = round(float(value), 2)
    return f"{value:+.2f}" if value != 0 else "0.00"


def _pole_tip(x: float, angle: float) -> tuple[float, float]:
    # MuJoCo's hinge turns about +y: a positive angle tips the pole towards +x (to the right).
    return x + POLE_LENGTH * np.sin(angle), POLE_LENGTH * np.cos(angle)


def _draw_scene(ax: Axes) -> tuple[Rectangle, plt.Line2D, plt.Line2D]:
    """The rail, and a cart and pole to be placed by _place_pendulum; returns (cart, pole, upright guide)."""
    ax.plot([-RAIL_LIMIT, RAIL_LIMIT], [0, 0], color="0.3", linewidth=2, zorder=1)
    for end in (-RAIL_LIMIT, RAIL_LIMIT):  # stops at the rail's ends
        ax.plot([end, end], [-0.12, 0.12], color="0.3", linewidth=2, zorder=1)
    upright = ax.plot([0, 0], [0, POLE_LENGTH], color="0.6", linestyle=":", linewidth=1, zorder=1)[0]
    cart = Rectangle((-CART_WIDTH / 2, -CART_HEIGHT / 2), CART_WIDTH, CART_HEIGHT, facecolor="#c9b037", edgecolor="0.2", zorder=2)
    ax.add_patch(cart)
    pole = ax.plot([0, 0], [0, POLE_LENGTH], color="teal", linewidth=3, solid_capstyle="round", zorder=3)[0]
    ax.set_xlim(-RAIL_LIMIT - 0.25, RAIL_LIMIT + 0.25)
    ax.set_ylim(-0.2, POLE_LENGTH + 0.1)
    ax.set_aspect("equal")
    ax.set_yticks([])
    ax.set_xticks([-1, 0, 1])
    ax.tick_params(labelsize=7, length=2)
    return cart, pole, upright


def _place_pendulum(cart: Rectangle, pole: plt.Line2D, upright: plt.Line2D, state: np.ndarray) -> None:
    x, angle = float(state[0]), float(state[1])
    cart.set_x(x - CART_WIDTH / 2)
    tip_x, tip_y = _pole_tip(x, angle)
    pole.set_data([x, tip_x], [0, tip_y])
    pole.set_color("red" if abs(angle) > ANGLE_LIMIT else "teal")  # red: past the point where the episode ends
    upright.set_data([x, x], [0, POLE_LENGTH])


def pendulum_filmstrip(states, n_frames: int = 8, axes: Sequence[Axes] | None = None, title: str | None = None) -> Figure:
    """A row of `n_frames` snapshots of cart and pole, evenly spaced in time, from the first state to the last.

    `states`: (T + 1, 4), e.g. EpisodeResult.states (or the EpisodeResult itself). Drawn to scale:
    the rail spans x in [-1, 1] m, the pole is 0.6 m long and leans by its angle from vertical
    (dotted line), positive to the right, as in MuJoCo; it turns red past |angle| = 0.2 rad.
    An episode shorter than `n_frames` states (a pole that fell at once) shows each of its states.
    """
    states = _as_states(states)
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if axes is None:
        n_frames = min(n_frames, len(states))
    frame_indices = np.round(np.linspace(0, len(states) - 1, min(n_frames, len(states)))).astype(int)
    if axes is None:
        figsize = (1.7 * n_frames, 1.5 if title is None else 1.8)
        fig, axes = plt.subplots(1, n_frames, figsize=figsize, layout="constrained", squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.ravel(axes))
        if len(axes) != n_frames:
            raise ValueError(f"pendulum_filmstrip needs n_frames = {n_frames} axes, got {len(axes)}")
        fig = axes[0].figure
    for ax, index in zip(axes, frame_indices):
        _place_pendulum(*_draw_scene(ax), states[index])
        ax.set_title(f"t = {index * DT:.1f} s\nangle {_signed(states[index, 1])} rad", fontsize=8)
    for ax in axes[len(frame_indices) :]:  # axes given for more frames than the episode has states
        ax.set_axis_off()
    axes[0].set_xlabel("cart x (m)", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def animate_episode(states, interval_ms: float = DT * 1000, title: str | None = None) -> FuncAnimation:
    """An animation of cart and pole, one frame per state, in real time by default (100 ms a frame).

    `states`: (T + 1, 4), e.g. EpisodeResult.states. In a notebook:
        from IPython.display import HTML; HTML(animation_html(animate_episode(result.states)))
    (no ffmpeg needed). The figure is closed so that a notebook does not also show a
    static copy of it; the animation keeps it alive.
    """
    states = _as_states(states)
    fig, ax = plt.subplots(figsize=(5, 2.4), layout="constrained")
    cart, pole, upright = _draw_scene(ax)
    ax.set_xlabel("cart x (m)")
    heading = ax.set_title("")

    def draw_frame(index: int):
        _place_pendulum(cart, pole, upright, states[index])
        heading.set_text(f"{title + ': ' if title else ''}t = {index * DT:.1f} s, angle {_signed(states[index, 1])} rad")
        return cart, pole, upright, heading

    animation = FuncAnimation(fig, draw_frame, frames=len(states), interval=interval_ms, blit=False)
    plt.close(fig)
    return animation


# Matplotlib's player draws its buttons with Font Awesome icons, loaded from a CDN: offline (a
# feedback page on a train, a lab without internet) the buttons are blank. These are text glyphs.
_PLAYER_GLYPHS = {  # characters that common fonts have (the media-control block often is missing)
    "fa fa-minus": "&minus;",
    "fa fa-fast-backward": "|&#x25C0;",
    "fa fa-step-backward": "&lsaquo;",
    "fa fa-play fa-flip-horizontal": "&#x25C0;",
    "fa fa-pause": "&#x2016;",
    "fa fa-play": "&#x25B6;",
    "fa fa-step-forward": "&rsaquo;",
    "fa fa-fast-forward": "&#x25B6;|",
    "fa fa-plus": "+",
}


def animation_html(animation: FuncAnimation) -> str:
    """The animation as a self-contained HTML player (matplotlib's `to_jshtml`, frames inlined),
    whose buttons need no network: show it with `IPython.display.HTML(animation_html(anim))`."""
    import re

    html = animation.to_jshtml()
    html = re.sub(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', "", html)
    for icon, glyph in _PLAYER_GLYPHS.items():
        html = html.replace(f'<i class="{icon}"></i>', glyph)
    return re.sub(r'<img id="(_anim_img\w+)">', r'<img id="\1" alt="Animation of the cart and pole">', html)


# -- notebook 4: closing the loop -----------------------------------------------------------------
def plot_returns_per_iteration(
    returns_by_model: Mapping[str, Sequence[float]],
    data_sizes: Mapping[str, Sequence[int]] | None = None,
    ax: Axes | None = None,
    title: str = "Return per iteration of the loop",
    max_return: float = 1000.0,
) -> Figure:
    """One line per model: the return of the episode each iteration's agent ran (1 = trained on the start data only).

    `data_sizes`: name -> the number of transitions each iteration's agent was trained on,
    written beside its point.
    """
    if not returns_by_model:
        raise ValueError("returns_by_model is empty: pass a dict name -> list of returns, one per iteration")
    fig, ax = _figure_and_axes(ax, figsize=(7, 4))
    longest = 1
    for i, (name, returns) in enumerate(returns_by_model.items()):
        returns = np.asarray(returns, dtype=np.float64).reshape(-1)
        iterations = np.arange(1, len(returns) + 1)
        ax.plot(iterations, returns, marker="o", color=f"C{i}", label=name)
        for k, (iteration, value) in enumerate(zip(iterations, returns)):
            if data_sizes is not None and name in data_sizes and k < len(data_sizes[name]):
                ax.annotate(f"{data_sizes[name][k]:,}", (iteration, value), textcoords="offset points", xytext=(4, -12 - 10 * i), fontsize=7, color=f"C{i}")
        longest = max(longest, len(returns))
    ax.axhline(max_return, color="0.4", linestyle="--", linewidth=1, label=f"upright all {max_return:.0f} steps")
    ax.set_xticks(np.arange(1, longest + 1))
    ax.set_xlim(0.7, longest + 0.5)
    ax.set_ylim(0, 1.08 * max_return)
    ax.set_xlabel("iteration (its agent trained on the start data plus every earlier episode)")
    ax.set_ylabel("return of the iteration's episode")
    if data_sizes is not None:
        ax.text(0.99, 0.02, "small numbers: transitions trained on", transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.3")
    ax.set_title(title)
    ax.legend(loc="center right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_disagreement_along_episode(episodes: Mapping[str, tuple[EpisodeResult, object]], title: str | None = None) -> Figure:
    """For each episode (a column): the pole angle, the ensemble's disagreement and the distance to the data, against time.

    `episodes`: name -> (EpisodeResult, EpisodeDisagreement from
    mbrl_helpers.closing_the_loop.disagreement_along_episode). A dotted line marks the step in
    which the pole fell, so one can see whether the disagreement rose before it.
    """
    if not episodes:
        raise ValueError("episodes is empty: pass a dict name -> (episode, disagreement_along_episode(...))")
    fig, axes = plt.subplots(3, len(episodes), figsize=(5.2 * len(episodes) + 0.8, 7), sharex="col", sharey="row", layout="constrained", squeeze=False)
    for column, (name, (episode, measured)) in enumerate(episodes.items()):
        angle_ax, disagreement_ax, distance_ax = axes[:, column]
        times = np.arange(len(episode.states)) * DT
        angle_ax.plot(times, episode.states[:, 1], color="C0")
        for sign in (1, -1):
            angle_ax.axhspan(sign * ANGLE_LIMIT, sign * 0.3, color="red", alpha=0.12, linewidth=0)
        angle_ax.set_ylim(-0.3, 0.3)
        disagreement_ax.plot(times[:-1], measured.disagreement, color="C1")
        distance_ax.plot(times[:-1], measured.distance_to_data, color="C2")
        for ax in (angle_ax, disagreement_ax, distance_ax):
            if episode.terminated:
                ax.axvline(times[-1], color="red", linestyle=":", linewidth=1.5)
            ax.grid(alpha=0.3)
        disagreement_ax.set_yscale("log")
        distance_ax.set_yscale("symlog", linthresh=0.1)
        angle_ax.set_title(f"{name}\n{episode.outcome}", fontsize=9)
        distance_ax.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("pole angle (rad)\n(red: the pole has fallen)")
    axes[1, 0].set_ylabel("disagreement of the members\n(std / data's std, log)")
    axes[2, 0].set_ylabel("distance to the nearest\nstate of the data (in stds)")
    if title:
        fig.suptitle(title)
    return fig


def plot_data_coverage(datasets: Mapping[str, Mapping[str, np.ndarray]], axes: Sequence[Axes] | None = None, title: str = "Where the data are") -> Figure:
    """Scatter of the states of each dataset: cart x against pole angle, and cart velocity against pole angular velocity.

    Datasets are drawn in order, later ones on top: pass the start data first and the added episodes after.
    """
    if not datasets:
        raise ValueError("datasets is empty: pass a dict name -> dataset (a dict with 'states')")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    else:
        axes = list(np.ravel(axes))
        if len(axes) != 2:
            raise ValueError(f"this plot needs 2 axes, got {len(axes)}")
        fig = axes[0].figure
    for i, (name, data) in enumerate(datasets.items()):
        states = np.asarray(data["states"])
        for ax, (a, b) in zip(axes, ((0, 1), (2, 3))):
            ax.scatter(states[:, a], states[:, b], s=4, alpha=0.5, color=f"C{i}", label=f"{name} ({len(states):,})", rasterized=True)
    for ax, (a, b) in zip(axes, ((0, 1), (2, 3))):
        ax.set_xlabel(f"{STATE_NAMES[a]} ({STATE_UNITS[a]})")
        ax.set_ylabel(f"{STATE_NAMES[b]} ({STATE_UNITS[b]})")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, markerscale=3)
    fig.suptitle(title)
    return fig
