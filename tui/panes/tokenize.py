"""F2 — the Tokenize pane: text as the model sees it, updated as you type."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content, Span
from textual.reactive import reactive
from textual.widgets import DataTable, Static, TextArea

from tui.chips import chip_label, chip_style

SAMPLE_TEXT = "Нейронная сеть учится предсказывать следующее слово. Привет, мир! 😀"


def render_chips(view, raw: bool, show_ids: bool) -> Content:
    """Alternating chips; a token holding only part of a character shows its bytes.
    Built as Textual Content directly: converting a Rich Text of hundreds of spans costs
    more than the tokenization itself."""
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    for i, tok in enumerate(view.tokens):
        label, style = chip_label(tok, raw), chip_style(i, tok)
        parts.append(label)
        spans.append(Span(pos, pos + len(label), style))
        pos += len(label)
        if show_ids:
            tag = str(tok.id)
            parts.append(tag)
            spans.append(Span(pos, pos + len(tag), style + " dim italic"))
            pos += len(tag)
    return Content("".join(parts), spans)


def render_tensors(tensors, batch) -> Text:
    out = Text()
    rows, cols = tensors.shape
    out.append("tokenizer(text, return_tensors='pt')\n", style="bold")
    out.append(f"input_ids      shape ({rows}, {cols})\n")
    out.append(f"attention_mask shape ({rows}, {cols})\n")
    head = tensors.input_ids[0][:12] if rows else []
    out.append(f"input_ids[0][:12] = {head}\n", style="dim")
    if batch is not None:
        b_rows, b_cols = batch.shape
        out.append(f"\nbatch of {b_rows} lines, padded → ({b_rows}, {b_cols})\n", style="bold")
        for mask in batch.attention_mask[:6]:
            real = sum(mask)
            out.append(f"  {real:>3} real + {b_cols - real:>3} pad  mask ")
            out.append("".join("█" if m else "·" for m in mask[:40]), style="green")
            out.append("\n")
    return out


def build_parts(tokenizer, text: str, raw: bool, show_ids: bool):
    """Everything the pane shows for `text`: (view, chips, stats, most split words, tensors)."""
    from core.tokenview import (
        TensorView,
        most_split,
        single_token_words,
        tensor_view,
        tokenize_view,
    )

    view = tokenize_view(tokenizer, text)
    words = view.words()
    singles = single_token_words(words)
    stats = Text()
    stats.append(f"{view.count} tokens", style="bold")
    stats.append(f" · {len(text)} characters · {view.chars_per_token:.2f} chars/token")
    if words:
        stats.append(f" · {len(words)} words, {len(singles)} of them a single token: ")
        stats.append(", ".join(singles[:8]) + ("…" if len(singles) > 8 else ""), style="italic")
    # One text: its ids are exactly tokenizer(text)'s, so the (1, T) tensors follow from them.
    tensors = TensorView([view.ids], [[1] * view.count])
    lines = [line for line in text.splitlines() if line.strip()]
    batch = tensor_view(tokenizer, lines) if len(lines) > 1 else None
    return (view, render_chips(view, raw, show_ids), stats, most_split(words, 12),
            render_tensors(tensors, batch))


class TokenizePane(Vertical):
    raw = reactive(False)
    show_ids = reactive(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.view = None      # the TokenView on screen
        self.updates = 0      # views applied so far (tests and the latency bench wait on it)
        self._table_rows: list = []
        self._pending = False

    def compose(self) -> ComposeResult:
        yield TextArea(SAMPLE_TEXT, id="tok-input", soft_wrap=True)
        yield Static("waiting for the model…", id="tok-stats")
        with VerticalScroll(id="tok-chips-box"):
            yield Static(id="tok-chips")
        with Horizontal(id="tok-bottom"):
            yield DataTable(id="tok-words", cursor_type="row", zebra_stripes=True)
            yield Static(id="tok-tensors")

    def on_mount(self) -> None:
        # Headless runs (tests, snapshots, benches) need frames that do not blink.
        self.query_one("#tok-input", TextArea).cursor_blink = not self.app.is_headless
        table = self.query_one("#tok-words", DataTable)
        table.add_columns("word", "tokens")
        table.border_title = "most split words"
        self.query_one("#tok-tensors").border_title = "what the model gets"
        self.query_one("#tok-chips-box").border_title = "tokens"

    def on_session(self, session) -> None:
        self.refresh_view()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "tok-input":
            self.refresh_view()

    def watch_raw(self) -> None:
        self.refresh_view()

    def watch_show_ids(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        """Schedule one update after the keystroke has been handled. Keys that arrive while
        an update is pending are coalesced into it, so a burst of typing costs one update."""
        if getattr(self.app, "session", None) is None or self._pending:
            return
        self._pending = True
        self.call_later(self._update)

    def _update(self) -> None:
        self._pending = False
        text = self.query_one("#tok-input", TextArea).text
        self._apply(*build_parts(self.app.session.tokenizer, text, self.raw, self.show_ids))

    def _apply(self, view, chips, stats, split, tensors) -> None:
        self.view = view
        self.query_one("#tok-chips", Static).update(chips)
        self.query_one("#tok-stats", Static).update(stats)
        self.query_one("#tok-tensors", Static).update(tensors)
        rows = [(w.word, str(w.tokens)) for w in split]
        if rows != self._table_rows:  # most keystrokes leave the table as it was
            self._table_rows = rows
            table = self.query_one("#tok-words", DataTable)
            table.clear()
            for row in rows:
                table.add_row(*row)
        self.updates += 1
