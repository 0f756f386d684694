"""The app's keys that act on a pane: switching tabs, generating, training, before/after,
the token view's toggles. Mixed into the app, which holds the four panes."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import TabbedContent

from core.base.errors import UserError
from tui.widgets.dialogs import compare_in_background
from tui.widgets.messages import WeightsChanged


class PaneActions:
    PANE_FOCUS = {"tokenize": "#tok-input", "generate": "#gen-prompt", "train": "#train-data",
                  "chat": "#chat-input"}

    def action_show_tab(self, tab: str) -> None:
        main = self.screen_stack[0]   # the tabs' screen, also under a window (help, a dialog)
        main.query_one("#tabs", TabbedContent).active = tab
        # Focus left inside the hidden pane would pull its tab back to the front.
        focused = main.focused
        if focused is None or not any(a.id == tab for a in focused.ancestors_with_self):
            # at once, not after the keys already queued: they are meant for the new pane
            main.set_focus(main.query_one(self.PANE_FOCUS[tab]))

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "generate" and self.session is not None:
            self.generate_pane.schedule_inspect()  # weights may have changed meanwhile

    def action_generate(self) -> None:
        self.action_show_tab("generate")
        self.generate_pane.generate()

    def action_stop_generation(self) -> None:
        self.generate_pane.stop()
        self.chat_pane.stop()

    def action_regenerate(self) -> None:
        """F7: in Chat, the last reply again; elsewhere the last generation, same seed."""
        if self._active_tab() == "chat":
            self.chat_pane.regenerate()
            return
        self.action_show_tab("generate")
        self.generate_pane.regenerate()

    def _active_tab(self) -> str:
        return self.query_one("#tabs", TabbedContent).active

    def action_new_chat(self) -> None:
        self.action_show_tab("chat")
        self.chat_pane.new_chat()

    def action_toggle_seen(self) -> None:
        """What the model sees: on the Train tab, the data's rows as trained; else the chat."""
        if self._active_tab() == "train":
            self.train_pane.show_samples()
            return
        self.action_show_tab("chat")
        self.chat_pane.toggle_seen()

    def action_start_training(self) -> None:
        self.action_show_tab("train")
        self.train_pane.start()

    def action_stop_training(self) -> None:
        self.train_pane.stop()

    def action_save_checkpoint(self) -> None:
        self.train_pane.save_now()

    def action_before_after(self) -> None:
        session = self.session
        if session is None:
            self.notify("No model loaded yet", severity="warning")
            return
        try:   # in Chat: the conversation's last message, answered by both
            pane = self.chat_pane if self._active_tab() == "chat" else self.generate_pane
            prompt, settings = pane.request()
        except UserError as exc:
            self.notify(str(exc), title="Before / after", severity="error")
            return
        self.notify("generating on base and current weights…", title="Before / after", timeout=2)
        compare_in_background(self, session, prompt, replace(settings, seed=settings.seed or 0))

    def action_toggle_log_scale(self) -> None:
        self.train_pane.toggle_log_scale()

    def action_reset_weights(self) -> None:
        if self.session is None:
            return
        if self.training():
            self.notify("Stop training first (F9)", severity="warning")
            return
        from core.model.weights import reset_to_base

        reset_to_base(self.session)
        self._tell_panes(WeightsChanged())
        self.notify("weights reset to the model as loaded", title="Reset to base weights")

    def action_toggle_raw(self) -> None:
        pane = self.tokenize_pane
        pane.raw = not pane.raw

    def action_toggle_ids(self) -> None:
        pane = self.tokenize_pane
        pane.show_ids = not pane.show_ids
