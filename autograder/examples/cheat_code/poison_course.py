import site


def append(path, text, mode="a"):
    with open(path, mode) as handle:
        handle.write(text)


helpers = os.path.join(CODE, "mbrl_helpers")
packages = site.getsitepackages()[0]
attempt(
    "make the reward zero for everyone",
    lambda: append(os.path.join(helpers, "reward.py"), "\ncompute_rewards = lambda states: states.new_zeros(states.shape[:-1])\n"),
)
attempt("change the helpers' package", lambda: append(os.path.join(helpers, "__init__.py"), "\nACTION_HIGH = 0.0\n"))
attempt("add a module to the helpers", lambda: append(os.path.join(helpers, "evil.py"), "print('poisoned')\n", "w"))
attempt("plant bytecode", lambda: os.makedirs(os.path.join(helpers, "__pycache__", "evil")))
attempt("corrupt the data", lambda: append(os.path.join(CODE, "data", "transitions.npz"), b"poisoned", "ab"))
attempt("replace the data", lambda: os.replace(os.path.join(CODE, "data", "manifest.json"), os.path.join(CODE, "data", "manifest.old")))
attempt("delete the reward", lambda: os.remove(os.path.join(helpers, "reward.py")))
attempt("make the reward writable", lambda: os.chmod(os.path.join(helpers, "reward.py"), 0o777))
attempt("change the checks", lambda: append(os.path.join(CODE, "autograder", "checks", "deterministic_cem.py"), "\nchecks.checks.clear()\n"))
attempt("plant a sitecustomize", lambda: append(os.path.join(packages, "sitecustomize.py"), "import os\n", "w"))
attempt("plant a .pth file", lambda: append(os.path.join(packages, "zz-evil.pth"), "import os\n", "w"))
attempt("change torch", lambda: append(os.path.join(packages, "torch", "__init__.py"), "\nallclose = lambda *a, **k: True\n"))
attempt("change the runner", lambda: append("/opt/mbrl-runner/runner/session.py", "\nMAX_TEXT = 0\n"))
attempt("change Python itself", lambda: append(os.path.join(os.path.dirname(os.__file__), "os.py"), "\n"))
# in this process only: the next student's grading starts in a new one
import mbrl_helpers.reward

mbrl_helpers.compute_rewards = mbrl_helpers.reward.compute_rewards = lambda states: states.new_zeros(states.shape[:-1])
print("the reward is zero here")
