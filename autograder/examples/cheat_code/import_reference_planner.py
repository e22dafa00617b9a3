def take_the_reference_planner():
    global cem_plan
    from mbrl_reference.planners import cem_plan


def take_it_through_pip():
    import importlib.metadata

    files = importlib.metadata.files("mbrl-course") or []
    planners = [f for f in files if str(f).endswith("mbrl_reference/planners.py")]
    exec(planners[0].read_text(), globals())


attempt("import mbrl_reference.planners", take_the_reference_planner)
attempt("read the reference through the installed package's files", take_it_through_pip)
