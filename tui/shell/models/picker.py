"""The model picker behind "Load model": the demo, every run's saved model, the Hugging Face
cache and recent models in one list (found on a worker thread: a big cache takes a moment),
filtered as you type; anything else — a hub id, a folder — typed and Enter."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from core.store.catalog import ModelChoice, model_choices
from tui.widgets.fields import Field
from tui.widgets.windows import Window

KIND_MARK = {"demo": "◆", "run": "▲", "cache": "●", "recent": "○"}


@dataclass
class ChoicesFound(Message):
    choices: list[ModelChoice]


def find_choices(screen, store) -> None:
    """The models to offer, found on a worker thread (a big cache takes a moment) and posted
    back to `screen` as ChoicesFound."""
    screen.run_worker(lambda: screen.post_message(ChoicesFound(model_choices(store))), thread=True,
                      exclusive=True, group="model-choices")


class ModelPickerScreen(Window[ModelChoice | None]):
    DEFAULT_CSS = """
    ModelPickerScreen { align: center middle; }
    #picker-box { width: 96%; max-width: 120; height: 80%; border: thick $primary;
                  background: $surface; padding: 0 1; }
    #picker-list { height: 1fr; }
    #picker-help { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("down", "to_list", "The list", show=False)]

    def __init__(self, current: str, store) -> None:
        super().__init__()
        self.current, self.store = current, store
        self.choices: list[ModelChoice] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Label("Load model — ◆ demo  ▲ a run's model  ● in the cache  ○ recent")
            yield Field(placeholder="filter, or a hub id / model folder and Enter", id="picker-input")
            yield OptionList(Option("looking for models…", disabled=True), id="picker-list")
            yield Label("↓ the list · Enter loads · Esc cancels", id="picker-help")

    def on_mount(self) -> None:
        find_choices(self, self.store)

    def on_choices_found(self, message: ChoicesFound) -> None:
        self.choices = message.choices
        self.refill()

    @on(Input.Changed, "#picker-input")
    def refill(self) -> None:
        words = self.query_one("#picker-input", Input).value.lower().split()
        listing = self.query_one("#picker-list", OptionList)
        listing.clear_options()
        for i, choice in enumerate(self.choices):
            if all(word in choice.label.lower() for word in words):
                mark = KIND_MARK[choice.kind]
                current = "  (loaded)" if (choice.trained or choice.name) == self.current else ""
                listing.add_option(Option(f"{mark} {choice.label}{current}", id=str(i)))
        if listing.option_count:
            listing.highlighted = 0

    @on(Input.Submitted, "#picker-input")
    def typed(self, event: Input.Submitted) -> None:
        """Enter in the field: the highlighted match, or what was typed when nothing matches."""
        listing = self.query_one("#picker-list", OptionList)
        text = event.value.strip()
        if listing.option_count and listing.highlighted is not None and not self._is_path_or_id(text):
            self.dismiss(self.choices[int(listing.get_option_at_index(listing.highlighted).id or 0)])
        elif text:
            self.dismiss(ModelChoice("typed", text, text))

    @staticmethod
    def _is_path_or_id(text: str) -> bool:
        """Typed as a name to load rather than words to filter by: a path or an org/name id."""
        return text.startswith(("/", "~", ".")) or ("/" in text and " " not in text)

    @on(OptionList.OptionSelected, "#picker-list")
    def picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(self.choices[int(event.option.id)])

    def action_to_list(self) -> None:
        self.query_one("#picker-list", OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
