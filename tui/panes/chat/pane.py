"""F10 — the Chat pane: a conversation with the model, replies streamed from our decode loop
and tinted by probability, the why of each token, what the model sees (the rendered prompt
as chips, and a context meter), and every conversation kept in the workspace."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, OptionList, Select, Static

from core.base.errors import UserError, one_line
from core.base.settings import SAMPLING_SETTINGS
from core.data.templates import TEMPLATE_CHOICES
from tui.panes.chat.conversations import StoredConversations
from tui.panes.chat.widgets import ChatInput, Transcript
from tui.panes.host import host
from tui.render.chips import CHIP_STYLES, ChipMaker
from tui.widgets.fields import Field, SettingField, read_fields
from tui.widgets.messages import Replaceable, RunBuffer, SessionChanged, WeightsChanged
from tui.widgets.stream import ChoiceInfo, TokenStream

if TYPE_CHECKING:
    from core.inference.chat import Chat, ChatDone
    from core.inference.generation import TokenEvent
    from core.inference.sampling import SamplingSettings

FLUSH_EVERY_S = 0.03
SHOWN_SETTINGS = ("temperature", "top_k", "top_p", "max_new_tokens", "repetition_penalty", "seed")
HINT = "Enter sends · ctrl+j new line · ↑ in an empty box edits your last message · F6/Esc stop · F7 regenerate"


class ChatProgress(Replaceable):
    """New reply tokens wait in the turn's buffer."""


@dataclass
class ChatFinished(Message):
    turn: Turn


@dataclass
class SeenReady(Message):
    """What the model sees, built on a worker: the rendered prompt's chips and the meter."""
    chips: Text
    meter: str


class Turn:
    """One reply being made: its tokens so far, its end, and how to stop it."""

    def __init__(self) -> None:
        self.tokens: RunBuffer[TokenEvent] = RunBuffer()
        self.notices: list[str] = []
        self.done: ChatDone | None = None
        self.error: str | None = None
        self.stop = threading.Event()
        self.started = time.perf_counter()


class ChatPane(StoredConversations, Horizontal):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chat: Chat | None = None
        self.conversation_id: int | None = None
        self.turn: Turn | None = None
        self.editing = False          # the box holds the last user message, to replace it
        self.seeing = False           # "what the model sees" instead of the transcript
        self._conversations: list[dict] = []
        self._shown: Turn | None = None   # the turn whose tokens the transcript shows

    def compose(self) -> ComposeResult:
        with Vertical(id="chat-left"):
            with VerticalScroll(id="chat-log-box"):
                yield Transcript(id="chat-log")
                yield Static(id="chat-seen")
            yield Static(HINT, id="chat-stats")
            yield ChatInput(id="chat-input", soft_wrap=True, show_line_numbers=False)
        with Vertical(id="chat-right"):
            with Grid(id="chat-settings"):
                yield Select([(t, t) for t in TEMPLATE_CHOICES], value="auto", allow_blank=False,
                             id="chat-template")
                yield Field(placeholder="system prompt (empty: none)", id="chat-system")
                settings = {s.name: s for s in SAMPLING_SETTINGS}
                for name in SHOWN_SETTINGS:
                    yield SettingField(settings[name], settings[name].default, "chat", 11)
            yield ChoiceInfo(id="chat-choice")
            yield OptionList(id="chat-list")

    def on_mount(self) -> None:
        self.query_one("#chat-log-box").border_title = "conversation (tint: probability of each token)"
        self.query_one("#chat-choice").border_title = "why this token"
        self.query_one("#chat-list").border_title = "conversations (ctrl+n new)"
        self.query_one("#chat-seen").display = False
        self.query_one(ChoiceInfo).show(None, None)

    # -- the app tells us -----------------------------------------------------------------------

    def on_session_changed(self, message: SessionChanged) -> None:
        self.new_chat()
        self.refresh_list()

    def on_weights_changed(self, message: WeightsChanged) -> None:
        self.show_seen()   # the chat's cache notices new weights by itself (core.inference.chat)

    def commands(self):
        yield SystemCommand("New chat", "Start a new conversation (ctrl+n)", self.new_chat)
        yield SystemCommand("Regenerate reply", "The last reply again (F7 in Chat)", self.regenerate)
        yield SystemCommand("Export chat", "Write this conversation to a .md or .jsonl file", self.ask_export)
        yield SystemCommand("Rename chat", "Give this conversation a title", self.ask_rename)
        yield SystemCommand("Delete chat", "Remove this conversation from the workspace", self.delete_chat)
        yield SystemCommand("Search chats", "List the conversations whose text holds a word", self.ask_search)
        yield SystemCommand("Toggle what the model sees", "The rendered prompt as tokens (ctrl+w)",
                            self.toggle_seen)

    # -- the conversation -----------------------------------------------------------------------

    def read_settings(self) -> SamplingSettings:
        from core.inference.sampling import SamplingSettings

        return SamplingSettings(**read_fields(self.query_one("#chat-settings"))).validate()

    def copy_text(self) -> tuple[str, str] | None:
        """(what, text) to copy: the last reply."""
        messages = self.chat.messages if self.chat is not None else []
        reply = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
        return ("the last reply", reply["content"]) if reply is not None else None

    def conversation_markdown(self) -> str | None:
        """The conversation as its Markdown export has it, or None before the first message."""
        from core.store.conversations import export_markdown

        if self.chat is None or not self.chat.messages:
            return None
        first = next((m["content"] for m in self.chat.messages if m["role"] == "user"), "chat")
        return export_markdown({"title": first.splitlines()[0][:60], "model": self.chat.session.info.model,
                                "template": self.chat.template.name, "updated": time.strftime("%Y-%m-%d %H:%M"),
                                "system": self.chat.system, "messages": self.chat.messages})

    def _make_chat(self, messages: list[dict] | None = None) -> Chat | None:
        from core.inference.chat import Chat

        session = host(self).session
        if session is None:
            return None
        template = self.query_one("#chat-template", Select).value
        system = self.query_one("#chat-system", Input).value.strip() or None
        return Chat(session, template=str(template), system=system, messages=messages)

    def new_chat(self) -> None:
        self.stop()
        self.chat, self.conversation_id, self.editing = self._make_chat(), None, False
        self.query_one(Transcript).show([], [])
        self.query_one("#chat-stats", Static).update(HINT)
        self.show_seen()

    @on(Select.Changed, "#chat-template")
    @on(Input.Changed, "#chat-system")
    def setup_changed(self) -> None:
        """A new template or system prompt applies to the conversation from its next reply."""
        if self.chat is not None and not self.turn_running:
            self.chat = self._make_chat(self.chat.messages)
            self.show_seen()

    @property
    def turn_running(self) -> bool:
        return self.turn is not None and self.turn.done is None and self.turn.error is None

    def on_chat_input_send(self, message: ChatInput.Send) -> None:
        text = message.text.strip()
        if not text:
            return
        if self.editing:   # decided now: start() clears it before the worker runs
            self.start(lambda chat, s, stop: chat.edit_last(text, s, stop))
        else:
            self.start(lambda chat, s, stop: chat.send(text, s, stop))
        self.query_one(ChatInput).load_text("")

    def on_chat_input_edit_last(self) -> None:
        if self.chat is None or self.turn_running:
            return
        last = next((m for m in reversed(self.chat.messages) if m["role"] == "user"), None)
        if last is not None:
            self.editing = True
            box = self.query_one(ChatInput)
            box.load_text(last["content"])
            box.move_cursor(box.document.end)
            self.query_one("#chat-stats", Static).update("editing your last message: Enter answers it again")

    def on_chat_input_stop(self) -> None:
        self.stop()

    def request(self) -> tuple[str, SamplingSettings]:
        """Before/after on a conversation: its last user message, in context, as the prompt
        the base and the current weights both answer."""
        from dataclasses import replace

        from core.data.templates import render

        chat = self.chat
        if chat is None or not any(m["role"] == "user" for m in chat.messages):
            raise UserError("say something in the conversation first")
        messages = list(chat.messages)
        while messages[-1]["role"] != "user":
            messages.pop()
        prompt = render(chat.session.tokenizer, chat.conversation(messages), chat.template)
        settings = self.read_settings()
        return prompt, replace(settings, stop=tuple(settings.stop) + chat.template.stops)

    def regenerate(self) -> None:
        if self.chat is None or not self.chat.messages:
            self.app.notify("Nothing to regenerate yet", severity="warning")
            return
        self.start(lambda chat, s, stop: chat.regenerate(s, stop))

    def stop(self) -> None:
        if self.turn is not None:
            self.turn.stop.set()

    def start(self, make_events) -> None:
        if host(self).session is None or self.chat is None:
            self.app.notify("No model loaded yet", severity="warning")
            return
        if self.turn_running:
            self.app.notify("A reply is still coming (F6 stops it)", severity="warning")
            return
        try:
            settings = self.read_settings()
        except UserError as exc:
            self.app.notify(str(exc), title="Chat", severity="error")
            return
        chat, turn = self.chat, Turn()
        self.turn, self.editing = turn, False
        self.query_one("#chat-stats", Static).update("thinking…")
        # Started from the App: a reply outlives any widget; F6, Esc or quitting stop it.
        self.app.run_worker(lambda: self._produce(chat, turn, make_events, settings),
                            thread=True, exclusive=True, group="chat", name="chat")

    def _produce(self, chat: Chat, turn: Turn, make_events, settings: SamplingSettings) -> None:
        """Worker thread: the reply's events into the turn's buffer, ≈30 ms batches to the UI;
        the conversation stored once the reply is in."""
        from textual.worker import get_current_worker

        from core.inference.chat import ChatDone
        from core.inference.generation import GenerationNotice, TokenEvent
        from core.store.conversations import ChatStore

        worker = get_current_worker()
        last_flush = 0.0
        try:
            for event in make_events(chat, settings, lambda: turn.stop.is_set() or worker.is_cancelled):
                if isinstance(event, TokenEvent):
                    turn.tokens.push(event)
                    if time.perf_counter() - last_flush >= FLUSH_EVERY_S:
                        last_flush = time.perf_counter()
                        self.post_message(ChatProgress())
                elif isinstance(event, GenerationNotice):
                    turn.notices.append(event.message)
                elif isinstance(event, ChatDone):
                    turn.done = event
            store = host(self).store
            if store is not None:
                chats = ChatStore(store)
                if self.conversation_id is None and chat is self.chat:
                    self.conversation_id = chats.create(chat.session.info.model, chat.system,
                                                        chat.template.name, settings.as_record())
                if chat is self.chat:
                    chats.save_messages(self.conversation_id, chat.messages, chat.system,
                                        settings.as_record())
        except Exception as exc:   # one line on screen; the conversation stays as it was
            turn.error = str(exc) if isinstance(exc, UserError) else one_line(exc)
        self.post_message(ChatFinished(turn))

    def on_chat_progress(self, message: ChatProgress) -> None:
        turn = self.turn
        if turn is not None:
            self._paint(turn)

    def _paint(self, turn: Turn) -> None:
        new = turn.tokens.take_new()
        if self.chat is None:
            return
        # The reply answers the last user message; it shows as its tokens, tinted.
        messages = list(self.chat.messages)
        while messages and messages[-1]["role"] != "user":
            messages.pop()
        transcript = self.query_one(Transcript)
        if turn is not self._shown or messages != transcript.messages:   # a new reply, or edit
            self._shown = turn
            transcript.show(messages, list(turn.tokens.items))
        else:
            transcript.extend(new)   # a batch of tokens: the messages are not drawn again
        if turn.tokens.items and turn.done is None:
            elapsed = time.perf_counter() - turn.started
            self.query_one("#chat-stats", Static).update(
                f"{len(turn.tokens)} tokens · {len(turn.tokens) / elapsed:.1f} tokens/s · F6/Esc stops")
        self.query_one("#chat-log-box").scroll_end(animate=False)

    def on_chat_finished(self, message: ChatFinished) -> None:
        turn = message.turn
        if turn is not self.turn:
            return
        self._paint(turn)
        stats = self.query_one("#chat-stats", Static)
        if turn.error:
            stats.update(Text(turn.error, style="red"))
            self.app.notify(turn.error, title="Chat", severity="error")
            return
        done = turn.done
        line = (f"reply {done.turn} · {done.new_tokens} tokens · {done.tokens_per_s:.1f} tokens/s · "
                f"first token {(done.ttft_s or 0) * 1000:.0f} ms · {done.reused_tokens:,} of "
                f"{done.prompt_tokens:,} prompt tokens from the cache · stop: {done.stop_reason}")
        stats.update(line + ("".join(f" · {n}" for n in turn.notices)))
        for notice in turn.notices:
            self.app.notify(notice, title="Chat", severity="warning")
        self.refresh_list()
        self.show_seen()

    # -- what the model sees ------------------------------------------------------------------------

    def toggle_seen(self) -> None:
        self.seeing = not self.seeing
        self.query_one(Transcript).display = not self.seeing
        self.query_one("#chat-seen").display = self.seeing
        self.show_seen()

    def show_seen(self) -> None:
        chat = self.chat
        if chat is None:
            return
        self.app.run_worker(lambda: self._seen(chat), thread=True, exclusive=True, group="chat-seen")

    def _seen(self, chat: Chat) -> None:
        from core.tokens.view import tokenize_view

        try:
            text = chat.rendered() if chat.messages or chat.system else ""
            view = tokenize_view(chat.session.tokenizer, text)
            chips = Text()
            for chip in ChipMaker(False, show_ids=False).chips(view):
                chips.append(chip.label, style=CHIP_STYLES[chip.style])
        except UserError as exc:
            chips, view = Text(str(exc), style="red"), None
        count = view.count if view is not None else 0
        meter = f"{count:,} / {chat.session.max_positions:,} tokens · template {chat.template.name}"
        self.post_message(SeenReady(chips, meter))

    def on_seen_ready(self, message: SeenReady) -> None:
        self.query_one("#chat-seen", Static).update(message.chips)
        self.query_one("#chat-log-box").border_subtitle = message.meter

    @on(TokenStream.Selected)
    def show_choice(self, event: TokenStream.Selected) -> None:
        tokens = event.stream.tokens
        chosen = tokens[event.index] if 0 <= event.index < len(tokens) else None
        if host(self).session is not None:
            self.query_one(ChoiceInfo).show(host(self).session.tokenizer, chosen)
