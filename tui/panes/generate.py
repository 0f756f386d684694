"""F3 — the Generate pane."""

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class GeneratePane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("Generation", id="gen-placeholder")

    def on_session(self, session) -> None:
        pass

    def commands(self):
        return []
