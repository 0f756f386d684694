"""What the model is trained on: the rows of the Train pane's data exactly as its batches carry
them, as token chips — the tokens the loss covers in colour, the others (a dialogue's
prompts, the row's first token, turns cut to fit) dimmed and struck through — one row at a
time, paged with ←/→."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Static

from core.data.rows import trained_row
from core.tokens.pieces import piece_table
from tui.panes.host import host
from tui.render.chips import sample_text
from tui.widgets.windows import Window


class SamplesScreen(Window):
    DEFAULT_CSS = """
    SamplesScreen { align: center middle; }
    #samples-box { width: 96%; height: 90%; border: thick $primary; background: $surface; }
    #samples-title, #samples-legend { padding: 0 1; }
    #samples-legend { color: $text-muted; }
    #samples-scroll { height: 1fr; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,q,ctrl+w", "dismiss", "Close"),
        Binding("right,pagedown,n", "page(1)", "Next row"),
        Binding("left,pageup,p", "page(-1)", "Previous row"),
        Binding("home", "page(-1_000_000_000)", "First row", show=False),
        Binding("end", "page(1_000_000_000)", "Last row", show=False),
        Binding("t", "switch_split", "Train / test rows"),
    ]

    def __init__(self, prepared, block: int, tokenizer) -> None:
        super().__init__()
        self.prepared, self.block, self.tokenizer = prepared, block, tokenizer
        self.table = piece_table(tokenizer)
        pad = tokenizer.pad_token_id
        self.pad = pad if pad is not None else tokenizer.eos_token_id
        self.split, self.index = "train", 0

    def compose(self) -> ComposeResult:
        with Vertical(id="samples-box"):
            yield Label(id="samples-title")
            yield Label("scored: in colour · not scored: dimmed, struck through · "
                        "←/→ row · t train/test · Esc closes", id="samples-legend")
            with VerticalScroll(id="samples-scroll"):
                yield Static(id="samples-row")

    def on_mount(self) -> None:
        self.show_row()

    def rows(self):
        return self.prepared.train_rows if self.split == "train" else self.prepared.test_rows

    def show_row(self) -> None:
        rows, mode = self.rows(), self.prepared.stats["mode"]
        title = self.query_one("#samples-title", Label)
        body = self.query_one("#samples-row", Static)
        if len(rows) == 0:
            title.update(f"{self.split}: no rows")
            body.update("")
            return
        ids, scored = trained_row(rows, self.index, self.pad)
        kind = ("a block of the joined texts (</s> ends each)" if mode == "pack"
                else "one text, cut to the block")
        title.update(Text.assemble(
            (f"{self.split} row {self.index + 1:,} of {len(rows):,}", "bold"),
            f" · {len(ids)} tokens, {sum(scored)} scored · {kind} of ≤ {self.block}"))
        body.update(sample_text(self.table, ids, scored))
        self.query_one("#samples-scroll").scroll_home(animate=False)

    def action_page(self, step: int) -> None:
        last = max(len(self.rows()) - 1, 0)
        self.index = min(max(self.index + step, 0), last)
        self.show_row()

    def action_switch_split(self) -> None:
        self.split = "test" if self.split == "train" else "train"
        self.index = 0
        self.show_row()


def toggle_samples(pane: Widget, prepared: tuple | None) -> None:
    """ctrl+w on the Train tab: the window on the data field's rows, or closed when open."""
    app = pane.app
    if isinstance(app.screen, SamplesScreen):
        app.screen.dismiss()
        return
    host(pane).show_tab("train")
    if prepared is None:
        app.notify("the data preview is not ready yet (or the data has a problem: see the preview)",
                   title="Samples as trained", severity="warning")
        return
    app.push_screen(SamplesScreen(*prepared))
