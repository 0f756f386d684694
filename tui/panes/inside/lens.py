"""The Inside pane's lens as the grid draws it: the messages its workers post, a cell's
tint and text, the chosen cell's details, and which of the prompt's positions are on screen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from core.base.errors import UserError, one_line
from tui.render.chips import printable

if TYPE_CHECKING:
    from core.inference.inside import HeadLook, LensCell, LensReader
    from core.model.session import ModelSession

CELL_WIDTH = 9   # a token's text in a grid cell, at most
LAYER_WIDTH = 9  # the fixed column of layer names ("block 12" and its padding), at least


@dataclass
class LensReady(Message):
    """The lens of `prompt`, built on a worker (dropped if the pane is gone). A cell is None
    until its position is read (the pane asks for what is on screen)."""
    prompt: str
    tokens: list[str]          # the prompt's tokens as text
    lens: list[list[LensCell | None]]
    names: dict[int, str]      # id → text of every token the cells name
    reader: LensReader
    base: list[list[LensCell | None]] | None = None   # the weights as loaded, when asked for
    base_reader: LensReader | None = None
    asked: int = 0             # which reading of the pane's this answers: a later one wins


@dataclass
class LensColumns(Message):
    """More positions of `reader`'s lens read: position → cells of rows 0…L-1."""
    reader: LensReader
    columns: dict[int, list[LensCell]]
    base: dict[int, list[LensCell]] | None
    names: dict[int, str]


class LensStale(Message):
    """The weights changed under the lens on screen: it is read again."""


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
    asked: int = 0             # which reading of the pane's this answers: a later one wins


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


def lens_cell(result: LensReady, layer: int, position: int, cell: LensCell | None) -> Text:
    """A grid cell: the top token, tinted; marked • where the weights as loaded (shown
    with b) predicted another; a dot until its position is read."""
    if cell is None:
        return Text("·", style="dim")
    base = result.base[layer][position] if result.base is not None else None
    changed = base is not None and base.top[0][0] != cell.top[0][0]
    return Text(("•" if changed else "") + printable(result.names[cell.top[0][0]])[:CELL_WIDTH],
                style=tint(cell.top[0][1]) + (" bold underline" if changed else ""))


def on_screen(grid: DataTable) -> range:
    """The prompt's positions whose columns the grid shows now."""
    columns = grid.ordered_columns
    fixed = sum(column.get_render_width(grid) for column in columns[:grid.fixed_columns])
    left, right = grid.scroll_x + fixed, grid.scroll_x + grid.scrollable_content_region.width
    x, shown = fixed, []
    for position, column in enumerate(columns[grid.fixed_columns:]):
        width = column.get_render_width(grid)
        if x + width > left and x < right:
            shown.append(position)
        x += width
    return range(shown[0], shown[-1] + 1) if shown else range(0)


def names_of(session: ModelSession, known: dict[int, str], columns: list[dict[int, list[LensCell]]],
             model_row: list[LensCell]) -> dict[int, str]:
    """id → text of every token the cells name, and of those already `known`."""
    named = {i for cell in model_row for i, _ in cell.top} | {
        i for read in columns for cells in read.values() for cell in cells for i, _ in cell.top}
    return {**known, **{i: token_name(session.tokenizer, i) for i in named - known.keys()}}


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
    final = result.reader.model_row[position].top[0][0]
    text.append(f"final {printable(result.names[final])!r}: rank {cell.final[0]:,}, {cell.final[1]:.1%}",
                style="default")
    if cell.actual is not None:
        following = result.tokens[position + 1]
        text.append(f" · next in the prompt {printable(following)!r}: rank {cell.actual[0]:,}, "
                    f"{cell.actual[1]:.1%}", style="default")
    return text


def pattern_text(result: LensReady, glance: GlanceReady, width: int, lines: int) -> Text:
    """The chosen head: where it looks, then its weights over the prompt as a heat map of
    half-block cells (two query rows per line, a key per column), as many of the last
    rows and keys as fit the box."""
    block, head = glance.chosen
    look = glance.looks[block][head]
    tokens = result.tokens
    text = Text(f"block {block + 1} head {head + 1} from {printable(tokens[glance.position])!r}: "
                f"most on {printable(tokens[look.most])!r} ({look.weight:.0%}), entropy "
                f"{look.entropy:.2f} bits\n", style="bold")
    # the whole prompt where it fits, else the rows and keys around the chosen position
    count, at = len(tokens), glance.position
    if count > width or count > 2 * lines:
        lines = max(lines - 1, 1)   # a line says which part shows
    first_key = min(max(0, at + 1 - width // 2), max(0, count - width))
    keys = range(first_key, min(count, first_key + width))
    first_row = min(max(0, at - lines), max(0, count - 2 * lines))
    last = min(count, first_row + 2 * lines) - 1
    if count > len(keys) or count > last + 1 - first_row:
        text.append(f"queries {first_row}–{last} × keys {keys.start}–{keys.stop - 1} of {count} "
                    "([ ] moves the position)\n", style="dim")
    for q in range(first_row, last + 1, 2):
        for k in keys:
            upper = glance.pattern[q][k] if k <= q else 0.0
            lower = glance.pattern[q + 1][k] if q + 1 <= last and k <= q + 1 else 0.0
            text.append("▀", style=f"{tint(upper).removeprefix('on ')} {tint(lower)}")
        text.append("\n")
    return text


def fill_grid(grid: DataTable, result: LensReady) -> None:
    """The lens into the grid, a row per layer and a column per position. The cursor stays
    where it was; on a new prompt it goes to the last position's top row."""
    row, column = grid.cursor_coordinate
    fresh = len(grid.columns) != len(result.tokens) + 1 or not grid.row_count
    grid.clear(columns=True)
    grid.add_column("layer", key="layer")
    for position, token in enumerate(result.tokens):
        grid.add_column(printable(token)[:CELL_WIDTH], key=str(position))
    layers = len(result.lens)
    for layer, cells in enumerate(result.lens):
        name = "embed" if layer == 0 else ("model" if layer == layers - 1 else f"block {layer}")
        grid.add_row(name, *(lens_cell(result, layer, position, cell)
                             for position, cell in enumerate(cells)), key=str(layer))
    # the cursor stays where it was; on a new prompt, the last position's top row
    grid.move_cursor(row=layers - 1 if fresh else min(row, layers - 1),
                     column=len(result.tokens) if fresh else min(max(column, 1), len(result.tokens)))


def read_columns(readers: tuple[LensReader, LensReader | None], positions: list[int]) -> Message:
    """Worker thread: more positions of the lens on screen (and of the weights as loaded), as
    the message to post back."""
    from core.inference.inside import StaleLens

    reader, base_reader = readers
    try:
        columns = reader.read(positions)
        base = base_reader.read(positions) if base_reader is not None else None
    except StaleLens:
        return LensStale()
    except Exception as exc:   # one line, never a traceback on screen
        return LensFailed(str(exc) if isinstance(exc, UserError) else one_line(exc))
    return LensColumns(reader, columns, base, names_of(reader.session, {}, [columns, base or {}], []))


def end_window(tokens: list[str], width: int) -> range:
    """The positions the grid can show at the end of a prompt of `tokens` in `width` cells,
    before any cell is read: a column is at least as wide as its token and its padding."""
    room, start = width - LAYER_WIDTH, len(tokens)
    while start > 0 and room > 0:
        start -= 1
        room -= min(len(printable(tokens[start])), CELL_WIDTH) + 2
    return range(start, len(tokens))


def fill_heads(grid: DataTable, result: LensReady, glance: GlanceReady) -> None:
    """The heads into the grid, a row per block and a column per head: where each looks from
    the glance's position — or, with the knock-out map, what its absence does."""
    final = result.names[result.reader.model_row[-1].top[0][0]]
    grid.border_title = (f"where each head looks from position {glance.position}, "
                         f"{printable(result.tokens[glance.position])!r} ([ ]: another)"
                         if glance.delta is None else
                         f"Δ log p({printable(final)!r}) at the end, each head knocked out")
    grid.clear(columns=True)
    grid.add_column("block", key="block")
    for head in range(len(glance.looks[0])):
        grid.add_column(f"head {head + 1}", key=str(head))
    for block, heads in enumerate(glance.looks):
        grid.add_row(f"block {block + 1}", *(
            Text(f"{glance.delta[block][head]:+.3f}", style=shift(glance.delta[block][head]))
            if glance.delta is not None else
            Text(f"{printable(result.tokens[look.most])[:6]} {look.weight:.0%}",
                 style=tint(look.weight)) for head, look in enumerate(heads)))
    grid.move_cursor(row=glance.chosen[0], column=glance.chosen[1] + 1)
