"""When the terminal goes away (an SSH drop, a closed window: SIGHUP), a training run must
not die with it. The process stops writing to the terminal — every later write goes to
/dev/null, so nothing fails with EIO or SIGPIPE — and the run goes on to its end, recorded
in the workspace as before. A terminal can also die without SIGHUP (blocked or ignored by
whatever started us): `TerminalWatch` notices that too."""

from __future__ import annotations

import errno
import os
import termios
import threading
from collections.abc import Callable


def silence_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null (safe to call from a signal handler)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)



DEAD_TERMINAL = (errno.EIO, errno.ENXIO, errno.EBADF)


def terminal_fd() -> int | None:
    """The first of stdin, stdout, stderr that is a terminal, if any (and one can be watched)."""
    return next((fd for fd in (0, 1, 2) if os.isatty(fd)), None)


class TerminalWatch:
    """Calls `on_dead` once when the terminal on `fd` stops answering — `tcgetattr` fails with
    EIO, as it does once the other side is closed, whether or not SIGHUP came. Checked every
    `every_s` on a daemon thread; `stop()` ends it."""

    def __init__(self, fd: int, on_dead: Callable[[], None], every_s: float = 0.25) -> None:
        self.fd, self.on_dead, self.every_s = fd, on_dead, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="terminal-watch", daemon=True)

    def start(self) -> TerminalWatch:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                termios.tcgetattr(self.fd)
            except termios.error as error:
                if error.args and error.args[0] in DEAD_TERMINAL:
                    self.on_dead()
                    return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
