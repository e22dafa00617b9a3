"""The course's reference implementations: the answers to the graded exercises.

The solution notebooks' code is tested against this package, and the autograder's expected values
are generated from it. The release notebooks and the grading kernel need only `mbrl_helpers`.
"""

from mbrl_reference.models import DeterministicModel, EnsembleModel, StochasticModel, sample_member_batches
from mbrl_reference.planners import cem_plan, ensemble_cem_plan

__all__ = ["DeterministicModel", "StochasticModel", "EnsembleModel", "sample_member_batches", "cem_plan", "ensemble_cem_plan"]
