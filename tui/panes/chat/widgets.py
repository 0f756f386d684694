"""The Chat pane's own widgets: the message box and the transcript."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message

from tui.render.chips import printable
from tui.widgets.fields import Editor
from tui.widgets.stream import TokenStream, prob_style

LABELS = {"user": "Вы", "assistant": "Модель"}


class ChatInput(Editor):
    """The message box: Enter sends, ctrl+j (or alt+enter) starts a new line, ↑ in an empty
    box brings back your last message to edit, Esc stops a reply."""

    @dataclass
    class Send(Message):
        text: str

    class EditLast(Message):
        pass

    class Stop(Message):
        pass

    async def on_key(self, event: events.Key) -> None:
        action = {"enter": self.Send, "up": self.EditLast, "escape": self.Stop}.get(event.key)
        if event.key in ("ctrl+j", "alt+enter", "shift+enter"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if action is not None and (event.key != "up" or not self.text):
            event.stop()
            event.prevent_default()
            self.post_message(action(self.text) if action is self.Send else action())
            return
        # otherwise Textual goes on to Editor's and TextArea's own handlers (the MRO)


class Transcript(TokenStream):
    """The conversation: earlier messages as text under their speaker, and the reply being
    streamed (or the last one) token by token, tinted by probability; ←/→ walk over it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.messages: list[dict] = []
        self._head = Text()   # the messages, drawn once per change, not once per token

    def show(self, messages: list[dict], tokens: list) -> None:
        self.messages = messages
        self._head = Text()
        for m in messages:
            self._head.append(f"{LABELS.get(m['role'], m['role'])}: ",
                              style="bold cyan" if m["role"] == "user" else "bold green")
            self._head.append(printable(m["content"]) + "\n\n")
        if tokens or messages and messages[-1]["role"] == "user":
            self._head.append(f"{LABELS['assistant']}: ", style="bold green")
        self.set_content("", tokens)

    def render(self) -> Text:
        out = self._head.copy()
        leading = True   # the label has its space: the reply's own leading blanks are not drawn
        for i, tok in enumerate(self.tokens):
            style = prob_style(tok.prob) + (" reverse bold" if i == self.selected else "")
            text = tok.text.lstrip() if leading else tok.text
            leading = leading and not text
            out.append(printable(text) or ("▏" if i == self.selected else ""), style=style)
        return out
