"""Reference answers of notebook 4, `04_closing_the_loop`: add an episode to the data, and the loop
"train, run the agent in the real environment, add what it saw"."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def add_episode(dataset: dict, episode) -> dict:
    """The dataset with the episode's transitions after it: (s_t, a_t, s_t+1) for every step t."""
    return {
        "states": np.concatenate([dataset["states"], episode.states[:-1]]),
        "actions": np.concatenate([dataset["actions"], episode.actions]),
        "next_states": np.concatenate([dataset["next_states"], episode.states[1:]]),
    }


def closing_the_loop(dataset: dict, train_agent: Callable, run_agent: Callable, n_iterations: int) -> tuple[dict, list[float]]:
    """`n_iterations` times: train an agent on all the data so far, run one episode, add it.
    Returns the data with every episode added, and each iteration's return."""
    returns = []
    for _ in range(n_iterations):
        agent = train_agent(dataset)
        episode = run_agent(agent)
        returns.append(episode.episode_return)
        dataset = add_episode(dataset, episode)
    return dataset, returns
