"""The shell's side of the lesson (tui.panes.lesson): F12 / `--lesson` opens it, each step's
pane is shown with the step's example put in it, and a check reads what the panes show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import TextArea

from core.base.errors import UserError
from core.lesson.checks import LessonState
from tui.panes.lesson.panel import LessonPanel

if TYPE_CHECKING:
    from core.lesson.steps import LessonStep
    from tui.shell.app import RuGPTApp


class LessonGuide:
    """Created with the app, which holds the panes and the lesson panel."""

    def __init__(self, app: RuGPTApp) -> None:
        self.app = app

    def _panel(self) -> LessonPanel:
        return self.app.screen_stack[0].query_one(LessonPanel)

    def toggle(self) -> None:
        """F12: open the lesson at the step left last; again, close it (from its field) or
        go back to it (from a pane)."""
        panel = self._panel()
        if not panel.display:
            panel.open()
        elif panel.query_one("#lesson-answer").has_focus:
            panel.close()
            self.app.show_tab(self.app.active_tab())
        else:
            panel.query_one("#lesson-answer").focus()

    def open(self) -> None:
        """`--lesson`: open it (never a toggle: F12 pressed meanwhile may have opened it)."""
        panel = self._panel()
        if not panel.display:
            panel.open()

    def model_changed(self) -> None:
        """A model loaded: the open step's numbers come from it."""
        panel = self._panel()
        if panel.display:
            panel.refresh_texts()

    def step_shown(self, step: LessonStep) -> None:
        app = self.app
        app.show_tab(step.pane)
        if step.example is not None and step.pane == "tokenize":
            app.tokenize_pane.query_one("#tok-input", TextArea).load_text(step.example)
        elif step.example is not None and step.pane == "generate":
            app.generate_pane.restore({}, prompt=step.example)
        elif step.example is not None and step.pane == "inside":
            app.inside_pane.query_one("#inside-prompt", TextArea).load_text(step.example)
        app.screen_stack[0].query_one("#lesson-answer").focus()   # the step's answer, at once

    def state(self) -> LessonState:
        """What the panes show now, for a check (read here, on the app's thread)."""
        app = self.app
        state = LessonState()
        try:
            state.generate_prompt, state.sampling = app.generate_pane.request()
        except UserError as exc:
            state.sampling_error = str(exc)
        try:
            state.train_config = app.train_pane.form.read_config()
        except UserError as exc:
            state.train_error = str(exc)
        run = app.train_pane.run
        state.evals = list(run.evals) if run is not None else []
        return state
