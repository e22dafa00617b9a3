"""Plots for the course: training curves, episodes, compounding error, uncertainty, the pendulum itself.

Matplotlib only (no OpenGL, no ffmpeg). Every function returns its Figure and shows or saves
nothing: in a notebook the figure appears at the end of the cell (end the line with `;` or assign
the result, so it does not appear twice); save it with `fig.savefig("name.png")`. Pass `ax` (or
`axes`) to draw into a figure of your own.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from mbrl_helpers.env import ACTION_HIGH, ACTION_LOW, DT, STATE_NAMES
from mbrl_helpers.evaluation import EpisodeResult
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


def plot_training_curve(
    losses: Sequence[float], ax: Axes | None = None, title: str = "Training loss", window: int | None = None
) -> Figure:
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
    errors_by_model: Mapping[str, MultiStepErrors | Sequence[float]],
    ax: Axes | None = None,
    title: str = "Open-loop prediction error grows with the horizon",
) -> Figure:
    """RMSE of open-loop predictions against the horizon, one line per model (log y).

    `errors_by_model`: name -> MultiStepErrors (from multi_step_errors) or an array of RMSE (L,).
    An ensemble's spread, when present, is drawn dashed in the same colour: where it lies close to
    the RMSE line, the members' disagreement is an honest estimate of the ensemble's real error.
    The lower x axis counts steps, the upper one seconds (1 step = 0.1 s).
    """
    if not errors_by_model:
        raise ValueError("errors_by_model is empty: pass a dict name -> multi_step_errors(...)")
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


def plot_uncertainty(
    sweep: UncertaintySweep,
    training_data: np.ndarray | Mapping[str, np.ndarray],
    axes: Sequence[Axes] | None = None,
    state_dim: int | None = None,
) -> Figure:
    """Predicted uncertainty along one state component (top), above a histogram of the training data (bottom).

    `sweep`: what predicted_uncertainty returns. `training_data`: the training states (N, 4), or the
    dataset dict load_dataset() returns. The curves show, for each model, the size of its predicted
    std of the state change: the norm over the 4 components, or component `state_dim` alone.
    Where no training data lie (shaded), the uncertainty should grow.
    """
    states = np.asarray(training_data["states"] if isinstance(training_data, Mapping) else training_data)
    if states.ndim != 2 or states.shape[1] != len(STATE_NAMES):
        raise ValueError(f"training_data must be states of shape (N, 4) or the dataset dict, got shape {states.shape}")
    if sweep.sigma is None and sweep.ensemble_std is None:
        raise ValueError("the sweep holds no uncertainty: call predicted_uncertainty with a model")
    fig, (curve_ax, hist_ax) = _figure_and_axes_column(axes, 2, figsize=(6.5, 5.5), gridspec_kw={"height_ratios": [2, 1]})

    def size(std: np.ndarray) -> np.ndarray:  # (P, S) -> (P,)
        return std[:, state_dim] if state_dim is not None else np.linalg.norm(std, axis=1)

    which = f"Δ {STATE_NAMES[state_dim]}" if state_dim is not None else "Δs\n(norm over the 4 components)"
    if sweep.sigma is not None:
        curve_ax.plot(sweep.values, size(sweep.sigma), color="C1", label="stochastic model: predicted σ")
    if sweep.ensemble_std is not None:
        curve_ax.plot(sweep.values, size(sweep.ensemble_std), color="C2", label="ensemble: std across members")
    curve_ax.set_yscale("log")
    curve_ax.set_ylabel(f"predicted std of {which}\n(log scale)")
    curve_ax.set_title(f"Predicted uncertainty along {sweep.axis_name}\n(other state components 0, action {sweep.action:g})")
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
