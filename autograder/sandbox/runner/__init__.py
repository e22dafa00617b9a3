"""The untrusted side of grading: a process that runs one student's notebook code in the sandbox.

Nothing in this package knows an expected value. It is copied into the sandbox on its own (it
imports nothing else from `autograder`), started as `python -m runner`, and answers the
checker's requests over its standard input and output (see `protocol`): run a cell, call a
student function on these arrays, play one step of an episode. Everything it says back is plain
data that the checker validates; what it computes decides nothing by itself.
"""
