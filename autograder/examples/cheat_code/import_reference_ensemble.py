sys.path[:0] = [CODE, COURSE]


def take_the_reference():
    global EnsembleModel, sample_member_batches, ensemble_cem_plan
    from mbrl_reference.models import EnsembleModel, sample_member_batches
    from mbrl_reference.planners import ensemble_cem_plan


def exec_the_reference_files():
    for name in ("models.py", "planners.py"):
        exec(open(os.path.join(CODE, "mbrl_reference", name)).read(), globals())


attempt("import mbrl_reference", take_the_reference)
attempt("exec mbrl_reference's files", exec_the_reference_files)
