"""F4 — the Train pane."""

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class TrainPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("Training", id="train-placeholder")

    def on_session(self, session) -> None:
        pass

    def commands(self):
        return []
