"""The app's windows and notice bar: one palette at a time, screens that close once and never
take the main screen with them, answers that wait for an open window instead of covering
it, a one-row notice the user can hide, and the windows that pick models (Load model,
Compare models)."""

from __future__ import annotations

from textual import events
from textual.await_complete import AwaitComplete
from textual.command import CommandPalette, SimpleProvider
from textual.theme import ThemeProvider
from textual.widget import AwaitMount
from textual.widgets import Static

from core.base.errors import UserError
from tui.widgets.dialogs import BeforeAfterReady, BeforeAfterScreen
from tui.widgets.windows import Palette


class Windows:
    """Mixed into the app (tui.shell.app.RuGPTApp), before Textual's App."""

    def action_help(self) -> None:
        from tui.widgets.help import HelpScreen  # Markdown's parser: not before the first frame

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())

    def action_command_palette(self) -> None:
        """One palette at a time: with a palette under another window (ctrl+b's answer
        arrived while it was open, say), ctrl+p does not open a second one; nor while a
        closed one is still being taken down (its id is not free until then)."""
        closing = self._palette is not None and self._palette.is_attached
        open_ = any(isinstance(screen, CommandPalette) for screen in self.screen_stack)
        if self.use_command_palette and not open_ and not closing:
            self._palette = Palette(id="--command-palette")
            self.push_screen(self._palette)

    def search_commands(self, commands, placeholder: str = "Search for commands…") -> AwaitMount:
        """A list of commands to pick from (Textual's own `Keys`, say), in the app's palette."""
        return self.push_screen(Palette(providers=[SimpleProvider(self.screen, commands)],
                                        placeholder=placeholder))

    def search_themes(self) -> None:
        """Textual's `Theme` command, in the app's palette."""
        self.push_screen(Palette(providers=[ThemeProvider], placeholder="Search for themes…"))

    def pop_screen(self) -> AwaitComplete:
        if len(self.screen_stack) <= 1:   # the main screen always stays
            return AwaitComplete.nothing()
        return super().pop_screen()

    def on_before_after_ready(self, message: BeforeAfterReady) -> None:
        """The comparison opens now — or, when another window is open (a question, the
        help), as soon as the user has closed it: a late answer never covers a question."""
        if message.result is None:
            self.notify(message.error or "no result", title="Before / after", severity="error",
                        timeout=8)
            return
        self._waiting_windows.append(BeforeAfterScreen(message.result))
        self._open_waiting_window()

    def _open_waiting_window(self, *_) -> None:
        if self._waiting_windows and len(self.screen_stack) == 1:
            self.push_screen(self._waiting_windows.pop(0))

    def _show_notice(self, text: str | None) -> None:
        """The notice bar: what the model load said, and any workspace problem — one row
        (the whole text in its tooltip and in a notification); a click or the palette's
        `Hide notice` hides it."""
        lines = [line for line in (text, *self.workspace.problems) if line]
        notice = self.query_one("#notice", Static)
        joined = " · ".join(lines)
        if joined and joined != self._notice_text:
            self.notify(joined, title="Notice", timeout=10)
        self._notice_text = joined
        notice.update(joined + ("  ✕" if joined else ""))
        notice.tooltip = joined or None
        notice.display = bool(lines) and joined not in self._notices_hidden

    def action_hide_notice(self) -> None:
        if self._notice_text:
            self._notices_hidden.add(self._notice_text)
        self.query_one("#notice").display = False

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "notice":
            self.action_hide_notice()

    def action_load_model(self) -> None:
        """The model picker (tui.shell.models.picker); the model loads in the background and
        one that fails leaves the current one in place."""
        from tui.shell.models.picker import ModelPickerScreen

        def chosen(choice) -> None:
            if choice is not None:
                self.load_model(choice.name, trained=choice.trained)

        self.push_screen(ModelPickerScreen(self.model_name, self.store), chosen)

    def action_compare_models(self) -> None:
        """Tick models (tui.shell.models.compare), then compare them side by side."""
        from tui.shell.models.compare import CompareScreen, CompareSetupScreen, with_seed

        form = self.train_pane.form.data_paths()
        try:
            prompt, settings = self.generate_pane.request()
        except UserError as exc:
            self.notify(str(exc), title="Compare models", severity="error")
            return

        def chosen(request) -> None:
            if request is not None:
                self.push_screen(CompareScreen(request, self.store))

        self.push_screen(CompareSetupScreen(self.store, form.get("test") or form.get("train", ""),
                                            prompt, with_seed(settings)), chosen)
