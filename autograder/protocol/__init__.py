"""What the checker (trusted) and the runner (untrusted) say to each other, shared by both sides.

Standard library and NumPy only: the sandbox imports this package as it is (as the top-level
package `protocol`), so it never imports anything else from `autograder`.

- `channel`: one JSON message a line, arrays as base64 bytes with their dtype and shape, every
  message validated (size, shape, dtype, depth) before use; never a pickle.
"""
