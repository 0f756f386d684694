"""A terminal driver that takes a dead terminal for a hangup, however it shows.

A closed SSH connection usually sends SIGHUP. When it does not (SIGHUP ignored or blocked
by whatever started us), the terminal still dies: reads fail with EIO or return nothing,
writes fail with EIO. Textual's own driver would then panic in its input thread, or lose
its writer thread and block the app on a full output queue — and a training run would die
with it or never let the process exit. This driver notices all three signs and calls the
app's `detach_from_terminal()` once, as the SIGHUP handler does; after that its output goes
nowhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

from core.base.hangup import TerminalWatch


class GuardedOutput:
    """The terminal's output file; the first failed write means the terminal is gone."""

    def __init__(self, file: IO[str], on_lost: Callable[[], None]) -> None:
        self._file, self._on_lost, self.lost = file, on_lost, False

    def write(self, text: str) -> None:
        if not self.lost:
            self._guard(self._file.write, text)

    def flush(self) -> None:
        if not self.lost:
            self._guard(self._file.flush)

    def _guard(self, call, *args) -> None:
        try:
            call(*args)
        except OSError:
            self.lost = True
            self._on_lost()

    def fileno(self) -> int:
        return self._file.fileno()


class HangupAwareDriver(LinuxDriver):
    """`LinuxDriver` plus: a failed write, a failed read, or a terminal that stops answering
    (checked four times a second, so an idle app notices too) detaches the app."""

    def __init__(self, app: Any, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self._file = GuardedOutput(self._file, self._terminal_lost)
        self._watch: TerminalWatch | None = None

    def _terminal_lost(self) -> None:
        self._file.lost = True   # nothing more is written to it
        self._app.detach_from_terminal()   # acts once, however many signs come

    def start_application_mode(self) -> None:
        super().start_application_mode()
        if self.input_tty:
            self._watch = TerminalWatch(self.fileno, self._terminal_lost).start()

    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        except OSError:   # reading a hung-up terminal
            self._terminal_lost()

    def stop_application_mode(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        super().stop_application_mode()
