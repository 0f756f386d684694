"""Starting the app for real, and what it does when its terminal goes away.

SIGHUP (an SSH drop, a closed terminal window), or a terminal that fails with EIO without
one (`tui.process.terminal`): nothing is written to the dead terminal again; a run goes on
detached to its end — or stops and saves, by the `on_hangup` setting — and is recorded in
the workspace as usual; the app quits and the process waits for the run, then exits. A
browser tab that closes (`serve`, `tui.process.browser`) is the same. SIGTERM: a run stops
after its current step and saves; then the app exits."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, NoReturn

from tui.process.shutdown import end_process
from tui.shell.app import RuGPTApp

if TYPE_CHECKING:
    from textual.driver import Driver

    from tui.process.early_frame import EarlyFrame


def driver_class(app: RuGPTApp) -> type[Driver]:
    """The driver for where the app runs: a browser tab (served), a terminal, or whatever
    else `TEXTUAL_DRIVER` names (Textual's own choice, already the app's)."""
    from tui.process.browser import ServedDriver, served_by_browser

    if served_by_browser():
        return ServedDriver
    if os.environ.get("TEXTUAL_DRIVER"):
        return app.driver_class
    from tui.process.terminal import HangupAwareDriver

    return HangupAwareDriver


def run_app(model: str | None = None, device: str | None = None, dtype: str | None = None,
            trust_remote_code: bool = False, lesson: bool = False,
            early_frame: EarlyFrame | None = None) -> NoReturn:
    app = RuGPTApp(model=model, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                   lesson=lesson, early_frame=early_frame)
    app.driver_class = driver_class(app)
    signal.signal(signal.SIGHUP, lambda *_: app.detach_from_terminal())
    signal.signal(signal.SIGTERM, lambda *_: app.terminate())
    app.run()
    if app.detached is not None:   # the terminal is gone: the run finishes, then we exit
        app.detached.finished.wait()
    if early_frame is not None:
        early_frame.release()   # a no-op once the driver had the terminal
    # whatever a worker is still doing (a read that never ends), the process ends now
    end_process(app.return_code or 0, app.thread_workers)
