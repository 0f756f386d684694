"""ctrl+f — the Inside pane (core.inference.inside): the logit lens as a grid of layers × the
prompt's positions, each cell the layer's top next token tinted by its probability, the
chosen cell's top tokens and ranks under it; b marks what fine-tuning changed. a turns it to
the heads: where each looks from a position, the chosen head's pattern as a heat map; k there
shows what knocking each head out does to the next token. It reads the loaded model (a run's
current weights) on a worker, again when the prompt or the weights change; the output head
reads only the positions on screen, and more as the grid scrolls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static, TextArea

from core.base.errors import UserError, one_line
from tui.panes.host import host
from tui.panes.inside.lens import (
    GlanceReady,
    LensColumns,
    LensFailed,
    LensReady,
    LensStale,
    cell_text,
    end_window,
    fill_grid,
    fill_heads,
    lens_cell,
    names_of,
    on_screen,
    pattern_text,
    read_columns,
    token_name,
)
from tui.render.chips import printable
from tui.widgets.fields import Editor
from tui.widgets.messages import SessionChanged, WeightsChanged

if TYPE_CHECKING:
    from textual.timer import Timer

    from core.model.session import ModelSession

DEFAULT_PROMPT = "Однажды в студёную зимнюю пору"
LENS_HINT = "↑↓←→ the grid · a: lens ↔ heads · b: before training · shift+tab: the prompt"
HEADS_HINT = "↑↓←→ a head · [ ]: position · k: knock-outs · a: lens · shift+tab: the prompt"
TOP = 5


class InsidePane(Vertical):
    BINDINGS = [Binding("a", "toggle_attention", "Lens / attention", show=False),
                Binding("b", "toggle_before", "Before / after training", show=False),
                Binding("k", "toggle_knockouts", "Knock-out map", show=False),
                Binding("left_square_bracket", "move_position(-1)", "Look from the position before", show=False),
                Binding("right_square_bracket", "move_position(1)", "Look from the position after", show=False)]

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
        self._reading_columns = False          # a worker reads more positions of the lens
        self._asked = [0, 0]                   # readings asked for, of the lens and of the heads

    def compose(self) -> ComposeResult:
        yield Editor(DEFAULT_PROMPT, id="inside-prompt", soft_wrap=True)
        yield DataTable(id="inside-grid", cursor_type="cell", zebra_stripes=False, fixed_columns=1)
        yield Static(id="inside-cell")
        yield Static(LENS_HINT, id="inside-hint")

    def on_mount(self) -> None:
        prompt = self.query_one("#inside-prompt", TextArea)
        prompt.move_cursor(prompt.document.end)   # typing goes on from the prompt's end
        grid = self.query_one("#inside-grid", DataTable)
        grid.border_title = "the logit lens: each block's top next token"
        self.query_one("#inside-cell").border_title = "the cell"
        self.watch(grid, "scroll_x", self.read_on_screen, init=False)

    def on_resize(self) -> None:
        self.read_on_screen()

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
        grid = self.query_one("#inside-grid", DataTable)
        # the same prompt keeps its place; a new one opens at its end (the grid's width here)
        same = self.result is not None and self.result.prompt == prompt and not self.attention
        window = on_screen(grid) if same else grid.scrollable_content_region.width
        self._asked = asked = [self._asked[0] + 1, self._asked[1] + 1]   # answers to older ones are dropped
        self.app.run_worker(lambda: self._read(session, prompt, glance, before, knockouts, window, asked),
                            thread=True, exclusive=True, group="inside", name="inside")

    def _start_head(self) -> None:
        """Another head or position chosen: only where the heads look is read again; the lens
        and the knock-out map stay."""
        session, glance, chosen, position = host(self).session, self.glance, self.chosen, self.position
        if session is None or glance is None:
            return
        self._asked[1] += 1
        asked = self._asked[1]
        self.app.run_worker(lambda: self._read_head(session, glance, chosen, position, asked), thread=True,
                            exclusive=True, group="inside", name="inside")

    def _read_head(self, session: ModelSession, glance: GlanceReady, chosen: tuple[int, int],
                   position: int, asked: int) -> None:
        from core.inference.inside import attention_glance, prompt_ids

        try:
            ids = prompt_ids(session, glance.prompt)
            looks, pattern = attention_glance(session, ids, position, chosen)
        except Exception as exc:   # one line, never a traceback on screen
            self.post_message(LensFailed(str(exc) if isinstance(exc, UserError) else one_line(exc)))
            return
        self.post_message(GlanceReady(glance.prompt, position, chosen, looks,
                                      pattern.tolist() if pattern is not None else [], glance.delta, asked))

    def _read(self, session: ModelSession, prompt: str, glance: tuple[int, tuple[int, int]] | None,
              before: bool, knockouts: bool | list[list[float]], window: range | int,
              asked: list[int]) -> None:
        """Worker thread: the lens of `prompt` at the positions of `window` (a range, or a
        width: the positions its end can show in so many cells), where the heads look and the
        lens of the weights as loaded, when asked — posted back. `knockouts`: False, True (make the map), or the map already made
        for this prompt and weights."""
        from core.inference.inside import (
            LensReader,
            attention_glance,
            head_knockouts,
            prompt_ids,
        )
        from core.model.weights import base_weights

        try:
            ids = prompt_ids(session, prompt)
            tokens = [token_name(session.tokenizer, i) for i in ids]
            positions = range(0) if glance is not None else window if isinstance(window, range) \
                else end_window(tokens, window)   # the heads' view reads no lens cells
            reader = LensReader(session, ids, TOP)
            reader.read(positions)
            base_reader = LensReader(session, ids, TOP, base_weights) if before else None
            if base_reader is not None:
                base_reader.read(positions)
            looked = None
            if glance is not None:
                position = glance[0] if 0 <= glance[0] < len(ids) else len(ids) - 1
                looks, pattern = attention_glance(session, ids, position, glance[1])
                delta = (knockouts if isinstance(knockouts, list) else
                         head_knockouts(session, ids, reader.model_row[-1].top[0][0])[1] if knockouts else None)
                looked = (position, looks, pattern.tolist() if pattern is not None else [], delta)
        except UserError as exc:
            self.post_message(LensFailed(str(exc)))
            return
        except Exception as exc:   # one line, never a traceback on screen
            self.post_message(LensFailed(one_line(exc)))
            return
        names = names_of(session, dict(zip(ids, tokens)),
                         [reader.columns, base_reader.columns if base_reader else {}], reader.model_row)
        self.post_message(LensReady(prompt, tokens, reader.known(), names, reader,
                                    base_reader.known() if base_reader is not None else None, base_reader,
                                    asked[0]))
        if looked is not None and glance is not None:
            self.post_message(GlanceReady(prompt, looked[0], glance[1], looked[1], looked[2], looked[3],
                                          asked[1]))

    def read_on_screen(self) -> None:
        """Read the positions in view and the cursor's, where not read yet."""
        if self.result is None or self.attention:
            return
        grid = self.query_one("#inside-grid", DataTable)
        shown = on_screen(grid)
        self._read_positions([*shown, grid.cursor_coordinate.column - 1])

    def _read_positions(self, positions: list[int]) -> None:
        """Read those of `positions` not read yet, on a worker (one at a time: the next asks again)."""
        result = self.result
        if result is None or self._reading_columns:
            return
        wanted = sorted({p for p in positions if 0 <= p < len(result.tokens) and result.lens[0][p] is None})
        if not wanted:
            return
        self._reading_columns = True
        readers = (result.reader, result.base_reader)
        self.app.run_worker(lambda: self.post_message(read_columns(readers, wanted)), thread=True,
                            group="inside-columns", name="inside-columns")

    def settled(self) -> bool:
        """The lens on screen is read: every position in view has its cells, none is being read."""
        result = self.result
        if result is None or self._reading_columns:
            return False
        shown = on_screen(self.query_one("#inside-grid", DataTable))
        return self.attention or all(result.lens[0][p] is not None for p in shown)

    def on_lens_columns(self, message: LensColumns) -> None:
        self._reading_columns = False
        result = self.result
        if result is None or message.reader is not result.reader:
            self.read_on_screen()
            return
        result.names.update(message.names)
        grid = self.query_one("#inside-grid", DataTable)
        for position, cells in message.columns.items():
            for layer, cell in enumerate(cells):
                result.lens[layer][position] = cell
                if result.base is not None and message.base is not None:
                    result.base[layer][position] = message.base[position][layer]
                if not self.attention:
                    grid.update_cell(str(layer), str(position), lens_cell(result, layer, position, cell),
                                     update_width=True)
        if not self.attention:
            self.show_cell()
        self.read_on_screen()

    def on_lens_stale(self, message: LensStale) -> None:
        self._reading_columns = False
        self.schedule()

    def on_lens_failed(self, message: LensFailed) -> None:
        self._reading_columns = False
        self.query_one("#inside-cell", Static).update(Text(message.error, style="red"))

    def on_lens_ready(self, message: LensReady) -> None:
        if message.asked != self._asked[0]:   # a worker since started reads it again
            return
        self.result = message
        if not self.attention:
            self._draw_lens(message)

    def _draw_lens(self, result: LensReady) -> None:
        grid = self.query_one("#inside-grid", DataTable)
        grid.border_title = "the logit lens: each block's top next token"
        fill_grid(grid, result)
        self.show_cell()

    def on_glance_ready(self, message: GlanceReady) -> None:
        if message.asked != self._asked[1] or not self.attention or self.result is None or message.prompt != self.result.prompt:
            return
        fresh = self.glance is None or self.glance.position != message.position \
            or self.glance.prompt != message.prompt or (self.glance.delta is None) != (message.delta is None)
        self.glance = message
        if fresh:
            fill_heads(self.query_one("#inside-grid", DataTable), self.result, message)
        box = self.query_one("#inside-cell", Static).content_size
        self.query_one("#inside-cell", Static).update(
            pattern_text(self.result, message, max(box.width, 8), max(box.height - 1, 1)))

    def action_move_position(self, step: int) -> None:
        """[ and ], among the heads: where they look from the position before or after."""
        if self.attention and self.glance is not None and self.result is not None:
            self.position = min(max(self.glance.position + step, 0), len(self.result.tokens) - 1)
            self._start_head()

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
        self.query_one("#inside-hint", Static).update(HEADS_HINT if self.attention else LENS_HINT)
        if self.attention:
            self.position = max(grid.cursor_coordinate.column - 1, 0)
            self.glance = None
            self._start()
        else:
            self._draw_lens(self.result)
            self.read_on_screen()

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
            if cell is None:
                self.query_one("#inside-cell", Static).update(Text("reading…", style="dim"))
                self._read_positions([column - 1])
                return
            text = cell_text(result, row, column - 1, cell)
            before = result.base[row][column - 1] if result.base is not None else None
            if before is not None:
                base = before.top[0]
                text.append(f" · as loaded: {printable(result.names[base[0]])!r} {base[1]:.1%}",
                            style="italic")
            self.query_one("#inside-cell", Static).update(text)

    def copy_text(self) -> tuple[str, str] | None:
        """(what, text) to copy: the chosen cell's details."""
        if self.result is None:
            return None
        return "the chosen cell", str(self.query_one("#inside-cell", Static).render())
