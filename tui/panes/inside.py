"""ctrl+f — the Inside pane (core.inference.inside): the logit lens as a grid of layers × the
prompt's positions, each cell the layer's top next token tinted by its probability, the
chosen cell's top tokens and ranks under it; b marks what fine-tuning changed. a turns it to
the heads: where each looks from a position, the chosen head's pattern as a heat map; k there
shows what knocking each head out does to the next token. It reads the loaded model (a run's
current weights) on a worker, again when the prompt or the weights change.
The module is long because its three views share one grid, one cell box and one worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static, TextArea

from core.base.errors import UserError, one_line
from tui.panes.host import host
from tui.render.chips import printable
from tui.widgets.fields import Editor
from tui.widgets.messages import SessionChanged, WeightsChanged

if TYPE_CHECKING:
    from textual.timer import Timer

    from core.inference.inside import HeadLook, LensCell
    from core.model.session import ModelSession

DEFAULT_PROMPT = "Однажды в студёную зимнюю пору"
TOP = 5
CELL_WIDTH = 9   # a token's text in a grid cell, at most


@dataclass
class LensReady(Message):
    """The lens of `prompt`, built on a worker (dropped if the pane is gone)."""
    prompt: str
    tokens: list[str]          # the prompt's tokens as text
    lens: list[list[LensCell]]
    names: dict[int, str]      # id → text of every token the cells name
    base: list[list[LensCell]] | None = None   # the weights as loaded, when asked for


@dataclass
class LensFailed(Message):
    error: str


@dataclass
class GlanceReady(Message):
    """Where every head looks from `position`, and the chosen head's whole pattern."""
    prompt: str
    position: int
    chosen: tuple[int, int]          # (block, head), 0-based
    looks: list[list[HeadLook]]
    pattern: list[list[float]]       # (T, T) of the chosen head
    # with k: Δ log p of the model's next token at the last position, each head knocked out
    delta: list[list[float]] | None = None


def token_name(tokenizer, token_id: int) -> str:
    """A token as text; a piece that is part of a character shows its bytes (<0xD0>)."""
    from core.tokens.pieces import piece_table

    raw, data, special = piece_table(tokenizer).get(token_id)
    if special:
        return raw
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in data)


def shift(delta: float) -> str:
    """A knock-out's cell: red where the head's absence lowers the prediction, blue where it
    raises it, brighter the more."""
    size = int(40 + 160 * min(abs(delta) if delta == delta else 0.0, 1.0) ** 0.5)
    return f"on rgb({size},0,0)" if delta < 0 else f"on rgb(0,0,{size})"


def tint(probability: float) -> str:
    """A cell's background: darker for a doubtful guess, brighter for a sure one."""
    sure = probability if 0.0 <= probability <= 1.0 else 0.0   # NaN too
    level = int(40 + 160 * sure ** 0.5)
    return f"on rgb(0,{level // 2},{level})"


class InsidePane(Vertical):
    BINDINGS = [Binding("a", "toggle_attention", "Lens / attention", show=False),
                Binding("b", "toggle_before", "Before / after training", show=False),
                Binding("k", "toggle_knockouts", "Knock-out map", show=False)]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.result: LensReady | None = None   # the lens on screen
        self.glance: GlanceReady | None = None   # the heads' view, once asked for
        self.attention = False                 # the grid shows the heads, not the lens
        self.before = False                    # the lens marks what training changed
        self.knockouts = False                 # the heads' grid shows the knock-out map
        self.position = -1                     # the heads look from here (-1: the last token)
        self.chosen = (0, 0)                   # the head whose pattern is drawn
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Editor(DEFAULT_PROMPT, id="inside-prompt", soft_wrap=True)
        yield DataTable(id="inside-grid", cursor_type="cell", zebra_stripes=False)
        yield Static(id="inside-cell")
        yield Static("↑↓←→ the grid · a: lens ↔ heads · b: before training · shift+tab: the prompt",
                     id="inside-hint")

    def on_mount(self) -> None:
        prompt = self.query_one("#inside-prompt", TextArea)
        prompt.move_cursor(prompt.document.end)   # typing goes on from the prompt's end
        self.query_one("#inside-grid").border_title = "the logit lens: each block's top next token"
        self.query_one("#inside-cell").border_title = "the cell"

    def commands(self):
        yield SystemCommand("Knock out heads", "Keep attention heads out of the model (block.head, "
                            "e.g. 1.2): Generate and Chat then run without them", self.ask_knock_out)
        yield SystemCommand("Put back knocked-out heads", "Every head of the model back in",
                            lambda: self.knock_out(""))

    def ask_knock_out(self) -> None:
        from core.inference.inside import heads_text
        from tui.widgets.dialogs import AskScreen

        session = host(self).session
        now = heads_text(session.knocked_out) if session is not None else ""
        self.app.push_screen(AskScreen("Heads to keep out, as block.head (empty: none)", now,
                                       "1.2 2.3"), self.knock_out)

    def knock_out(self, text: str | None) -> None:
        """Knock out the heads `text` names (all back when it is empty): the model line says
        which are out, and every pane reads the model again."""
        from core.inference.inside import knock_out, parse_heads

        session = host(self).session
        if text is None or session is None:
            return
        if host(self).training():
            self.app.notify("a run is training every head: stop it first (F9)", title="Knock out heads",
                            severity="warning")
            return
        try:
            knock_out(session, parse_heads(text))
        except UserError as exc:
            self.app.notify(str(exc), title="Knock out heads", severity="error")
            return
        self.app.post_message(WeightsChanged())

    def on_session_changed(self, message: SessionChanged) -> None:
        self.schedule()

    def on_weights_changed(self, message: WeightsChanged) -> None:
        self.glance = None   # its knock-out map was of the weights before
        self.schedule()

    @on(TextArea.Changed, "#inside-prompt")
    def prompt_changed(self) -> None:
        self.schedule()

    def schedule(self) -> None:
        """Read the prompt again in a moment (keys typed meanwhile fold into one reading)."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.3, self._start)

    def _start(self) -> None:
        session = host(self).session
        if session is None:
            return
        prompt = self.query_one("#inside-prompt", TextArea).text
        glance = (self.position, self.chosen) if self.attention else None
        known = self.glance.delta if self.glance is not None and self.glance.prompt == prompt else None
        knockouts = (known or True) if self.attention and self.knockouts else False
        before = self.before
        self.app.run_worker(lambda: self._read(session, prompt, glance, before, knockouts),
                            thread=True, exclusive=True, group="inside", name="inside")

    def _start_head(self) -> None:
        """Another head chosen: only its pattern is read again; the lens and the map stay."""
        session, glance, chosen = host(self).session, self.glance, self.chosen
        if session is None or glance is None:
            return
        self.app.run_worker(lambda: self._read_head(session, glance, chosen), thread=True,
                            exclusive=True, group="inside", name="inside")

    def _read_head(self, session: ModelSession, glance: GlanceReady, chosen: tuple[int, int]) -> None:
        from core.inference.inside import attention_glance, prompt_ids

        try:
            ids = prompt_ids(session, glance.prompt)
            looks, pattern = attention_glance(session, ids, glance.position, chosen)
        except Exception as exc:   # one line, never a traceback on screen
            self.post_message(LensFailed(str(exc) if isinstance(exc, UserError) else one_line(exc)))
            return
        self.post_message(GlanceReady(glance.prompt, glance.position, chosen, looks,
                                      pattern.tolist() if pattern is not None else [], glance.delta))

    def _read(self, session: ModelSession, prompt: str, glance: tuple[int, tuple[int, int]] | None,
              before: bool, knockouts: bool | list[list[float]]) -> None:
        """Worker thread: the lens of `prompt` (and where the heads look, and the lens of the
        weights as loaded, when asked), posted back. `knockouts`: False, True (make the map),
        or the map already made for this prompt and weights."""
        from core.inference.inside import (
            attention_glance,
            base_lens,
            head_knockouts,
            logit_lens,
            prompt_ids,
        )

        try:
            ids = prompt_ids(session, prompt)
            lens = logit_lens(session, ids, TOP)
            base = base_lens(session, ids, TOP) if before else None
            looked = None
            if glance is not None:
                position = glance[0] if 0 <= glance[0] < len(ids) else len(ids) - 1
                looks, pattern = attention_glance(session, ids, position, glance[1])
                delta = (knockouts if isinstance(knockouts, list) else
                         head_knockouts(session, ids, lens[-1][-1].top[0][0])[1] if knockouts else None)
                looked = (position, looks, pattern.tolist() if pattern is not None else [], delta)
        except UserError as exc:
            self.post_message(LensFailed(str(exc)))
            return
        except Exception as exc:   # one line, never a traceback on screen
            self.post_message(LensFailed(one_line(exc)))
            return
        named = set(ids) | {i for rows in (lens, base or []) for row in rows for cell in row
                            for i, _ in cell.top}
        names = {i: token_name(session.tokenizer, i) for i in named}
        self.post_message(LensReady(prompt, [names[i] for i in ids], lens, names, base))
        if looked is not None and glance is not None:
            self.post_message(GlanceReady(prompt, looked[0], glance[1], looked[1], looked[2], looked[3]))

    def on_lens_failed(self, message: LensFailed) -> None:
        self.query_one("#inside-cell", Static).update(Text(message.error, style="red"))

    def on_lens_ready(self, message: LensReady) -> None:
        self.result = message
        if not self.attention:
            self._draw_lens(message)

    def _draw_lens(self, result: LensReady) -> None:
        grid = self.query_one("#inside-grid", DataTable)
        grid.border_title = "the logit lens: each block's top next token"
        row, column = grid.cursor_coordinate
        fresh = len(grid.columns) != len(result.tokens) + 1 or not grid.row_count
        grid.clear(columns=True)
        grid.add_column("layer", key="layer")
        for position, token in enumerate(result.tokens):
            grid.add_column(printable(token)[:CELL_WIDTH], key=str(position))
        layers = len(result.lens)
        for layer, cells in enumerate(result.lens):
            name = "embed" if layer == 0 else ("model" if layer == layers - 1 else f"block {layer}")
            grid.add_row(name, *(self._lens_cell(result, layer, position, cell)
                                 for position, cell in enumerate(cells)))
        # the cursor stays where it was; on a new prompt, the last position's top row
        grid.move_cursor(row=layers - 1 if fresh else min(row, layers - 1),
                         column=len(result.tokens) if fresh else min(max(column, 1), len(result.tokens)))
        self.show_cell()

    def on_glance_ready(self, message: GlanceReady) -> None:
        if not self.attention or self.result is None or message.prompt != self.result.prompt:
            return
        fresh = self.glance is None or self.glance.position != message.position \
            or self.glance.prompt != message.prompt or (self.glance.delta is None) != (message.delta is None)
        self.glance = message
        if fresh:
            grid = self.query_one("#inside-grid", DataTable)
            final = self.result.names[self.result.lens[-1][-1].top[0][0]]
            grid.border_title = (f"where each head looks from position {message.position}, "
                                 f"{printable(self.result.tokens[message.position])!r}"
                                 if message.delta is None else
                                 f"Δ log p({printable(final)!r}) at the end, each head knocked out")
            grid.clear(columns=True)
            grid.add_column("block", key="block")
            for head in range(len(message.looks[0])):
                grid.add_column(f"head {head + 1}", key=str(head))
            for block, heads in enumerate(message.looks):
                grid.add_row(f"block {block + 1}", *(
                    Text(f"{message.delta[block][head]:+.3f}", style=shift(message.delta[block][head]))
                    if message.delta is not None else
                    Text(f"{printable(self.result.tokens[look.most])[:6]} {look.weight:.0%}",
                         style=tint(look.weight)) for head, look in enumerate(heads)))
            grid.move_cursor(row=message.chosen[0], column=message.chosen[1] + 1)
        self.query_one("#inside-cell", Static).update(self._pattern_text(message))

    @staticmethod
    def _lens_cell(result: LensReady, layer: int, position: int, cell: LensCell) -> Text:
        """A grid cell: the top token, tinted; marked • where the weights as loaded (shown
        with b) predicted another."""
        changed = result.base is not None and result.base[layer][position].top[0][0] != cell.top[0][0]
        return Text(("•" if changed else "") + printable(result.names[cell.top[0][0]])[:CELL_WIDTH],
                    style=tint(cell.top[0][1]) + (" bold underline" if changed else ""))

    def action_toggle_before(self) -> None:
        """b: mark the cells where training changed the prediction — or stop marking them."""
        self.before = not self.before
        self.query_one("#inside-grid", DataTable).border_subtitle = \
            "• the weights as loaded predicted another token" if self.before else ""
        self._start()

    def action_toggle_knockouts(self) -> None:
        """k, among the heads: each head's knock-out effect on the model's next token — or
        where they look again."""
        if self.attention:
            self.knockouts = not self.knockouts
            self._start()

    def action_toggle_attention(self) -> None:
        """a: the grid shows where each head looks from the chosen position — or the lens again."""
        if self.result is None:
            return
        grid = self.query_one("#inside-grid", DataTable)
        self.attention = not self.attention
        self.set_class(self.attention, "-map")
        if self.attention:
            self.position = max(grid.cursor_coordinate.column - 1, 0)
            self.glance = None
            self._start()
        else:
            self._draw_lens(self.result)

    @on(DataTable.CellHighlighted, "#inside-grid")
    def show_cell(self) -> None:
        result = self.result
        if result is None:
            return
        row, column = self.query_one("#inside-grid", DataTable).cursor_coordinate
        column = max(column, 1)   # the first column names the rows
        if self.attention:
            if self.glance is not None and (row, column - 1) != self.chosen:
                self.chosen = (row, column - 1)
                self._start_head()
            return
        if row < len(result.lens) and column - 1 < len(result.tokens):
            cell = result.lens[row][column - 1]
            text = cell_text(result, row, column - 1, cell)
            if result.base is not None:
                base = result.base[row][column - 1].top[0]
                text.append(f" · as loaded: {printable(result.names[base[0]])!r} {base[1]:.1%}",
                            style="italic")
            self.query_one("#inside-cell", Static).update(text)

    def _pattern_text(self, glance: GlanceReady) -> Text:
        """The chosen head: where it looks, then its weights over the prompt as a heat map of
        half-block cells (two query rows per line, a key per column), as many of the last
        rows and keys as fit the box."""
        assert self.result is not None
        block, head = glance.chosen
        look = glance.looks[block][head]
        tokens = self.result.tokens
        text = Text(f"block {block + 1} head {head + 1} from {printable(tokens[glance.position])!r}: "
                    f"most on {printable(tokens[look.most])!r} ({look.weight:.0%}), entropy "
                    f"{look.entropy:.2f} bits\n", style="bold")
        box = self.query_one("#inside-cell", Static).content_size
        width, lines = max(box.width, 8), max(box.height - 1, 1)
        last = len(tokens) - 1   # the whole prompt's rows and keys, the last that fit
        keys = range(max(0, last + 1 - width), last + 1)
        first_row = max(0, last + 1 - 2 * lines)
        for q in range(first_row, last + 1, 2):
            for k in keys:
                upper = glance.pattern[q][k] if k <= q else 0.0
                lower = glance.pattern[q + 1][k] if q + 1 <= last and k <= q + 1 else 0.0
                text.append("▀", style=f"{tint(upper).removeprefix('on ')} {tint(lower)}")
            text.append("\n")
        return text

    def copy_text(self) -> tuple[str, str] | None:
        """(what, text) to copy: the chosen cell's details."""
        if self.result is None:
            return None
        return "the chosen cell", str(self.query_one("#inside-cell", Static).render())


def cell_text(result: LensReady, layer: int, position: int, cell: LensCell) -> Text:
    """The chosen cell in three lines (the pane cuts each to its width): where it is, its top tokens,
    and the ranks there of the final prediction and of the prompt's next token."""
    layers = len(result.lens) - 1
    where = "the embeddings" if layer == 0 else ("the model's output" if layer == layers
                                                  else f"after block {layer} of {layers}")
    text = Text(f"{where} · position {position}, {printable(result.tokens[position])!r}\n",
                style="bold")
    text.append(" · ".join(f"{printable(result.names[i])!r} {p:.1%}" for i, p in cell.top) + "\n",
                style="default")
    final = result.lens[-1][position].top[0][0]
    text.append(f"final {printable(result.names[final])!r}: rank {cell.final[0]:,}, {cell.final[1]:.1%}",
                style="default")
    if cell.actual is not None:
        following = result.tokens[position + 1]
        text.append(f" · next in the prompt {printable(following)!r}: rank {cell.actual[0]:,}, "
                    f"{cell.actual[1]:.1%}", style="default")
    return text
