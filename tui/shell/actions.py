"""What the app's keys do to the panes: switching tabs, generating, training, before/after,
the token view's toggles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from textual.widgets import TabbedContent

from core.base.errors import UserError
from tui.widgets.dialogs import compare_in_background
from tui.widgets.messages import WeightsChanged

if TYPE_CHECKING:
    from tui.shell.app import RuGPTApp

# where the cursor goes in each pane's tab
PANE_FOCUS = {"tokenize": "#tok-input", "generate": "#gen-prompt", "train": "#train-data",
              "chat": "#chat-input", "inside": "#inside-grid"}


class PaneKeys:
    """Created with the app, which holds the panes and binds the keys to these."""

    def __init__(self, app: RuGPTApp) -> None:
        self.app = app

    def after_typing(self, action: Callable[[], object]) -> None:
        """Run `action` once the focused field has taken the keys that came before it. An app
        key with priority is handled as it arrives, ahead of the characters still queued for
        the field (over a slow link the typing and F8 arrive in one read): F8 would read the
        old value. `call_later` queues it behind them, in that field's own queue."""
        target = self.app.focused or self.app.screen
        if not target.call_later(action):   # the field is going away: nothing is queued
            action()

    def show_tab(self, tab: str) -> None:
        main = self.app.screen_stack[0]   # the tabs' screen, also under a window (help, a dialog)
        main.query_one("#tabs", TabbedContent).active = tab
        # Focus left inside the hidden pane would pull its tab back to the front.
        focused = main.focused
        if focused is None or not any(a.id == tab for a in focused.ancestors_with_self):
            # at once, not after the keys already queued: they are meant for the new pane
            main.set_focus(main.query_one(PANE_FOCUS[tab]))

    def active_tab(self) -> str:
        return self.app.query_one("#tabs", TabbedContent).active

    def generate(self) -> None:
        self.show_tab("generate")
        self.app.generate_pane.generate()

    def stop_generation(self) -> None:
        self.app.generate_pane.stop()
        self.app.chat_pane.stop()

    def regenerate(self) -> None:
        """F7: in Chat, the last reply again; elsewhere the last generation, same seed."""
        if self.active_tab() == "chat":
            self.app.chat_pane.regenerate()
            return
        self.show_tab("generate")
        self.app.generate_pane.regenerate()

    def new_chat(self) -> None:
        self.show_tab("chat")
        self.app.chat_pane.new_chat()

    def toggle_seen(self) -> None:
        """What the model sees: on the Train tab, the data's rows as trained; else the chat."""
        if self.active_tab() == "train":
            self.app.train_pane.show_samples()
            return
        self.show_tab("chat")
        self.app.chat_pane.toggle_seen()

    def start_training(self) -> None:
        self.show_tab("train")
        self.app.train_pane.start()

    def before_after(self) -> None:
        app = self.app
        session = app.session
        if session is None:
            app.notify("No model loaded yet", severity="warning")
            return
        try:   # in Chat: the conversation's last message, answered by both
            pane = app.chat_pane if self.active_tab() == "chat" else app.generate_pane
            prompt, settings = pane.request()
        except UserError as exc:
            app.notify(str(exc), title="Before / after", severity="error")
            return
        app.notify("generating on base and current weights…", title="Before / after", timeout=2)
        compare_in_background(app, session, prompt, replace(settings, seed=settings.seed or 0))

    def reset_weights(self) -> None:
        app = self.app
        if app.session is None:
            return
        if app.training():
            app.notify("Stop training first (F9)", severity="warning")
            return
        from core.model.weights import reset_to_base

        reset_to_base(app.session)
        app.tell_panes(WeightsChanged())
        app.notify("weights reset to the model as loaded", title="Reset to base weights")
