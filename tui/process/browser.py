"""The app served to a browser tab (`rugpt-tui serve`, through textual-serve).

textual-serve starts one app process per tab and talks to it over pipes with Textual's web
driver. Two things end a tab's app: the server asks it to quit (the tab was closed or
reloaded), or its input simply ends (the server itself is gone). Both are what a hangup is
in a terminal, and are handled the same way: a run in progress goes on to its end
detached — or stops and saves, by the `on_hangup` setting — and is recorded as usual; with
no run, the process ends at once."""

from __future__ import annotations

import asyncio
import os
import signal

from textual.drivers.web_driver import WebDriver

WEB_DRIVER = "textual.drivers.web_driver:WebDriver"


def served_by_browser() -> bool:
    """Whether this process was started by textual-serve for a browser tab."""
    return os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER


class ServedDriver(WebDriver):
    """Textual's web driver, with the tab's end taken as a hangup (the app's
    `detach_from_terminal()`) instead of an immediate exit that would drop a run."""

    def __init__(self, app, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.served_app = app   # its detach_from_terminal() is this driver's hangup

    def start_application_mode(self) -> None:
        super().start_application_mode()
        # Textual's web driver makes SIGINT/SIGTERM an immediate exit, which would drop a
        # run unsaved: here they are what SIGTERM is to the app in a terminal (save, stop).
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.served_app.terminate)

    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "quit":   # the tab is gone
            self.served_app.detach_from_terminal()
            return
        super().on_meta(packet_type, payload)

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():   # input ended while the app runs: the server is gone
            self.served_app.detach_from_terminal()
