"""`python -m runner`: serve the checker's requests on standard input and output (inside the sandbox).

Messages (see `protocol`); each request gets exactly one final answer, after any number of
"callback" exchanges:

    {"op": "run_cell", "source": ...}     -> {"op": "cell", "outputs": [nbformat outputs], "error": null | {...}}
    {"op": "call", ...}                   -> {"op": "result", "value": ...} | {"op": "error", "ename", "evalue", "where"}
    {"op": "agent_start", ...}            -> {"op": "result", "value": null} | {"op": "error", ...}
    {"op": "act", "state": array}         -> {"op": "result", "value": ...} | {"op": "error", ...}
    {"op": "preload", "modules": [...]}  -> {"op": "result", "value": {"kind": "none"}}   (before any cell)
    {"op": "fork_server"}                 -> {"op": "result", "value": {"kind": "none"}, "isolated": bool}
                                             (then copies answer; see `forkserver`)
    {"op": "quit"}                        -> (exits)

Standard output is the channel: before any student code runs, file descriptor 1 is moved to a
private descriptor and 1 is pointed at standard error, so that a print or a C library writing to
1 cannot break a message.
"""

from __future__ import annotations

import os
import sys

from protocol.channel import Channel


def main() -> int:
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from .session import Session

    return Session(Channel(0, reply_fd)).serve()


if __name__ == "__main__":
    sys.exit(main())
