"""The token chips of the Tokenize pane, drawn line by line.

A Static holding every chip would lay out and draw the whole text again on each keystroke.
Here the chips are flowed into lines once per update, each drawn line is cached under the
chips it holds, and only the lines that changed are repainted — typing at the end of a long
text redraws one line.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.render.chips import CHIP_STYLES, CURSOR_STYLE, Chip, flow_chips


class ChipView(ScrollView, can_focus=False):
    DEFAULT_CSS = """
    ChipView { overflow-x: hidden; overflow-y: auto; scrollbar-gutter: stable; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._chips: list[Chip] = []
        self._cursor = -1                   # token index shown in the cursor colour
        self._lines: list[tuple] = []
        self._owners: list[list[int]] = []  # token index of each chip on each line
        self._firsts: list[int] = [0]       # first token on each line
        self._keys: list = []               # what each line shows: its cache key
        self._strips: dict = {}
        self._styles: tuple[Style, ...] = ()
        self._tag_styles: tuple[Style, ...] = ()
        self._base: Style | None = None
        self.lines_drawn = 0                # how many lines were drawn, not taken from cache

    # -- what to show -------------------------------------------------------------------

    def show(self, chips: list[Chip], cursor: int = -1) -> None:
        self._chips = chips
        self._layout()
        self._place_cursor(cursor)

    def set_cursor(self, cursor: int) -> None:
        """Move the highlight: the layout stays, only the lines it leaves and enters redraw."""
        if cursor != self._cursor:
            self._place_cursor(cursor)

    def text(self) -> str:
        """Everything shown, as plain text, one line per row."""
        return "\n".join("".join(c.label + c.tag for c in line) for line in self._lines)

    def lines_of(self, token: int) -> range:
        """The lines holding (a part of) a token."""
        firsts, owners = self._firsts, self._owners
        lo, hi = bisect_left(firsts, token), bisect_right(firsts, token)
        if lo > 0 and (lo == hi or (owners[lo - 1] and owners[lo - 1][-1] == token)):
            lo -= 1
        return range(lo, max(hi, lo + 1))

    # -- layout -------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._layout()
        self._place_cursor(self._cursor)

    def _layout(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:  # not laid out yet: on_resize comes back here
            return
        lines, owners = flow_chips(self._chips, width)
        self._lines, self._owners = lines, owners
        self._firsts = [o[0] if o else (owners[k - 1][-1] + 1 if k and owners[k - 1] else 0)
                        for k, o in enumerate(owners)]
        self.virtual_size = Size(width, len(lines))  # a new size repaints everything

    def _place_cursor(self, cursor: int) -> None:
        """Key each line by what it shows (the cursor's lines also by the cursor), repaint
        the visible lines whose keys changed, and keep the cursor's line in view."""
        self._cursor = cursor
        lines = self._lines
        keys = list(lines)
        cursor_lines = self.lines_of(cursor) if cursor >= 0 and lines else range(0)
        for k in cursor_lines:
            if k < len(keys):
                keys[k] = (lines[k], cursor)
        old, self._keys = self._keys, keys
        if len(self._strips) > 2 * len(keys) + 64:  # keep only what the layout can show
            strips = self._strips
            self._strips = {key: strips[key] for key in keys if key in strips}
        self._refresh_changed(old, keys)
        if cursor_lines:
            top, height = round(self.scroll_y), self.scrollable_content_region.height
            line = cursor_lines[-1]
            if not top <= line < top + height:
                self.scroll_to(y=max(0, line - height // 2), animate=False)

    def _refresh_changed(self, old: list, new: list) -> None:
        """Repaint the runs of visible lines whose keys differ."""
        top = round(self.scroll_y)
        bottom = min(top + self.scrollable_content_region.height, max(len(old), len(new)))
        run = None
        for y in range(top, bottom + 1):
            changed = y < bottom and not (y < len(old) and y < len(new) and old[y] == new[y])
            if changed and run is None:
                run = y
            elif not changed and run is not None:
                self.refresh_lines(run, y - run)
                run = None

    # -- drawing ------------------------------------------------------------------------

    def _chip_styles(self) -> tuple[Style, ...]:
        base = self.rich_style
        if base != self._base:  # first draw, or the theme changed
            self._base = base
            self._styles = tuple(base + Style.parse(s) for s in (*CHIP_STYLES, CURSOR_STYLE))
            self._tag_styles = tuple(s + Style(dim=True, italic=True) for s in self._styles)
            self._strips.clear()
        return self._styles

    def render_line(self, y: int) -> Strip:
        styles = self._chip_styles()
        width = self.scrollable_content_region.width
        line = round(self.scroll_y) + y
        if line >= len(self._keys):
            return Strip.blank(width, self._base)
        key = self._keys[line]
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._draw(line, styles)
        return strip.adjust_cell_length(width, self._base)

    def _draw(self, line: int, styles: tuple[Style, ...]) -> Strip:
        self.lines_drawn += 1
        cursor = len(styles) - 1
        segments = []
        cells = 0
        for chip, owner in zip(self._lines[line], self._owners[line]):
            style = cursor if owner == self._cursor else chip.style
            segments.append(Segment(chip.label, styles[style]))
            if chip.tag:
                segments.append(Segment(chip.tag, self._tag_styles[style]))
            cells += chip.cells
        return Strip(segments, cells)
