"""The shell's side of the lesson (tui.panes.lesson): F12 / `--lesson` opens it, each step's
pane is shown with the step's example put in it, and a check reads what the panes show.
Mixed into the app, which holds the panes and the lesson panel."""

from __future__ import annotations

from textual.widgets import TextArea

from core.base.errors import UserError
from core.lesson.checks import LessonState
from tui.panes.lesson.panel import LessonPanel, LessonStepShown


class LessonGuide:
    def action_lesson(self) -> None:
        """F12: open the lesson at the step left last; again, close it (from its field) or
        go back to it (from a pane)."""
        panel = self.screen_stack[0].query_one(LessonPanel)
        if not panel.display:
            panel.open()
        elif panel.query_one("#lesson-answer").has_focus:
            panel.close()
            self.action_show_tab(self._active_tab())
        else:
            panel.query_one("#lesson-answer").focus()

    def open_lesson(self) -> None:
        """`--lesson`: open it (never a toggle: F12 pressed meanwhile may have opened it)."""
        panel = self.screen_stack[0].query_one(LessonPanel)
        if not panel.display:
            panel.open()

    def lesson_model_changed(self) -> None:
        """A model loaded: the open step's numbers come from it."""
        panel = self.screen_stack[0].query_one(LessonPanel)
        if panel.display:
            panel.refresh_texts()

    def on_lesson_step_shown(self, message: LessonStepShown) -> None:
        step = message.step
        self.action_show_tab(step.pane)
        if step.example is not None and step.pane == "tokenize":
            self.tokenize_pane.query_one("#tok-input", TextArea).load_text(step.example)
        elif step.example is not None and step.pane == "generate":
            self.generate_pane.restore({}, prompt=step.example)
        self.screen_stack[0].query_one("#lesson-answer").focus()   # the step's answer, at once

    def lesson_state(self) -> LessonState:
        """What the panes show now, for a check (read here, on the app's thread)."""
        state = LessonState()
        try:
            state.generate_prompt, state.sampling = self.generate_pane.request()
        except UserError as exc:
            state.sampling_error = str(exc)
        try:
            state.train_config = self.train_pane.form.read_config()
        except UserError as exc:
            state.train_error = str(exc)
        run = self.train_pane.run
        state.evals = list(run.evals) if run is not None else []
        return state
