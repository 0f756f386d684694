"""How tokens look as chips, shared by the Tokenize pane and `rugpt-tui tokenize`.
(No Textual here: the headless CLI uses it too.)

A `Chip` is a small value: the text shown, a style index into CHIP_STYLES, the id shown
after it ("" when ids are off) and its width in terminal cells (-1 when the label breaks the
line). Chips compare by value, so a laid-out line of chips is its own cache key: a line an
edit did not touch compares equal and is not drawn again.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, NamedTuple

from rich.cells import cell_len

if TYPE_CHECKING:
    from rich.text import Text

    from core.tokens.view import TokenView


class Chip(NamedTuple):
    label: str
    style: int                        # index into CHIP_STYLES
    tag: str                          # the token id shown after the label, or ""
    cells: int                        # width on screen; -1 when the label breaks the line

# Alternating, so neighbouring tokens stand apart; then special tokens; then the token at
# the editor's cursor.
CHIP_STYLES = ("on #1f5f8b", "on #6b3f7a", "bold on #8b2f2f")
CURSOR_STYLE = "bold black on #e0b040"
SPECIAL = 2

# Characters a terminal cannot show in place get a visible stand-in.
_VISIBLE = {" ": "·", "\t": "⇥", "\r": "␍", "\n": "↵\n"}
_VISIBLE.update({chr(c): chr(0x2400 + c) for c in range(32) if chr(c) not in _VISIBLE})
_VISIBLE["\x7f"] = "␡"
_TRANSLATE = str.maketrans(_VISIBLE)

# Running text (generated text, samples) keeps its line breaks and tabs, but a control
# character a model produced (ESC, BEL, a C1 code) is shown, never sent to the terminal.
_SAFE = {chr(c): chr(0x2400 + c) for c in range(32) if chr(c) not in "\n\t"}
_SAFE.update({"\x7f": "␡"}, **{chr(c): "\ufffd" for c in range(0x80, 0xA0)})
_SAFE_TRANSLATE = str.maketrans(_SAFE)


def printable(text: str) -> str:
    """`text` safe to draw: control characters as their visible symbols (␛ for ESC)."""
    return text.translate(_SAFE_TRANSLATE)


def label_for(raw_piece: str, text: str, data: bytes, special: bool, raw: bool) -> str:
    """The vocabulary piece (raw), or the text it stands for with visible spaces, tabs and
    line breaks; a token holding only part of a character shows its bytes, e.g. ‹d0› (a
    SentencePiece `<0xD0>` piece too); a `▁` the tokenizer added before a word shows as ▁."""
    if raw or special:
        return raw_piece
    if not text:
        if raw_piece and set(raw_piece) == {"\u2581"}:
            return raw_piece   # a word marker the tokenizer added: it stands for no character
        return f"‹{data.hex()}›"
    label = text.translate(_TRANSLATE)
    if unicodedata.combining(label[0]) or cell_len(label) == 0:
        label = "◌" + label  # a mark with nothing to sit on would merge into the chip before
    return label


def make_chip(label: str, style: int, tag: str) -> Chip:
    return Chip(label, style, tag, -1 if "\n" in label else cell_len(label) + len(tag))


class ChipMaker:
    """Chips for token views, remembered per (style, token id, text slice): while typing,
    nearly every token was already a chip on the previous keystroke."""

    def __init__(self, raw: bool, show_ids: bool) -> None:
        self.raw, self.show_ids = raw, show_ids
        self._cache: tuple[dict, dict, dict] = ({}, {}, {})

    def chips(self, view: TokenView) -> list[Chip]:
        text, get, cache = view.text, view.table.get, self._cache
        out: list[Chip] = []
        append = out.append
        for i, (tid, start, end) in enumerate(zip(view.ids, view.starts, view.ends)):
            piece = text[start:end]
            by_id = cache[i & 1].get(tid)
            chip = by_id.get(piece) if by_id is not None else None
            if chip is None:
                raw_piece, data, special = get(tid)
                label = label_for(raw_piece, piece, data, special, self.raw)
                chip = make_chip(label, SPECIAL if special else i & 1,
                                 str(tid) if self.show_ids else "")
                cache[i & 1].setdefault(tid, {})[piece] = chip
            append(chip)
        if sum(len(d) for d in cache) > 50_000:  # a long session of pasting: start afresh
            self._cache = ({}, {}, {})
        return out


def _cut(text: str, width: int) -> tuple[str, str]:
    """Split `text` after at most `width` cells (at least one character)."""
    used = 0
    for i, ch in enumerate(text):
        used += cell_len(ch)
        if used > width and i:
            return text[:i], text[i:]
    return text, ""


def flow_chips(chips: list[Chip], width: int) -> tuple[list[tuple[Chip, ...]], list[list[int]]]:
    """Lay chips out like words in a paragraph `width` cells wide: a chip that does not fit
    starts a new line, a chip wider than a line is cut, ↵ ends a line. Returns the lines
    (tuples of chips) and, for each line, which token each of its chips belongs to."""
    width = max(1, width)
    lines: list[tuple[Chip, ...]] = []
    owners: list[list[int]] = []
    line: list[Chip] = []
    owner: list[int] = []
    used = 0

    def new_line() -> None:
        nonlocal line, owner, used
        lines.append(tuple(line))
        owners.append(owner)
        line, owner, used = [], [], 0

    for i, chip in enumerate(chips):
        if 0 <= chip.cells and used + chip.cells <= width:  # the common case: it fits
            line.append(chip)
            owner.append(i)
            used += chip.cells
            continue
        parts = chip.label.split("\n")
        for k, part in enumerate(parts):
            if k:  # a line break inside the token
                new_line()
            piece_tag = chip.tag if k == len(parts) - 1 else ""
            if not part and not piece_tag:
                continue
            if used + cell_len(part) + len(piece_tag) > width and line:
                new_line()
            while cell_len(part) + len(piece_tag) > width - used and cell_len(part) > 1:
                head, part = _cut(part, width - used)
                line.append(Chip(head, chip.style, "", cell_len(head)))
                owner.append(i)
                new_line()
            piece = Chip(part, chip.style, piece_tag, cell_len(part) + len(piece_tag))
            line.append(piece)
            owner.append(i)
            used += piece.cells
    new_line()
    return lines, owners


UNSCORED_STYLE = "dim strike"


def sample_text(table, ids: list[int], scored: list[bool], plain: bool = False) -> Text:
    """A training sample as chips: the tokens the loss covers in the alternating chip
    colours, the ones it does not (a dialogue's prompts, a row's first token) dimmed and
    struck through, special tokens (end of text, padding) in their own colour. `plain`
    (no colours: a pipe or a file) marks the unscored runs with ⟦ ⟧ and parts tokens with |.
    `table` is the tokenizer's PieceTable (core.tokens.pieces)."""
    from rich.text import Text

    out = Text()
    for i, (tid, learned) in enumerate(zip(ids, scored)):
        raw_piece, data, special = table.get(tid)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        label = label_for(raw_piece, text, data, special, raw=False)
        if plain:
            before = "⟦" if not learned and (i == 0 or scored[i - 1]) else ""
            after = "⟧" if not learned and (i == len(ids) - 1 or scored[i + 1]) else ""
            last = i == len(ids) - 1 or label.endswith("\n")   # a line break parts them already
            out.append(before + label + after + ("" if last else "|"))
            continue
        style = CHIP_STYLES[SPECIAL if special else i & 1]
        out.append(label, style=style + (" " + UNSCORED_STYLE if not learned else ""))
    return out
