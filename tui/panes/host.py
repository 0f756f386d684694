"""What a pane may ask of the app it lives in, declared once: the panes (and the lesson panel)
reach the app only through `host(self)`, typed by this protocol. `tui.shell.app.RuGPTApp` is
the one the product runs (the type checker holds it to this protocol); a test can mount a
pane in a small app of its own that provides the same (tests/test_pane_host.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from textual.widget import Widget

    from core.lesson.checks import LessonState
    from core.model.session import ModelSession
    from core.store.database import Store
    from tui.panes.train.run import TrainRun


class PaneHost(Protocol):
    @property
    def session(self) -> ModelSession | None:
        """The loaded model, None until one has loaded."""

    @property
    def store(self) -> Store | None:
        """The workspace database, None when it cannot be used (history and runs are off)."""

    @property
    def detached(self) -> TrainRun | None:
        """The run going on after the terminal hung up (it outlives the app's quitting)."""

    def load_model(self, name: str, trained: str | None = None) -> None:
        """Load a model in the background (with a run's saved weights on top): the panes
        hear of it by `SessionChanged`."""

    def training(self) -> bool:
        """Whether a run trains on the model now."""

    def show_tab(self, tab: str) -> None:
        """Bring a pane's tab to the front, the focus in it."""

    def schedule_save(self) -> None:
        """Settings on screen changed: write them soon."""

    def lesson_state(self) -> LessonState:
        """What the panes show now, for a lesson step's check."""


def host(widget: Widget) -> PaneHost:
    """The app `widget` is mounted in, as a pane sees it."""
    return cast("PaneHost", widget.app)
