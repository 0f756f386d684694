"""Starting the app for real, and what it does when its terminal goes away.

SIGHUP (an SSH drop, a closed terminal window), or a terminal that fails with EIO without
one (`tui.process.terminal`): nothing is written to the dead terminal again; a run goes on
detached to its end — or stops and saves, by the `on_hangup` setting — and is recorded in
the workspace as usual; the app quits and the process waits for the run, then exits. SIGTERM: a run stops after its current step and saves; then the app exits."""

from __future__ import annotations

import signal
import sys

from tui.process.shutdown import end_process
from tui.shell.app import RuGPTApp


def terminate(app: RuGPTApp) -> None:
    def stop() -> None:
        if app.train_pane.training:
            app.train_pane.stop(save=True)
            app.exit_when_stopped()
        else:
            app.exit()
    app.call_in_loop(stop)


def run_app(model: str | None = None, device: str | None = None, dtype: str | None = None,
            trust_remote_code: bool = False) -> int:
    app = RuGPTApp(model=model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    if sys.platform != "win32":
        from tui.process.terminal import HangupAwareDriver
        app.driver_class = HangupAwareDriver
    signal.signal(signal.SIGHUP, lambda *_: app.detach_from_terminal())
    signal.signal(signal.SIGTERM, lambda *_: terminate(app))
    app.run()
    if app.detached is not None:   # the terminal is gone: the run finishes, then we exit
        app.detached.finished.wait()
    # whatever a worker is still doing (a read that never ends), the process ends now
    return end_process(app.return_code or 0, app.thread_workers)
