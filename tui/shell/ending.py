"""How the app ends: ctrl+q (asking first while a run trains), a terminal that hangs up (a
run goes on detached), SIGTERM, and an error the guard cannot survive (one line, never a
traceback; a run still goes on). The process itself ends in tui.process.shutdown."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text

from core.base.errors import one_line
from core.base.hangup import silence_terminal
from core.store.workspace import error_log_path, log_error
from tui.process import guard
from tui.widgets.dialogs import QuitWhileTrainingScreen

if TYPE_CHECKING:
    from tui.panes.train.run import TrainRun
    from tui.shell.app import RuGPTApp


class Ending:
    """Created with the app. Its signal-handler entries (`detach_from_terminal`,
    `terminate`) may be called from any thread."""

    def __init__(self, app: RuGPTApp) -> None:
        self.app = app
        self.detached: TrainRun | None = None   # a run going on after the terminal hung up
        self._detach_once = threading.Lock()

    def quit(self) -> None:
        app = self.app
        if not app.training():
            app.exit()
            return
        if any(isinstance(screen, QuitWhileTrainingScreen) for screen in app.screen_stack):
            return   # already asked

        def chosen(choice: str | None) -> None:
            if choice in (None, "cancel"):
                return
            app.train_pane.stop(save=choice == "save")
            self.exit_when_stopped()

        app.push_screen(QuitWhileTrainingScreen(), chosen)

    def exit_when_stopped(self) -> None:
        """The run stops after its current step (and saves, if asked); then the app exits."""
        if self.app.training():
            self.app.set_timer(0.05, self.exit_when_stopped)
        else:
            self.app.exit()

    def detach_from_terminal(self) -> None:
        """The terminal is gone (SIGHUP, or it fails with EIO). Nothing is written to
        it again; a run goes on detached to its end — or stops and saves, by the `on_hangup`
        setting — recorded as usual; the app quits and its process waits for the run.
        Only the first call acts."""
        if not self._detach_once.acquire(blocking=False):   # never blocks a signal handler
            return
        silence_terminal()
        app = self.app
        run = app.training_run()
        if run is not None and run.running:
            self.detached = run
            if app.saved.on_hangup == "stop":
                run.control.save_on_stop = run.config.out is not None
                run.control.stop.set()
        self.call_in_loop(app.exit)

    def terminate(self) -> None:
        """SIGTERM (and, in a browser tab, the server stopping): a run stops after its
        current step and saves; then the app exits."""
        app = self.app

        def stop() -> None:
            if app.training():
                app.train_pane.stop(save=True)
                self.exit_when_stopped()
            else:
                app.exit()
        self.call_in_loop(stop)

    def call_in_loop(self, callback: Callable[[], object]) -> None:
        """Run `callback` on the app's event loop (signal handlers interrupt it anywhere)."""
        if self.app.event_loop is None:
            raise SystemExit(0)   # not even started: nothing to keep
        self.app.event_loop.call_soon_threadsafe(callback)

    def fatal(self, error: Exception) -> bool:
        """An error that escaped to Textual's last resort: survived where the guard can
        (one line on screen, True). Otherwise the app ends with one line, never a traceback
        — and a run in progress goes on to its end detached, as after a hangup (False in
        the test suite's strict mode: Textual's own handling then shows it)."""
        app = self.app
        if app.guard.catches(error):
            return True
        if guard.ErrorGuard.strict:
            return False
        log_error(guard.report(error, "the app ended"))
        run = app.training_run()
        if run is not None and run.running and self.detached is None:
            self.detached = run
        app.exit(return_code=1, message=Text(
            f"rugpt-tui: internal error: {one_line(error)} (the traceback is in {error_log_path()})"))
        return True
