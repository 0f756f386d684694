"""Nothing that goes wrong inside the app ends it.

Textual ends an app at the first exception a handler, a timer, a worker or a render raises —
and a widget whose handler raised stops reading its messages for good. In this app a chart
that cannot draw, or a dialog that trips over another, would so end a training run. The
guard catches what escapes any handler, shows it as one line (a notification, and the
traceback in the workspace's error log), and the app goes on; a run in progress never
notices.

Tests turn `ErrorGuard.strict` on, so an error fails the test that met it instead of
being shown and survived.
"""

from __future__ import annotations

import time
import traceback
from datetime import datetime
from typing import TYPE_CHECKING

from textual.message_pump import MessagePump
from textual.worker import WorkerFailed

from core.base.errors import one_line
from core.store.workspace import log_error

if TYPE_CHECKING:
    from textual.app import App

SAME_ERROR_QUIET_S = 10.0   # the same line is notified again only after this long
KEEP = 100                  # lines remembered in `caught`


class ErrorGuard:
    strict = False   # tests: errors are not caught, so the test that meets one fails

    def __init__(self, app: App) -> None:
        self.app = app
        self.armed = False              # once the app is up; before that an error is fatal
        self.caught: list[str] = []     # what was survived, one line each (newest last)
        self._notified: dict[str, float] = {}

    def catches(self, error: BaseException) -> bool:
        """Report `error` and let the app go on (True), or leave it to end the app."""
        if self.strict or not self.armed or not isinstance(error, Exception):
            return False
        if isinstance(error, WorkerFailed):
            error = error.error
        line = one_line(error)
        self.caught = [*self.caught[-(KEEP - 1):], line]
        log_error(report(error, "caught; the app went on"))
        if self.app.return_code is not None:
            return True   # exiting: nothing left to tell
        now = time.monotonic()
        if now - self._notified.get(line, -SAME_ERROR_QUIET_S) >= SAME_ERROR_QUIET_S:
            self._notified[line] = now
            self.app.notify(f"{line} — the app goes on; details in the error log",
                            title="Something went wrong", severity="error", timeout=8)
        return True


def report(error: BaseException, outcome: str) -> str:
    """An error's entry in the error log: when, what became of it, its traceback."""
    stamp = datetime.now().isoformat(timespec="seconds")
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"--- {stamp} · {outcome}\n{trace}"


def install() -> None:
    """Route every exception a message handler raises through the app's guard, once per
    process. Textual would stop the widget's message loop and end the app; with the guard
    armed the message is dropped, the error shown, and the widget goes on with the next.

    `MessagePump._dispatch_message` is private: Textual has no public hook around a handler
    (`App._handle_exception` comes after the widget's loop has already stopped for good:
    textual/message_pump.py, `_process_messages_loop`). tests/test_private_names.py fails
    when it is gone."""
    dispatch = MessagePump._dispatch_message
    if getattr(dispatch, "guarded", False):
        return

    async def guarded_dispatch(self: MessagePump, message) -> None:
        try:
            await dispatch(self, message)
        except Exception as error:
            try:
                guard = getattr(self.app, "guard", None)   # only the rugpt-tui app has one
            except RuntimeError:   # no app (NoActiveAppError): nothing to keep alive
                raise error from None
            if not isinstance(guard, ErrorGuard) or not guard.catches(error):
                raise

    guarded_dispatch.guarded = True
    MessagePump._dispatch_message = guarded_dispatch
