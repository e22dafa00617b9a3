sys.path[:0] = [CODE, COURSE]


def take_the_reference_model():
    global DeterministicModel
    from mbrl_reference.models import DeterministicModel


def load_the_reference_file():
    import importlib.util

    spec = importlib.util.spec_from_file_location("stolen_models", os.path.join(CODE, "mbrl_reference", "models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    globals()["DeterministicModel"] = module.DeterministicModel


attempt("import mbrl_reference", take_the_reference_model)
attempt("load mbrl_reference/models.py by path", load_the_reference_file)
attempt("import the checks", lambda: __import__("autograder.checker.checks.deterministic_cem"))
