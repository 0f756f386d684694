"""F2 — the Tokenize pane: text as the model sees it, updated as you type."""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Document
from textual.worker import Worker, WorkerState

from core.base.errors import one_line
from tui.panes.host import host
from tui.panes.tokenize.chipview import ChipView
from tui.render.chips import Chip, ChipMaker
from tui.widgets.fields import Editor
from tui.widgets.messages import SessionChanged

if TYPE_CHECKING:
    from core.tokens.view import TokenView

SAMPLE_TEXT = "Нейронная сеть учится предсказывать следующее слово. Привет, мир! 😀"


def render_tensors(ids: list[int], line_counts: list[int], left_pad: bool) -> Text:
    """What `tokenizer(text, return_tensors="pt")` hands the model; for several lines, the
    padded batch `tokenizer(lines, padding=True)` would make, row by row."""
    from core.tokens.words import pad_mask

    out = Text()
    out.append("tokenizer(text, return_tensors='pt')\n", style="bold")
    out.append(f"input_ids      shape (1, {len(ids)})\n")
    out.append(f"attention_mask shape (1, {len(ids)})\n")
    out.append(f"input_ids[0][:12] = {ids[:12]}\n", style="dim")
    if len(line_counts) > 1:
        rows, cols = len(line_counts), max(line_counts)
        out.append(f"\nbatch of {rows} lines, padded → ({rows}, {cols})\n", style="bold")
        for real in line_counts[:6]:
            mask = pad_mask(real, cols, left_pad)
            out.append(f"  {real:>3} real + {cols - real:>3} pad  mask ")
            out.append("".join("█" if m else "·" for m in mask[:40]), style="green")
            out.append("\n")
    return out


def render_stats(view, words: dict[str, tuple[int, int]], singles: list[str]) -> Text:
    stats = Text()
    stats.append(f"{view.count} tokens", style="bold")
    stats.append(f" · {len(view.text)} characters · {view.chars_per_token:.2f} chars/token")
    if words:
        stats.append(f" · {len(words)} distinct words, {len(singles)} of them a single token: ")
        stats.append(", ".join(singles[:8]) + ("…" if len(singles) > 8 else ""), style="italic")
    return stats


def render_words(rows: list[tuple[str, int]]) -> Text:
    """The most split words as a small table (a DataTable redraws far too slowly to be
    rebuilt on every keystroke)."""
    out = Text()
    out.append(f"{'word':<28}{'tokens':>7}\n", style="bold")
    for i, (word, tokens) in enumerate(rows):
        shown = word if len(word) <= 27 else word[:26] + "…"
        out.append(f"{shown:<28}{tokens:>7}\n", style="on #1e2a38" if i % 2 else "")
    return out


def describe_token(view, index: int) -> str:
    """One line on the token at the cursor: where it is, its id, its vocabulary piece and
    the bytes it holds."""
    if index < 0:
        return ""
    raw, data, special = view.piece(index)
    piece = raw if len(raw) <= 24 else raw[:23] + "…"
    shown = data[:8].hex(" ") + (" …" if len(data) > 8 else "")
    kind = " · special" if special else ""
    return (f"cursor: token {index + 1}/{view.count} · id {view.ids[index]} · {piece!r} · "
            f"{len(data)} bytes {shown}{kind}")


def fit_lines(text: Text, width: int, lines: int, console) -> Text:
    """`text` in at most `lines` lines of `width` cells, the last cut with … if need be."""
    if not width:
        return text.copy()
    wrapped = text.wrap(console, width)
    if len(wrapped) <= lines:
        return text.copy()
    kept = wrapped[:lines]
    last = kept[-1]
    last.truncate(width - 1)
    last.append("…")
    return Text("\n").join(kept)


def token_text(view, index: int) -> str:
    """The text the token at `index` owns (a byte piece of a character: that character)."""
    return view.text[view.starts[index]:view.ends[index]]


def token_at(view, index: int) -> int:
    """The token holding the character just before text position `index` (the one the
    cursor has just typed), or -1 for an empty text."""
    if not view.count:
        return -1
    return max(0, bisect_right(view.starts, max(0, index - 1)) - 1)


class TokenEditor(Editor):
    """The pane's editor. From an edit until the pane has shown its tokens, the screen holds
    its paint, so the edited text and its tokens are drawn in one frame. (Otherwise the text
    may be drawn first, and Textual's frame timer puts the tokens one to two frames later.)"""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._hold = ExitStack()  # paint holds taken by edits, released after the update

    def edit(self, edit):
        self._hold.enter_context(self.app.batch_update())
        return super().edit(edit)

    async def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._hold.enter_context(self.app.batch_update())  # changes not made by edit() too
        try:
            if self.query_ancestor(TokenizePane).text_changed():
                for _ in range(3):  # refreshed widgets tell the screen on their next turn
                    await asyncio.sleep(0)
        finally:
            self._hold.close()

    def on_unmount(self) -> None:
        self._hold.close()


@dataclass
class PaneState:
    """Everything the pane shows for one text, built without touching a widget."""
    view: TokenView
    chips: list[Chip]
    stats: Text
    tensors: Text
    word_rows: list[tuple[str, int]]
    cost: float = 0.0  # seconds it took to build


def build_state(tokenizer, text: str, base, chip_maker: ChipMaker) -> PaneState:
    """The view of `text`, re-tokenizing only around the edit from `base` (the view on
    screen). Every step is sized for a keystroke: the tokenizer runs on a few words, chips
    come from a cache, and per-line batch counts are remembered."""
    from core.tokens.view import tokenize_edit
    from core.tokens.words import line_token_counts, most_split, single_token_words, word_spread

    started = time.perf_counter()
    view = tokenize_edit(tokenizer, base, text)
    chips = chip_maker.chips(view)
    spread = word_spread(view)
    lines = [line for line in text.splitlines() if line.strip()]
    line_counts = line_token_counts(tokenizer, lines) if len(lines) > 1 else []
    left_pad = getattr(tokenizer, "padding_side", "right") == "left"
    return PaneState(view, chips, render_stats(view, spread, single_token_words(spread)),
                     render_tensors(view.ids, line_counts, left_pad), most_split(spread, 12),
                     time.perf_counter() - started)


class TokenizePane(Vertical):
    raw = reactive(False)
    show_ids = reactive(False)

    # An update that takes longer than this (a very long text) is built on a worker thread,
    # so keys keep flowing into the editor while the view catches up.
    INLINE_BUDGET_S = 0.02

    @dataclass
    class Built(Message):
        state: PaneState
        text: str

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.view: TokenView | None = None      # the TokenView on screen
        self.word_rows: list[tuple[str, int]] = []  # the most split words on screen
        self._pending = False   # an inline update is scheduled
        self._building = False  # a worker is building a view
        self._stale = False     # the text changed while the worker was building
        self._chips: ChipMaker | None = None  # chip cache; reset with the model or a toggle
        self._update_cost = 0.0  # seconds the last build took
        self._stats = Text()      # the counts for the view on screen
        self._stats_width = 0     # the width they were fitted to

    def compose(self) -> ComposeResult:
        yield TokenEditor(SAMPLE_TEXT, id="tok-input", soft_wrap=True)
        yield Static("waiting for the model…", id="tok-stats")
        yield ChipView(id="tok-chips")
        with Horizontal(id="tok-bottom"):
            yield Static(id="tok-words")
            yield Static(id="tok-tensors")

    def on_mount(self) -> None:
        self.query_one("#tok-words").border_title = "most split words"
        self.query_one("#tok-tensors").border_title = "what the model gets"
        self.query_one("#tok-chips").border_title = "tokens"

    def on_session_changed(self, message: SessionChanged) -> None:
        self._chips = None   # chips are per tokenizer
        self.refresh_view()

    def text_changed(self) -> bool:
        """The editor's text changed. Update at once while that is cheap, and say so;
        otherwise hand the build to a worker thread (keys that arrive meanwhile are folded
        into the next build)."""
        session = host(self).session
        if session is None:
            return False
        if self._building:
            self._stale = True
            return False
        if self._update_cost < self.INLINE_BUDGET_S and not self._pending:
            self._update()
            return True
        self._building = True
        self._build_in_background(session.tokenizer, self._editor().text, self.view,
                                  self._chip_maker())
        return False

    def on_text_area_selection_changed(self, event: TextArea.SelectionChanged) -> None:
        # An edit moves the cursor too; the view update that follows places it.
        if (event.text_area.id == "tok-input" and self.view is not None
                and self.view.text == event.text_area.text):
            self._show_cursor(self._cursor_token())

    def _show_cursor(self, index: int) -> None:
        self.query_one(ChipView).set_cursor(index)
        self._show_stats(index)

    def on_resize(self) -> None:
        # the counts and the cursor line are fitted to the width: fit them again when it changes
        if self.view is not None and self.view.text == self._editor().text:
            self.call_after_refresh(self._refit_stats)

    def _refit_stats(self) -> None:
        if self.query_one("#tok-stats").content_size.width != self._stats_width:
            self._show_stats(self._cursor_token())

    def _show_stats(self, cursor: int) -> None:
        """The counts, and a line on the token at the cursor (the stats line is redrawn with
        every edit anyway; a border title would redraw the whole chip box)."""
        box = self.query_one("#tok-stats", Static)
        width = self._stats_width = box.content_size.width
        stats = fit_lines(self._stats, width, 2, self.app.console)
        cursor_line = Text(describe_token(self.view, cursor), style="dim")
        if width:   # one line, whatever the width: it must never be pushed out of the box
            cursor_line.truncate(width, overflow="ellipsis")
        stats.append("\n")
        stats.append_text(cursor_line)
        box.update(stats, layout=False)

    def watch_raw(self) -> None:
        self._chips = None
        self.refresh_view()

    def watch_show_ids(self) -> None:
        self._chips = None
        self.refresh_view()

    def refresh_view(self) -> None:
        """Schedule one update after the current message (a model load, a toggle)."""
        if self._building:
            self._stale = True
            return
        if getattr(self.app, "session", None) is None or self._pending:
            return
        self._pending = True
        self.call_later(self._update)

    def _editor(self) -> TextArea:
        return self.query_one("#tok-input", TextArea)

    def _chip_maker(self) -> ChipMaker:
        if self._chips is None:
            self._chips = ChipMaker(self.raw, self.show_ids)
        return self._chips

    def copy_text(self) -> tuple[str, str] | None:
        """(what, text) to copy: the token at the cursor."""
        if self.view is None or not self.view.count:
            return None
        return "the token at the cursor", token_text(self.view, self._cursor_token())

    def _cursor_token(self) -> int:
        area, document = self._editor(), self._editor().document
        if self.view is None or not isinstance(document, Document):
            return -1
        return token_at(self.view, document.get_index_from_location(area.cursor_location))

    def _update(self) -> None:
        self._pending = False
        if self._building:  # the worker's result will be followed by a fresh build
            self._stale = True
            return
        session = host(self).session
        if session is None:
            return
        try:
            state = build_state(session.tokenizer, self._editor().text, self.view,
                                self._chip_maker())
        except Exception as exc:  # never a traceback on screen: say it, keep the last view
            self._show_error(exc)
            return
        self._apply(state)

    def _show_error(self, error: BaseException) -> None:
        message = f"cannot tokenize: {one_line(error)}"
        self.query_one("#tok-stats", Static).update(Text(message, style="red"), layout=False)

    @work(thread=True, group="tokenize-view", exit_on_error=False)
    def _build_in_background(self, tokenizer, text: str, base, chip_maker: ChipMaker) -> None:
        self.post_message(self.Built(build_state(tokenizer, text, base, chip_maker), text))

    def on_tokenize_pane_built(self, message: Built) -> None:
        self._building = False
        text = self._editor().text
        if message.text == text:
            self._apply(message.state)
        else:
            self._update_cost = message.state.cost
        if self._stale or message.text != text:
            self._stale = False
            self.text_changed()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "tokenize-view" and event.state == WorkerState.ERROR:
            self._building = False  # never leave the pane waiting on a failed build
            self._show_error(event.worker.error or RuntimeError("the view could not be built"))

    def _apply(self, state: PaneState) -> None:
        self.view = state.view
        self._update_cost = state.cost
        cursor = self._cursor_token()
        self.query_one(ChipView).show(state.chips, cursor)
        self._stats = state.stats
        self._show_stats(cursor)
        self.query_one("#tok-tensors", Static).update(state.tensors, layout=False)
        if state.word_rows != self.word_rows:  # most keystrokes leave the table as it was
            self.word_rows = state.word_rows
            self.query_one("#tok-words", Static).update(render_words(state.word_rows),
                                                        layout=False)
