"""A terminal driver that takes a dead terminal for a hangup, however it shows.

A closed SSH connection usually sends SIGHUP. When it does not (SIGHUP ignored or blocked
by whatever started us), the terminal still dies: reads fail with EIO or return nothing,
writes fail with EIO. Textual's own driver would then panic in its input thread, or lose
its writer thread and block the app on a full output queue — and a training run would die
with it or never let the process exit. This driver notices all three signs and calls the
app's `detach_from_terminal()` once, as the SIGHUP handler does; after that its output goes
nowhere.

It also takes the terminal over from `tui.process.early_frame`: the frame drawn there stays
(the alternate screen is not entered twice, which would clear it), the settings restored at
the end are the ones the command found, and it keeps the text of the app's first frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

from core.base.hangup import TerminalWatch
from tui.process.early_frame import ALTERNATE_SCREEN


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
        self.watched_app = app   # its detach_from_terminal() is this driver's hangup
        # LinuxDriver's output file is private (`_file`): its writer thread writes there, and
        # only there does a dead terminal's EIO show (tests/test_private_names.py).
        self._file = GuardedOutput(self._file, self._terminal_lost)
        self._watch: TerminalWatch | None = None
        self._early = getattr(app, "early_frame", None)   # tui.process.early_frame's, if any
        self._largest_write: str | None = ""   # the app keeps its first frame (tui.shell.startup)

    def write(self, data: str) -> None:
        if data == ALTERNATE_SCREEN and self._early is not None and self._early.drawn:
            return   # on the alternate screen already, with the early frame on it
        if self._largest_write is not None and len(data) > len(self._largest_write):
            self._largest_write = data
        super().write(data)

    def largest_write(self) -> str | None:
        """The largest text written so far (a full frame is larger than anything else
        written before it), until `stop_recording()`."""
        return self._largest_write or None

    def stop_recording(self) -> None:
        self._largest_write = None

    def _terminal_lost(self) -> None:
        self._file.lost = True   # nothing more is written to it
        self.watched_app.detach_from_terminal()   # acts once, however many signs come

    def start_application_mode(self) -> None:
        super().start_application_mode()
        if self._early is not None and not self._early.handed_over:
            # LinuxDriver restores `attrs_before` at the end (an undocumented attribute,
            # tests/test_private_names.py): the settings found, not the early frame's raw mode
            self.attrs_before = self._early.original
            self._early.handed_over = True
        self._early = None   # the terminal is this driver's now
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
