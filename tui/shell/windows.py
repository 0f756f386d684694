"""The app's windows and notice bar: one palette at a time, answers that wait for an open
window instead of covering it, a one-row notice the user can hide, and the windows that pick
models (Load model, Compare models). The main screen itself never closes (the app's
`pop_screen`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.command import CommandPalette, SimpleProvider
from textual.screen import Screen
from textual.theme import ThemeProvider
from textual.widget import AwaitMount
from textual.widgets import Static

from core.base.errors import UserError
from tui.widgets.dialogs import BeforeAfterReady, BeforeAfterScreen
from tui.widgets.windows import Palette

if TYPE_CHECKING:
    from textual.command import CommandListItem

    from tui.shell.app import RuGPTApp


class Windows:
    """Created with the app; the app hands it the windows to open and the notices to show."""

    def __init__(self, app: RuGPTApp) -> None:
        self.app = app
        self.palette: Palette | None = None   # the last one opened (it may still be closing)
        self.waiting: list[Screen] = []       # results that arrived while a window was open
        self.notice_text = ""                 # the notice bar's text
        self.notices_hidden: set[str] = set()   # notices the user hid (not shown again)

    def toggle_help(self) -> None:
        from tui.widgets.help import HelpScreen  # Markdown's parser: not before the first frame

        app = self.app
        if isinstance(app.screen, HelpScreen):
            app.screen.dismiss()
        else:
            app.push_screen(HelpScreen())

    def open_palette(self) -> None:
        """One palette at a time: with a palette under another window (ctrl+b's answer
        arrived while it was open, say), ctrl+p does not open a second one; nor while a
        closed one is still being taken down (its id is not free until then)."""
        app = self.app
        closing = self.palette is not None and self.palette.is_attached
        open_ = any(isinstance(screen, CommandPalette) for screen in app.screen_stack)
        if app.use_command_palette and not open_ and not closing:
            self.palette = Palette(id="--command-palette")
            app.push_screen(self.palette)

    def search_commands(self, commands: Sequence[CommandListItem], placeholder: str) -> AwaitMount:
        """A list of commands to pick from (Textual's own `Keys`, say), in the app's palette."""
        app = self.app
        # a provider instance, as Textual's own App.search_commands passes (its annotation
        # asks for a class)
        provider = SimpleProvider(app.screen, list(commands))
        return app.push_screen(Palette(providers=[provider],  # type: ignore[list-item]
                                       placeholder=placeholder))

    def search_themes(self) -> None:
        self.app.push_screen(Palette(providers=[ThemeProvider], placeholder="Search for themes…"))

    def before_after_ready(self, message: BeforeAfterReady) -> None:
        """The comparison opens now — or, when another window is open (a question, the
        help), as soon as the user has closed it: a late answer never covers a question."""
        if message.result is None:
            self.app.notify(message.error or "no result", title="Before / after", severity="error",
                            timeout=8)
            return
        self.waiting.append(BeforeAfterScreen(message.result))
        self.open_waiting()

    def open_waiting(self, *_: object) -> None:
        if self.waiting and len(self.app.screen_stack) == 1:
            self.app.push_screen(self.waiting.pop(0))

    def show_notice(self, text: str | None) -> None:
        """The notice bar: what the model load said, and any workspace problem — one row
        (the whole text in its tooltip and in a notification); a click or the palette's
        `Hide notice` hides it."""
        app = self.app
        lines = [line for line in (text, *app.workspace.problems) if line]
        notice = app.query_one("#notice", Static)
        joined = " · ".join(lines)
        if joined and joined != self.notice_text:
            app.notify(joined, title="Notice", timeout=10)
        self.notice_text = joined
        notice.update(joined + ("  ✕" if joined else ""))
        notice.tooltip = joined or None
        notice.display = bool(lines) and joined not in self.notices_hidden

    def hide_notice(self) -> None:
        if self.notice_text:
            self.notices_hidden.add(self.notice_text)
        self.app.query_one("#notice").display = False

    def pick_model(self) -> None:
        """The model picker (tui.shell.models.picker); the model loads in the background and
        one that fails leaves the current one in place."""
        from tui.shell.models.picker import ModelPickerScreen

        app = self.app

        def chosen(choice) -> None:
            if choice is not None:
                app.load_model(choice.name, trained=choice.trained)

        app.push_screen(ModelPickerScreen(app.model_name, app.store), chosen)

    def compare_models(self, runs: tuple[int, ...] = ()) -> None:
        """Tick models (tui.shell.models.compare), then compare them side by side; `runs`
        come ticked (a sweep's best)."""
        from tui.shell.models.compare import CompareScreen, CompareSetupScreen, with_seed

        app = self.app
        form = app.train_pane.form.data_paths()
        try:
            prompt, settings = app.generate_pane.request()
        except UserError as exc:
            app.notify(str(exc), title="Compare models", severity="error")
            return

        def chosen(request) -> None:
            if request is not None:
                app.push_screen(CompareScreen(request, app.store))

        app.push_screen(CompareSetupScreen(app.store, form.get("test") or form.get("train", ""),
                                           prompt, with_seed(settings), ticked_runs=runs), chosen)
