"""Modal screens: a one-line question, the before/after comparison and the
quit-while-training question."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, Label, Static

from core.base.errors import UserError, one_line
from tui.render.chips import printable
from tui.widgets.fields import Field
from tui.widgets.windows import Window

if TYPE_CHECKING:
    from textual.app import App

    from core.inference.compare import BeforeAfter
    from core.inference.sampling import SamplingSettings
    from core.model.session import ModelSession


class AskScreen(Window[str | None]):
    """A one-line question (a model name, a path); Enter answers, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-box"):
            yield Label(self.question)
            yield Field(value=self.value, placeholder=self.placeholder, id="ask-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass
class BeforeAfterReady(Message):
    result: BeforeAfter | None
    error: str | None = None   # one line, when there is no result


def compare_in_background(app: App, session: ModelSession, prompt: str,
                          settings: SamplingSettings) -> None:
    """Generate from `prompt` with the base and the current weights on a worker; the app
    gets BeforeAfterReady."""
    def work() -> None:
        from core.inference.compare import before_after

        try:
            result = before_after(session, prompt, settings)
        except Exception as exc:
            app.post_message(BeforeAfterReady(None, str(exc) if isinstance(exc, UserError)
                                              else one_line(exc)))
        else:
            app.post_message(BeforeAfterReady(result))

    app.run_worker(work, thread=True, exclusive=True, group="before-after")


class BeforeAfterScreen(Window):
    """The same prompt and seed, base weights on the left, current weights on the right."""

    BINDINGS = [Binding("escape,ctrl+b,q", "dismiss", "Close")]

    def __init__(self, result: BeforeAfter) -> None:
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        with Vertical(id="ba-box"):
            yield Label(f"prompt {r.prompt!r} · seed {r.seed} · Esc closes", id="ba-title")
            with Horizontal():
                prompt = (printable(r.prompt), "dim")
                before = Static(Text.assemble(prompt, printable(r.before)), id="ba-before")
                after = Static(Text.assemble(prompt, printable(r.after)), id="ba-after")
                before.border_title = "before: base weights"
                after.border_title = "after: current weights"
                yield before
                yield after


class QuitWhileTrainingScreen(Window[str]):
    """Training is running: save first, quit anyway, or go back."""

    BINDINGS = [
        Binding("s", "choose('save')", "Save and quit"),
        Binding("q", "choose('quit')", "Quit without saving"),
        Binding("escape", "choose('cancel')", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box"):
            yield Label("A training run is going. Save a checkpoint before quitting?")
            with Horizontal(id="quit-buttons"):
                # plain Content: as markup, "[s]" would be a style tag and vanish
                yield Button(Content("Save and quit [s]"), id="save", variant="primary")
                yield Button(Content("Quit without saving [q]"), id="quit", variant="error")
                yield Button(Content("Cancel [esc]"), id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
