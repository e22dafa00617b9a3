"""The untrusted side of grading: where student code runs.

- `bubblewrap`: the sandbox's command line, in one place, and the runner process with its caps.
- `runner/`: `python -m runner` inside the sandbox: runs the student's cells and answers the
  checker's calls. It never sees `mbrl_reference`, the fixtures, the checks or the gradebook, and
  holds no expected values. After the notebook's cells it becomes a fork server
  (`runner/forkserver.py`): each check is answered by a copy of that moment.
"""
