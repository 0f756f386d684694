"""How the app ends: ctrl+q (asking first while a run trains), a terminal that hangs up (a
run goes on detached), and an error the guard cannot survive (one line, never a traceback;
a run still goes on). The process itself ends in tui.process.shutdown."""

from __future__ import annotations

from rich.text import Text

from core.base.errors import one_line
from core.base.hangup import silence_terminal
from core.store.workspace import error_log_path, log_error
from tui.process import guard
from tui.widgets.dialogs import QuitWhileTrainingScreen


class Ending:
    """Mixed into the app (tui.shell.app.RuGPTApp), before Textual's App."""

    async def action_quit(self) -> None:
        if not self.training():
            self.exit()
            return
        if any(isinstance(screen, QuitWhileTrainingScreen) for screen in self.screen_stack):
            return   # already asked

        def chosen(choice: str | None) -> None:
            if choice in (None, "cancel"):
                return
            self.train_pane.stop(save=choice == "save")
            self.exit_when_stopped()

        self.push_screen(QuitWhileTrainingScreen(), chosen)

    def exit_when_stopped(self) -> None:
        """The run stops after its current step (and saves, if asked); then the app exits."""
        if self.training():
            self.set_timer(0.05, self.exit_when_stopped)
        else:
            self.exit()

    def detach_from_terminal(self) -> None:
        """The terminal is gone (SIGHUP, or it fails with EIO). Nothing is written to
        it again; a run goes on detached to its end — or stops and saves, by the `on_hangup`
        setting — recorded as usual; the app quits and its process waits for the run.
        Called from a signal handler or the terminal driver's threads; only the first call acts."""
        if not self._detach_once.acquire(blocking=False):   # never blocks a signal handler
            return
        silence_terminal()
        run = self.training_run()
        if run is not None and run.running:
            self.detached = run
            if self.saved.on_hangup == "stop":
                run.control.save_on_stop = run.config.out is not None
                run.control.stop.set()
        self.call_in_loop(self.exit)

    def terminate(self) -> None:
        """SIGTERM (and, in a browser tab, the server stopping): a run stops after its
        current step and saves; then the app exits. Safe to call from a signal handler."""
        def stop() -> None:
            if self.training():
                self.train_pane.stop(save=True)
                self.exit_when_stopped()
            else:
                self.exit()
        self.call_in_loop(stop)

    def call_in_loop(self, callback) -> None:
        """Run `callback` on the app's event loop (signal handlers interrupt it anywhere)."""
        if self.event_loop is None:
            raise SystemExit(0)   # not even started: nothing to keep
        self.event_loop.call_soon_threadsafe(callback)

    def exit(self, *args, **kwargs) -> None:
        self.workspace.collect_changes()   # while the panes are still there
        super().exit(*args, **kwargs)

    def _handle_exception(self, error: Exception) -> None:
        """Textual's last resort, which ends the app (a private hook: Textual has no public
        one for an error that escapes a worker or a render; tests/test_private_names.py). The
        guard survives what it can (one line on screen); what it cannot ends the app with one
        line, never a traceback — and a run in progress goes on to its end detached, as after
        a hangup."""
        if self.guard.catches(error):
            return
        if guard.ErrorGuard.strict:
            super()._handle_exception(error)
            return
        log_error(guard.report(error, "the app ended"))
        run = self.training_run()
        if run is not None and run.running and self.detached is None:
            self.detached = run
        self.exit(return_code=1, message=Text(
            f"rugpt-tui: internal error: {one_line(error)} (the traceback is in {error_log_path()})"))
