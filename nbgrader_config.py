# nbgrader reads this file from the folder it runs in: plain `nbgrader ...` commands work from the
# course's root folder. The configuration itself lives in autograder/nbgrader_glue/nbgrader_config.py.
import os

load_subconfig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "autograder", "nbgrader_glue", "nbgrader_config.py"))  # noqa: F821
