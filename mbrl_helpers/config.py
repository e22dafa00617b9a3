"""The course's settings: one place for the numbers the notebooks, benchmarks and autograder share.

Chosen by measurement (benchmarks/returns.py, benchmarks/planning_speed.py); see README.md.
"""

# Dynamics networks: [state, action] -> HIDDEN_SIZE -> ... -> output, ReLU between.
HIDDEN_SIZE = 16
N_HIDDEN = 2
N_MEMBERS = 5  # ensemble size K

# Training: Adam on minibatches drawn with replacement from the offline buffer.
TRAIN_STEPS = 3000
BATCH_SIZE = 256
LEARNING_RATE = 1e-3

# CEM as model-predictive control, replanning from scratch at every 0.1 s step.
CEM_SETTINGS = dict(
    horizon=5,  # 0.5 s of look-ahead; longer horizons let the planner exploit model error
    n_samples=200,  # action sequences per iteration
    n_elite=20,  # sequences kept to refit the sampling distribution
    n_iters=5,  # refits per decision
    std_floor=0.5,  # lower bound on the sampling std, keeps exploring
)
