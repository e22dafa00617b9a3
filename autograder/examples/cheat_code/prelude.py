# try something the grader must not allow, and say only whether it worked
import os
import sys

import mbrl_helpers

CODE = os.path.dirname(os.path.dirname(os.path.abspath(mbrl_helpers.__file__)))  # where the course's code lives
COURSE = "{COURSE}"  # the course folder that grading uses: gradebook, submissions, solutions


def attempt(label, action):
    try:
        action()
    except BaseException as error:  # whatever stopped it
        print(f"CHEAT-BLOCKED {label}: {type(error).__name__}")
        return False
    print(f"CHEAT-WORKED {label}")
    return True


def must_find(paths):
    """The paths found, or FileNotFoundError (so that `attempt` reports a search that found nothing)."""
    found = [path for path in paths if os.path.exists(path)]
    if not found:
        raise FileNotFoundError("nothing found")
    return found
