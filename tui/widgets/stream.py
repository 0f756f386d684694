"""Generated text as tokens: each tinted by its probability, walked with ←/→, and the panel
that says why a token was chosen and which alternatives it beat."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from tui.render.chips import printable


def prob_style(prob: float) -> str:
    """Tint for a token drawn with probability `prob`: green when sure, red when a long shot."""
    p = max(0.0, min(1.0, prob)) ** 0.5  # spread the low end, where most tokens live
    r = int(160 * (1 - p) + 30)
    g = int(120 * p + 40)
    return f"on rgb({r},{g},60)"


def bar(prob: float, width: int = 20) -> str:
    full = prob * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


class TokenStream(Widget, can_focus=True):
    """Generated text, each token tinted by its probability; ←/→ walk over the tokens."""

    DEFAULT_CSS = """
    TokenStream { height: auto; min-height: 3; padding: 0 1; }
    TokenStream:focus { background: $boost; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", "prev token", show=False),
        Binding("right", "move(1)", "next token", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
    ]

    selected: reactive[int] = reactive(-1)

    class Selected(Message):
        def __init__(self, stream: TokenStream, index: int) -> None:
            super().__init__()
            self.stream = stream
            self.index = index

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.prompt = ""
        self.tokens: list = []  # TokenEvent

    def set_content(self, prompt: str, tokens: list) -> None:
        self.prompt = prompt
        self.tokens = list(tokens)
        self.selected = min(self.selected, len(self.tokens) - 1)
        self.refresh(layout=True)

    def extend(self, tokens: list) -> None:
        self.tokens.extend(tokens)
        self.refresh(layout=True)

    def render(self) -> Text:
        out = Text(printable(self.prompt), style="dim")
        for i, tok in enumerate(self.tokens):
            style = prob_style(tok.prob)
            piece = printable(tok.text) or ("▏" if i == self.selected else "")
            if i == self.selected:
                style += " reverse bold"
            out.append(piece, style=style)
        return out

    def action_move(self, delta: int) -> None:
        if not self.tokens:
            return
        start = self.selected if self.selected >= 0 else (len(self.tokens) if delta < 0 else -1)
        self.selected = max(0, min(len(self.tokens) - 1, start + delta))

    def action_jump(self, index: int) -> None:
        if self.tokens:
            self.selected = index % len(self.tokens)

    def watch_selected(self, index: int) -> None:
        self.refresh()
        self.post_message(self.Selected(self, index))


class ChoiceInfo(Static):
    """Why a token was chosen: its probability and the alternatives it beat."""

    def show(self, tokenizer, event) -> None:
        if event is None:
            self.update("←/→ over the output shows a token's probability and alternatives")
            return
        text = Text()
        text.append(f"step {event.step}  id {event.id}  ", style="bold")
        text.append(repr(tokenizer.decode([event.id])), style="bold")
        text.append(f"\np = {event.prob:.4f}\n\n")
        scale = max((p for _, p in event.top), default=1.0) or 1.0  # bars relative to the best
        for tid, p in event.top:
            piece = tokenizer.decode([tid])
            mark = "▶" if tid == event.id else " "
            text.append(f"{mark}{piece!r:<14.14} {p:6.3f} ", style="bold" if tid == event.id else "")
            text.append(bar(p / scale, 16) + "\n", style="green" if tid == event.id else "cyan")
        self.update(text)
