"""The hints of the graded checks, written once: the notebooks' visible checks and the grader both use them.

A hint names the mistake it is written for and how to fix it. Only visible-check texts live here
(students get this package): nothing about the grader's hidden inputs. Texts with numbers in them
are functions of those numbers.
"""

from __future__ import annotations

# ---- 01: the deterministic model ----------------------------------------------------------------
STATE_FIRST = "Feed the network the state first, then the action: torch.cat([states, actions], dim=-1)."
CONCAT_LAST_DIM = "Concatenate along the last dimension, torch.cat([states, actions], dim=-1), so that each row has 5 numbers."
PREDICTS_NEXT_STATE = (
    "Mistake: predicting the next state instead of the delta. predict_delta returned states + the network's "
    "output, which is the predicted next state. Return the change alone; whoever uses the model adds it to the state."
)
LOSS_ON_NEXT_STATE = (
    "Mistake: predicting the next state instead of the delta. Your loss compares the prediction with next_states; "
    "the target is the state change next_states - states."
)
LOSS_SUMMED = (
    "Your loss is the sum of the squared errors. Use their mean over the rows and the 4 components "
    "(F.mse_loss does this), so the loss does not grow with the batch size."
)
NO_GRADIENT = "The loss carries no gradient: do not call .item() or .detach() on it, nor compute it under torch.no_grad(); training calls loss.backward()."
LOSS_WITHOUT_GRADIENT = "The loss carries no gradient: do not call .item() or .detach(), nor use torch.no_grad()."

# ---- 01 and 03: the CEM planners ------------------------------------------------------------------
CEM_ACTION_SHAPE = (
    "Wrong shapes: cem_plan must return the first action of the mean, mean[0], shape (1,); got {got}. "
    "The whole mean has shape (T, 1); .item() gives a bare number of shape ()."
)


def elites_lowest(value: str, what: str = "cem_plan") -> str:
    return (
        f"The target is far in the + direction, so the best first action is close to +3, but {what} returned {value}. "
        "Mistake: elites chosen by lowest return? Keep the n_elite sequences with the HIGHEST returns: "
        "returns.topk(n_elite).indices (topk takes the largest), or torch.argsort(returns, descending=True)[:n_elite]. "
        "Also check that reward_fn(states) is what you add up."
    )


def rewards_of_wrong_states(value: str, what: str = "cem_plan") -> str:
    return (
        f"Only the last predicted state of a plan, s_T, is rewarded here (the further in the + direction, the better), so the "
        f"best first action is close to +3, but {what} returned {value}. Mistake: summing the rewards of s_0..s_(T-1) "
        "instead of s_1..s_T? In each step, first predict the next state, states = states + predict_delta(states, actions[:, t]), "
        "then add reward_fn(states): a sequence's return is the reward of the states its actions lead to."
    )


def last_action(value: str, what: str = "cem_plan") -> str:
    return (
        "From position 0, the best plan jumps to the target 2 at once and then stays: actions (2, 0, 0, 0, 0). "
        f"{what} returned {value}, far from +2 (the last action of that plan is 0). Mistake: returning the last action "
        "instead of the first. Return mean[0], the action for now; the agent plans again at the next step."
    )


def std_not_floored(spread: str) -> str:
    return (
        f"In the last of 10 iterations, the first actions you sampled have a std of only {spread}. "
        "Mistake: std not floored. After refitting, clamp the std from below: "
        "elites.std(dim=0).clamp(min=std_floor). (If the 'highest returns' check fails too, fix that one first.)"
    )


def wrong_sample_count(n_samples: int, iterations: int, got: str) -> str:
    return (
        f"Expected predict_delta to see {n_samples} actions at the first step of each of {iterations} iterations, "
        f"got {got} in all. Roll out all n_samples sequences from the current state in every iteration."
    )


# The refit toy (mbrl_helpers.cem_toys): the mistake its iterations fit best, and what to do.
REFIT = {
    "returns of s0..s(T-1)": (
        "Mistake: summing the rewards of s_0..s_(T-1) instead of s_1..s_T. Your elites are those whose states BEFORE each "
        "step are best. In each step, first predict the next state, states = states + predict_delta(states, actions[:, t]), "
        "then add reward_fn(states)."
    ),
    "returns not reset": (
        "Mistake: returns not reset between CEM iterations. Your elites are ranked by returns added up over the iterations, "
        "so old samples' scores pick new samples. Start each iteration with returns = torch.zeros(n_samples), inside the "
        "loop over iterations."
    ),
    "std over all samples": (
        "Mistake: the std is not refitted to the elites. Your next iteration samples as widely as the last one (the std "
        "taken over all samples, or never refitted). Refit in every iteration: std = elite_actions.std(dim=0), over the "
        "n_elite best sequences only, then clamp it at std_floor."
    ),
    "": (
        "Each iteration must sample from Normal(mean, std) refitted to the previous iteration's n_elite highest-return "
        "sequences (elite_actions.mean(dim=0), elite_actions.std(dim=0).clamp(min=std_floor)); your samples are not."
    ),
    "shape": "The refit toy expects one predict_delta call per step of the plan, with all n_samples sequences, in every iteration.",
}
REFIT["std never refitted"] = REFIT["std over all samples"]


def refit_hint(mistake: str, z: float | None = None) -> str:
    """The refit toy's verdict as a hint: what did not fit (z: how many standard errors away, shown for the visible seed)."""
    far = f"{z:.0f} standard errors" if z is not None and z < 1e6 else "far"
    return f"On the refit toy (target 1, std_floor 0.02, 4 iterations), your samples lie {far} from the refit on the elites. {REFIT[mistake]}"


def std_over_horizon(error: str, horizon: int, n_elite: int) -> str | None:
    """The hint for a shape error that mixes the horizon and n_elite sizes (a refit over dim=1), else None."""
    if "must match" in error and f"({horizon})" in error and f"({n_elite})" in error:
        return (
            f"Mistake: the std (or mean) computed over the horizon axis. A tensor of n_elite = {n_elite} rows met one of "
            f"horizon = {horizon} rows. Refit over the elites, dim=0: elite_actions.std(dim=0) has shape (T, A)."
        )
    return None


# ---- 02: the stochastic model ----------------------------------------------------------------------
SAMPLE_IGNORES_SIGMA = (
    "Mistake: the sample ignores sigma. Your draws have std 1 in every component: mu + torch.randn_like(mu) draws "
    "from Normal(mu, 1). Scale the noise, mu + sigma * torch.randn_like(mu), or use Normal(mu, sigma).sample()."
)
NLL_SIGMA_AS_VARIANCE = (
    "Mistake: sigma passed where GaussianNLLLoss expects the variance. GaussianNLLLoss(full=False)(mu, y, var) takes "
    "var = sigma**2 as its third argument (torch.exp(2 * log_sigma)), not sigma."
)
NLL_SUMMED_OVER_COMPONENTS = (
    "Your loss sums the NLL over the 4 components of each row and averages over the rows only: average over the components too, .mean() over all N x 4 terms."
)

SAMPLES_ARE_MU = "All draws are identical: predict_delta returned mu. It must sample: Normal(mu, sigma).sample()."
SAMPLES_OF_NEXT_STATE = "The draws are centred on states + mu: mistake, predicting the next state instead of the delta. Return the sampled change only."
HALVES_SWAPPED = "mu holds the LAST four outputs: the halves are swapped. The first half of the output is mu, the second log_sigma."
NLL_ON_NEXT_STATE = "Mistake: predicting the next state instead of the delta. Your loss scores next_states; the target is next_states - states."
NLL_DIVIDED_BY_SIGMA = "Divide the squared error by 2 * sigma**2 (the variance), not by 2 * sigma."
NLL_LOG_OF_VARIANCE = "The log term is log(sigma), not log(sigma**2) = 2 log(sigma)."
NLL_SUMMED = "Your loss is a sum: average over the rows and the 4 components."
NLL_WITH_CONSTANT = "Your loss is larger than expected by log(2 pi) / 2 = 0.919: drop the constant term (-Normal(mu, sigma).log_prob(y) includes it)."

# ---- 03: the ensemble ---------------------------------------------------------------------------------
GIVEN_NET = (
    "The checks load their weights into the given `self.net` (build_ensemble_mlp, (K, N, 5) -> (K, N, 4)): keep it, "
    "and compute predict_delta and loss with self.net. A ModuleList of members, or torch.func.vmap over copies, "
    "holds weights the checks cannot set."
)


def ensemble_mean_over_samples(error: str) -> str | None:
    """The hint for topk's error when it got fewer returns than n_elite (the mean taken over dim=1), else None."""
    if "out of range" not in error:
        return None
    return (
        "Mistake: the ensemble's returns averaged over the samples instead of the members. returns has shape (K, N); "
        "returns.mean(dim=1) leaves K numbers, fewer than topk(n_elite) needs. Average over the members, "
        "returns.mean(dim=0), one expected return per sequence (N,)."
    )


ENSEMBLE_PREDICTS_NEXT_STATE = (
    "Mistake: predicting the next state instead of the delta. predict_delta returned states + the networks' outputs; return the predicted changes alone."
)
SHARED_ACTIONS_NOT_EXPANDED = "Shared actions (N, 1) must give the same predictions as the same actions given to every member (K, N, 1)."
ENSEMBLE_LOSS_ON_NEXT_STATE = (
    "Mistake: predicting the next state instead of the delta. Your loss compares the predictions with next_states; the target is next_states - states."
)
ENSEMBLE_LOSS_ROW_ZERO = "Every member is scored on row 0: member k's loss must use its own minibatch, row k of the inputs."
ENSEMBLE_LOSS_AVERAGED = (
    "Your loss averages the members' losses: sum them instead. Each member's gradient then equals the gradient of its own loss, as if it were trained alone."
)
MEMBER_BATCHES_THREE_TENSORS = "sample_member_batches must return three tensors: states, actions, next_states"
MIXED_TRANSITIONS = (
    "Some rows mix different transitions: a row's state, action and next state must come from the same transition. "
    "Take all three from one call of buffer.sample(batch_size) for each member."
)

# ---- 04: closing the loop -------------------------------------------------------------------------------
ADD_EPISODE_IN_PLACE = (
    "Mistake: add_episode changed the caller's dataset in place. The loop (and whoever else holds the start data) "
    "still needs it as it was: build new arrays with np.concatenate in a new dict, and leave the one passed in unchanged."
)
LOOP_RETURNS_SWAPPED = "Mistake: (returns, dataset) swapped. closing_the_loop returns the dataset first, then the returns: return dataset, returns."


# ---- what a check prints when it passes (the visible check and the grader alike) -------------------------
PASSED_SAMPLING = "predict_delta: samples have the right mean and spread"
PASSED_SIGMA_CLAMP = "distribution_params: sigma and its clamp OK"
PASSED_ENSEMBLE_MEMBERS = "predict_delta: each member predicts its own rows, as changes"
PASSED_MEMBER_BATCHES = "sample_member_batches: one independent minibatch per member"
PASSED_ENSEMBLE_CEM = "highest returns, first action, std floor, refit: OK"
PASSED_ADD_EPISODE = "add_episode: the episode's transitions follow the old data"
PASSED_LOOP_ITERATIONS = "closing_the_loop: trains on everything so far, runs the new agent, adds its episode"
