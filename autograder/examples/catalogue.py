"""The example submissions: plausible mistakes, one each, and correct solutions written differently.

Each mistake is one text substitution in the reference answer of one function (see
`autograder.examples.build`), applied to a copy of the reference submission of one notebook.
`checks` are the graded cells that must lose their points, the first being the check written for
that mistake; `hint` must appear in that check's feedback. Every other automatically graded
cell keeps its points. A substitution whose text no longer occurs exactly once in the solution
cells makes building the examples fail, so the catalogue cannot drift from the notebooks.

Each alternative replaces whole solution cells with a correct solution written in another way;
it must get full marks.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.examples.build import Substitution

NB1, NB2, NB3, NB4 = "01_deterministic_cem", "02_stochastic", "03_ensemble", "04_closing_the_loop"


@dataclass(frozen=True)
class Mistake:
    name: str
    notebook: str
    what: str
    """the mistake, in a student's terms"""
    substitution: Substitution
    checks: tuple[str, ...]
    """graded cells that lose their points; the first is the one meant for this mistake"""
    hint: str
    """text that the first check's message must contain"""


@dataclass(frozen=True)
class Alternative:
    name: str
    notebook: str
    what: str
    cells: dict[str, str]
    """solution cell grade_id -> the whole cell as this student wrote it"""
    substitutions: tuple[Substitution, ...] = ()


def S(old: str, new: str, count: int = 1) -> Substitution:
    return Substitution(old, new, count=count)


MISTAKES = (
    # ---- 01: the deterministic model --------------------------------------------------------------
    Mistake(
        "predicts-next-state",
        NB1,
        "predict_delta returns the predicted next state, s + f(s, a), instead of the change",
        S("return self.net(torch.cat([states, actions], dim=-1))", "return states + self.net(torch.cat([states, actions], dim=-1))"),
        # The return too: with the fixed weights in this class the pole stays up, but the planner plans
        # from s + s + f(s, a), and from the return's pendulum states away from upright its first
        # actions sit 5 to 6 times the tolerance from the reference's (the rank test on the episode
        # alone caught it for 9 students in 20, so its points hung on the student's seeds).
        ("test-det-predict-delta", "test-det-loss", "test-cem-return"),
        "predicting the next state instead of the delta",
    ),
    Mistake(
        "mse-on-next-states",
        NB1,
        "the loss compares the predicted change with the absolute next state",
        S("F.mse_loss(self.predict_delta(states, actions), next_states - states)", "F.mse_loss(self.predict_delta(states, actions), next_states)"),
        ("test-det-loss",),
        "predicting the next state instead of the delta",
    ),
    Mistake(
        "loss-summed",
        NB1,
        "the loss sums the squared errors instead of averaging them",
        S(
            "F.mse_loss(self.predict_delta(states, actions), next_states - states)",
            'F.mse_loss(self.predict_delta(states, actions), next_states - states, reduction="sum")',
        ),
        ("test-det-loss",),
        "sum of the squared errors",
    ),
    Mistake(
        "loss-detached",
        NB1,
        "the loss is detached from the graph, so training cannot differentiate it",
        S(
            "F.mse_loss(self.predict_delta(states, actions), next_states - states)",
            "F.mse_loss(self.predict_delta(states, actions), next_states - states).detach()",
        ),
        ("test-det-loss",),
        "carries no gradient",
    ),
    Mistake(
        "concat-wrong-axis",
        NB1,
        "states and actions concatenated along the batch axis (wrong shapes)",
        S("return self.net(torch.cat([states, actions], dim=-1))", "return self.net(torch.cat([states, actions], dim=0))"),
        ("test-det-predict-shape", "test-det-predict-delta", "test-det-loss", "test-cem-return"),
        "Wrong shapes",
    ),
    Mistake(
        "elites-lowest-return",
        NB1,
        "CEM keeps the sequences with the lowest returns",
        S("returns.topk(n_elite).indices", "returns.topk(n_elite, largest=False).indices"),
        ("test-cem-elites", "test-cem-first-action", "test-cem-std-floor", "test-cem-reference", "test-cem-return"),
        "elites chosen by lowest return",
    ),
    Mistake(
        "last-action",
        NB1,
        "CEM returns the last action of the mean sequence instead of the first",
        S("    return mean[0]", "    return mean[-1]"),
        ("test-cem-first-action", "test-cem-reference", "test-cem-return"),
        "returning the last action instead of the first",
    ),
    Mistake(
        "action-as-number",
        NB1,
        "CEM returns a bare number (.item()) instead of an action of shape (1,)",
        S("    return mean[0]", "    return mean[0].item()"),
        ("test-cem-output", "test-cem-return"),
        "Wrong shapes",
    ),
    Mistake(
        "std-not-floored",
        NB1,
        "the refitted CEM std is not clamped from below",
        S("std = elite_actions.std(dim=0).clamp(min=std_floor)", "std = elite_actions.std(dim=0)"),
        ("test-cem-std-floor",),
        "std not floored",
    ),
    Mistake(
        "actions-not-clamped",
        NB1,
        "sampled action sequences are not clamped to [-3, 3]",
        S("Normal(mean, std).sample((n_samples,)).clamp(ACTION_LOW, ACTION_HIGH)", "Normal(mean, std).sample((n_samples,))"),
        ("test-cem-clamp",),
        "Clamp the samples",
    ),
    Mistake(
        "elites-wrong-axis",
        NB1,
        "the refit averages each elite over the horizon (dim=1) instead of over the elites (dim=0)",
        S("(dim=0)", "(dim=1)", count=2),
        ("test-cem-reference", "test-cem-first-action", "test-cem-std-floor", "test-cem-return"),
        "the refit of mean and std",
    ),
    Mistake(
        "numpy-sampling",
        NB1,
        "CEM samples with NumPy's global generator, so seeded runs do not repeat",
        S(
            "Normal(mean, std).sample((n_samples,))",
            "torch.as_tensor(np.random.normal(mean.numpy(), std.numpy(), (n_samples, horizon, ACTION_DIM)), dtype=torch.float32)",
        ),
        ("test-cem-reference",),
        "Draw every random number with torch",
    ),
    # The refit toy (mbrl_helpers.cem_toys, in test-cem-std-floor) and the last-state toy (in test-cem-elites)
    # catch these deterministically; benchmarks.check_rates measures how far each sits from the tolerances.
    Mistake(
        "rewards-of-s0-to-sT-1",
        NB1,
        "CEM adds the reward of each state before stepping it: the rewards of s_0..s_(T-1) instead of s_1..s_T",
        S(
            "            states = states + predict_delta(states, actions[:, t])\n            returns += reward_fn(states)",
            "            returns += reward_fn(states)\n            states = states + predict_delta(states, actions[:, t])",
        ),
        # test-cem-reference: 1.40 to 1.61 times its tolerance once the ambiguous gap (0.85 to 1.19 with 30 seeds)
        # is asked again with 120 seeds (benchmarks.check_rates --pendulum, 6 students).
        ("test-cem-elites", "test-cem-std-floor", "test-cem-reference", "test-cem-return"),
        "summing the rewards of s_0..s_(T-1) instead of s_1..s_T",
    ),
    Mistake(
        "std-over-all-samples",
        NB1,
        "CEM refits the std over all samples instead of the elites",
        S("std = elite_actions.std(dim=0)", "std = actions.std(dim=0)"),
        # test-cem-reference and the return's comparison: its first actions spread 1.45 to 1.61 times as
        # widely as the reference's (common.SPREAD_LIMIT; benchmarks.check_rates --pendulum).
        ("test-cem-std-floor", "test-cem-reference", "test-cem-return"),
        "the std is not refitted to the elites",
    ),
    Mistake(
        "std-never-refitted",
        NB1,
        "CEM refits the mean only: the std stays at its initial 1",
        S("        std = elite_actions.std(dim=0).clamp(min=std_floor)\n", ""),
        # as std-over-all-samples: 1.44 to 1.60 times the reference's spread.
        ("test-cem-std-floor", "test-cem-reference", "test-cem-return"),
        "the std is not refitted to the elites",
    ),
    Mistake(
        "returns-not-reset",
        NB1,
        "CEM creates the returns once, before the iterations, so they add up over iterations",
        S(
            "    for _ in range(n_iters):\n        actions = Normal(mean, std).sample((n_samples,)).clamp(ACTION_LOW, ACTION_HIGH)  # (N, T, A)\n"
            "        states = state.expand(n_samples, -1)  # (N, S)\n        returns = torch.zeros(n_samples, device=state.device)\n",
            "    returns = torch.zeros(n_samples, device=state.device)\n    for _ in range(n_iters):\n"
            "        actions = Normal(mean, std).sample((n_samples,)).clamp(ACTION_LOW, ACTION_HIGH)  # (N, T, A)\n"
            "        states = state.expand(n_samples, -1)  # (N, S)\n",
        ),
        # test-cem-reference: 1.65 to 2.29 times its tolerance with 30 seeds (benchmarks.check_rates --pendulum).
        ("test-cem-std-floor", "test-cem-reference", "test-cem-return"),
        "returns not reset between CEM iterations",
    ),
    Mistake(
        "std-over-horizon",
        NB1,
        "CEM computes the refitted std over the horizon axis (dim=1), shape (n_elite, A)",
        S("std = elite_actions.std(dim=0)", "std = elite_actions.std(dim=1)"),
        ("test-cem-output", "test-cem-elites", "test-cem-first-action", "test-cem-std-floor", "test-cem-clamp", "test-cem-reference", "test-cem-return"),
        "the std (or mean) computed over the horizon axis",
    ),
    # ("planning-with-grad", the planner run with autograd on, is no longer a graded mistake: its
    # actions are exactly right, so only the student's own process could tell, and grading takes
    # nothing on its word. The notebook's own check still advises against it.)
    # ---- 02: the stochastic model ---------------------------------------------------------------------
    Mistake(
        "samples-mu",
        NB2,
        "predict_delta returns mu instead of a sample from Normal(mu, sigma)",
        S("return torch.distributions.Normal(mu, sigma).sample()", "return mu"),
        ("test-sto-sampling",),
        "predict_delta returned mu",
    ),
    Mistake(
        "samples-with-variance",
        NB2,
        "predict_delta samples with the variance sigma**2 as the scale",
        S("return torch.distributions.Normal(mu, sigma).sample()", "return torch.distributions.Normal(mu, sigma**2).sample()"),
        ("test-sto-sampling",),
        "not the variance sigma**2",
    ),
    Mistake(
        "sigma-not-clamped",
        NB2,
        "sigma = exp(log_sigma) without the clamp to [1e-8, 10]",
        S("sigma = torch.clamp(torch.exp(log_sigma), min=SIGMA_MIN, max=SIGMA_MAX)", "sigma = torch.exp(log_sigma)"),
        # The return check passes: notebook 2's random shooting (horizon 2, uniform actions) keeps the
        # imagined states where exp(log_sigma) stays finite; CEM's five refits reached states where it
        # overflowed, and Normal(mu, inf) stopped the episode. The two clamp checks still catch it.
        ("test-sto-sigma-clamp", "test-sto-nll-clamped"),
        "sigma from log_sigma without the clamp",
    ),
    Mistake(
        "halves-swapped",
        NB2,
        "the network's output split the wrong way round: log_sigma first, mu second",
        S("mu, log_sigma = torch.chunk(out, 2, dim=-1)", "log_sigma, mu = torch.chunk(out, 2, dim=-1)"),
        ("test-sto-split", "test-sto-sigma-clamp", "test-sto-sampling", "test-sto-nll", "test-sto-nll-clamped", "test-sto-return"),
        "the halves are swapped",
    ),
    Mistake(
        "nll-sigma-not-squared",
        NB2,
        "the NLL divides the squared error by 2 sigma where 2 sigma**2 belongs",
        S("/ (2 * sigma**2)", "/ (2 * sigma)"),
        ("test-sto-nll", "test-sto-nll-clamped"),
        "not by 2 * sigma",
    ),
    Mistake(
        "nll-log-variance",
        NB2,
        "the NLL's log term is log(sigma**2) instead of log(sigma)",
        S("+ torch.log(sigma)).mean()", "+ torch.log(sigma**2)).mean()"),
        ("test-sto-nll", "test-sto-nll-clamped"),
        "not log(sigma**2)",
    ),
    Mistake(
        "sample-ignores-sigma",
        NB2,
        "predict_delta samples mu + randn: the noise is not scaled by sigma",
        S("return torch.distributions.Normal(mu, sigma).sample()", "return mu + torch.randn_like(mu)"),
        ("test-sto-sampling", "test-sto-return"),
        "the sample ignores sigma",
    ),
    Mistake(
        "nll-sigma-as-variance",
        NB2,
        "the loss is GaussianNLLLoss with sigma passed where it expects the variance",
        S("return ((target - mu) ** 2 / (2 * sigma**2) + torch.log(sigma)).mean()", "return nn.GaussianNLLLoss(full=False)(mu, target, sigma)"),
        ("test-sto-nll", "test-sto-nll-clamped"),
        "sigma passed where GaussianNLLLoss expects the variance",
    ),
    Mistake(
        "nll-summed-over-components",
        NB2,
        "the NLL is summed over the 4 components of each row, then averaged over the rows",
        S("+ torch.log(sigma)).mean()", "+ torch.log(sigma)).sum(dim=-1).mean()"),
        ("test-sto-nll", "test-sto-nll-clamped"),
        "sums the NLL over the 4 components",
    ),
    # ---- 03: the ensemble ------------------------------------------------------------------------------
    Mistake(
        "shared-minibatch",
        NB3,
        "all ensemble members train on one shared minibatch",
        S("batches = [buffer.sample(batch_size) for _ in range(n_members)]", "batches = [buffer.sample(batch_size)] * n_members"),
        ("test-ens-member-batches",),
        "one minibatch shared by all members",
    ),
    Mistake(
        "ranked-by-first-member",
        NB3,
        "the ensemble planner ranks sequences by the first member's return only",
        S("expected_returns = returns.mean(dim=0)", "expected_returns = returns[0]"),
        # test-ens-cem-reference and the return's comparison: 1.09 to 1.80 times the tolerance with 120
        # seeds (20 made-up students; with 30 alone 0.63 to 1.29, a verdict that hung on the seeds).
        ("test-ens-cem-mean-return", "test-ens-cem-reference", "test-ens-return"),
        "ensemble ranked by one member",
    ),
    Mistake(
        "ranked-by-best-member",
        NB3,
        "the ensemble planner ranks sequences by their best member's return (optimism)",
        S("expected_returns = returns.mean(dim=0)", "expected_returns = returns.max(dim=0).values"),
        # as ranked-by-first-member: 1.05 to 1.67 times the tolerance with 120 seeds.
        ("test-ens-cem-mean-return", "test-ens-cem-reference", "test-ens-return"),
        "Average the returns over the member dimension",
    ),
    Mistake(
        "ensemble-loss-averaged",
        NB3,
        "the ensemble loss averages the members' losses instead of summing them",
        S("squared_errors.mean(dim=(1, 2)).sum()", "squared_errors.mean()"),
        ("test-ens-loss",),
        "sum them instead",
    ),
    Mistake(
        "shared-actions-not-expanded",
        NB3,
        "predict_delta does not expand shared actions (N, 1) to every member (wrong shapes)",
        S("        if actions.dim() == 2:\n            actions = actions.expand(self.n_members, -1, -1)\n", ""),
        ("test-ens-predict-shapes", "test-ens-predict-members", "test-ens-return"),
        "Wrong shapes",
    ),
    Mistake(
        "ensemble-std-not-floored",
        NB3,
        "the ensemble planner's refitted std is not clamped from below",
        S("std = elite_actions.std(dim=0).clamp(min=std_floor)", "std = elite_actions.std(dim=0)"),
        ("test-ens-cem-elites-first-floor",),
        "std not floored",
    ),
    Mistake(
        "ensemble-mean-over-samples",
        NB3,
        "the ensemble planner averages the returns over the samples (dim=1) instead of the members",
        S("expected_returns = returns.mean(dim=0)", "expected_returns = returns.mean(dim=1)"),
        ("test-ens-cem-output", "test-ens-cem-mean-return", "test-ens-cem-elites-first-floor", "test-ens-cem-reference", "test-ens-return"),
        "returns averaged over the samples instead of the members",
    ),
    Mistake(
        "ensemble-modulelist",
        NB3,
        "the ensemble keeps its members in a network of its own (self.members, as a ModuleList or a vmap version would) instead of the given self.net",
        S("self.net", "self.members", count=2),
        ("test-ens-predict-members", "test-ens-loss", "test-ens-return"),
        "load their weights into the given `self.net`",
    ),
    # ---- 04: closing the loop ---------------------------------------------------------------------
    Mistake(
        "next-states-not-shifted",
        NB4,
        "add_episode pairs each state with itself: next_states from states[:-1] instead of states[1:]",
        S(
            '"next_states": np.concatenate([dataset["next_states"], episode.states[1:]])',
            '"next_states": np.concatenate([dataset["next_states"], episode.states[:-1]])',
        ),
        ("test-loop-add-episode", "test-loop-iterations", "test-loop-return"),
        "Each new next state equals its state",
    ),
    Mistake(
        "every-state-a-transition",
        NB4,
        "add_episode takes all T + 1 states as transitions (one too many)",
        S('"states": np.concatenate([dataset["states"], episode.states[:-1]])', '"states": np.concatenate([dataset["states"], episode.states])'),
        ("test-loop-add-episode", "test-loop-iterations", "test-loop-return"),
        "One transition too many",
    ),
    Mistake(
        "retrains-on-start-data",
        NB4,
        "the loop adds each episode to a copy and always retrains on the start data",
        S(
            "        dataset = add_episode(dataset, episode)\n    return dataset, returns",
            "        grown = add_episode(dataset if not returns[:-1] else grown, episode)\n    return grown, returns",
        ),
        ("test-loop-iterations", "test-loop-return"),
        "that is the start data again",
    ),
    Mistake(
        "add-episode-in-place",
        NB4,
        "add_episode writes the grown arrays into the caller's dataset and returns it",
        S(
            '    return {\n        "states": np.concatenate([dataset["states"], episode.states[:-1]]),\n'
            '        "actions": np.concatenate([dataset["actions"], episode.actions]),\n'
            '        "next_states": np.concatenate([dataset["next_states"], episode.states[1:]]),\n    }',
            '    for key, new in (("states", episode.states[:-1]), ("actions", episode.actions), ("next_states", episode.states[1:])):\n'
            "        dataset[key] = np.concatenate([dataset[key], new])\n    return dataset",
        ),
        ("test-loop-add-episode",),
        "add_episode changed the caller's dataset in place",
    ),
    Mistake(
        "loop-returns-swapped",
        NB4,
        "closing_the_loop returns (returns, dataset) instead of (dataset, returns)",
        S("    return dataset, returns", "    return returns, dataset"),
        ("test-loop-iterations", "test-loop-return"),
        "(returns, dataset) swapped",
    ),
)

ALTERNATIVES = (
    Alternative(
        "cem-loop-argsort",
        NB1,
        "CEM with a Python loop over the horizon, argsort for the elites and a hand-written std",
        {
            "cem-plan": """@torch.no_grad()
def cem_plan(
    predict_delta,
    state: torch.Tensor,
    horizon: int = CEM_SETTINGS["horizon"],
    n_samples: int = CEM_SETTINGS["n_samples"],
    n_elite: int = CEM_SETTINGS["n_elite"],
    n_iters: int = CEM_SETTINGS["n_iters"],
    std_floor: float = CEM_SETTINGS["std_floor"],
    reward_fn=compute_rewards,
) -> torch.Tensor:
    mu = [torch.zeros(ACTION_DIM) for _ in range(horizon)]
    sigma = [torch.ones(ACTION_DIM) for _ in range(horizon)]
    for iteration in range(n_iters):
        plans = torch.empty(n_samples, horizon, ACTION_DIM)
        noise = torch.randn(n_samples, horizon, ACTION_DIM)
        for t in range(horizon):
            plans[:, t] = torch.clamp(mu[t] + sigma[t] * noise[:, t], min=-3.0, max=3.0)
        s = state.repeat(n_samples, 1)
        total = torch.zeros(n_samples)
        for t in range(horizon):
            s = s + predict_delta(s, plans[:, t])
            total = total + reward_fn(s)
        order = torch.argsort(total, descending=True)
        best = plans[order[:n_elite]]
        for t in range(horizon):
            mu[t] = best[:, t].sum(dim=0) / n_elite
            var = ((best[:, t] - mu[t]) ** 2).sum(dim=0) / (n_elite - 1)
            sigma[t] = torch.maximum(var.sqrt(), torch.full_like(var, std_floor))
    return mu[0].clone()
""",
        },
    ),
    Alternative(
        "model-hstack-manual-mse",
        NB1,
        "the deterministic model with torch.hstack and a hand-written mean squared error",
        {
            "deterministic-model": """class DeterministicModel(nn.Module):
    def __init__(self, state_dim: int = STATE_DIM, action_dim: int = ACTION_DIM, hidden_size: int = HIDDEN_SIZE, n_hidden: int = N_HIDDEN):
        super().__init__()
        self.net = build_mlp(state_dim + action_dim, state_dim, hidden_size, n_hidden)

    def predict_delta(self, states, actions):
        inputs = torch.hstack((states, actions))
        return self.net(inputs)

    def loss(self, states, actions, next_states):
        error = self.predict_delta(states, actions) - (next_states - states)
        return error.pow(2).sum() / error.numel()
""",
        },
    ),
    Alternative(
        "wider-tanh-network",
        NB1,
        "a different network: three hidden layers of 64 tanh units, written out with nn.Sequential",
        {
            "deterministic-model": """class DeterministicModel(nn.Module):
    def __init__(self, state_dim: int = STATE_DIM, action_dim: int = ACTION_DIM, hidden_size: int = 64, n_hidden: int = 3):
        super().__init__()
        layers, width = [], state_dim + action_dim
        for _ in range(n_hidden):
            layers += [nn.Linear(width, hidden_size), nn.Tanh()]
            width = hidden_size
        layers.append(nn.Linear(width, state_dim))
        self.net = nn.Sequential(*layers)

    def predict_delta(self, states, actions):
        return self.net(torch.cat([states, actions], dim=-1))

    def loss(self, states, actions, next_states):
        return F.mse_loss(self.predict_delta(states, actions), next_states - states)
""",
        },
    ),
    Alternative(
        "nll-torch-distributions",
        NB2,
        "the loss from torch.distributions.Normal.log_prob, less its constant, and sampling by reparameterisation",
        {},
        substitutions=(
            S(
                "return ((target - mu) ** 2 / (2 * sigma**2) + torch.log(sigma)).mean()",
                "return -Normal(mu, sigma).log_prob(target).mean() - 0.5 * math.log(2 * math.pi)",
            ),
            S("return torch.distributions.Normal(mu, sigma).sample()", "return mu + sigma * torch.randn_like(mu)"),
            S("mu, log_sigma = torch.chunk(out, 2, dim=-1)", "half = out.shape[-1] // 2\n        mu, log_sigma = out[..., :half], out[..., half:]"),
        ),
    ),
    Alternative(
        "wider-deeper-ensemble",
        NB3,
        "ensemble members with three hidden layers of 32 units instead of the notebook's network",
        {},
        substitutions=(
            S("        hidden_size: int = HIDDEN_SIZE,\n        n_hidden: int = N_HIDDEN,\n", "        hidden_size: int = 32,\n        n_hidden: int = 3,\n"),
        ),
    ),
    Alternative(
        "loop-ensemble",
        NB3,
        "an ensemble written as loops over its members: per-member forward passes, losses, minibatches and returns",
        {
            "ensemble-model": '''class EnsembleModel(nn.Module):
    def __init__(self, n_members: int = N_MEMBERS, state_dim: int = STATE_DIM, action_dim: int = ACTION_DIM, hidden_size: int = HIDDEN_SIZE, n_hidden: int = N_HIDDEN):
        super().__init__()
        self.n_members = n_members
        self.net = build_ensemble_mlp(n_members, state_dim + action_dim, state_dim, hidden_size, n_hidden)

    def member_forward(self, k, x):
        """Member k alone, with its slice of every batched layer's weights."""
        for layer in self.net:
            if hasattr(layer, "weight"):
                x = x @ layer.weight[k] + layer.bias[k]
            else:
                x = layer(x)
        return x

    def predict_delta(self, states, actions):
        outputs = []
        for k in range(self.n_members):
            member_actions = actions if actions.dim() == 2 else actions[k]
            outputs.append(self.member_forward(k, torch.cat([states[k], member_actions], dim=-1)))
        return torch.stack(outputs)

    def loss(self, states, actions, next_states):
        total = 0.0
        for k in range(self.n_members):
            predicted = self.member_forward(k, torch.cat([states[k], actions[k]], dim=-1))
            total = total + F.mse_loss(predicted, next_states[k] - states[k])
        return total
''',
            "member-batches": """def sample_member_batches(buffer: ReplayBuffer, batch_size: int, n_members: int = N_MEMBERS):
    states, actions, next_states = [], [], []
    for _ in range(n_members):
        s, a, s_next = buffer.sample(batch_size)
        states.append(s)
        actions.append(a)
        next_states.append(s_next)
    return torch.stack(states), torch.stack(actions), torch.stack(next_states)
""",
        },
        substitutions=(S("expected_returns = returns.mean(dim=0)", "expected_returns = sum(returns[k] for k in range(n_members)) / n_members"),),
    ),
    Alternative(
        "loop-lists-and-torch",
        NB4,
        "add_episode through torch.cat and a copied dict; the loop keeps the episodes in a list and builds the data at each iteration",
        {
            "add-episode": """def add_episode(dataset, episode):
    new = dict(dataset)  # keep any other keys the dataset has
    states = torch.as_tensor(episode.states)
    new["states"] = torch.cat([torch.as_tensor(dataset["states"]), states[:-1]]).numpy()
    new["next_states"] = torch.cat([torch.as_tensor(dataset["next_states"]), states[1:]]).numpy()
    new["actions"] = np.vstack([dataset["actions"], episode.actions])
    return new
""",
            "loop": """def closing_the_loop(dataset, train_agent, run_agent, n_iterations):
    episodes = []
    data = dataset
    for iteration in range(n_iterations):
        data = dataset
        for earlier in episodes:
            data = add_episode(data, earlier)
        episodes.append(run_agent(train_agent(data)))
    return add_episode(data, episodes[-1]), [float(e.episode_return) for e in episodes]
""",
        },
    ),
)
