"""When the terminal goes away (an SSH drop, a closed window: SIGHUP), a training run must
not die with it. The process stops writing to the terminal — every later write goes to
/dev/null, so nothing fails with EIO or SIGPIPE — and the run goes on to its end, recorded
in the workspace as before."""

from __future__ import annotations

import os


def silence_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null (safe to call from a signal handler)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)

