"""The app's windows: modal screens that close once, and the command palette.

A window closes once. `Screen.dismiss` hands its result to the callback and pops whatever
screen is on top: called twice — Enter and Esc pressed together in a dialog or the palette —
it failed on the spent result, or closed the window under it, or the main screen. A window
that is not on top, or is already closing, is not dismissed again.

The palette (ctrl+p) is Textual's, with two keys made safe through its public action check:
- PageUp/PageDown while its list is hidden (no match, still being filled) would move
  through the list's lines, which a hidden list has not laid out: Textual's
  `OptionList._move_page` fails with KeyError (textual/widgets/_option_list.py, the
  `_index_to_line[self.highlighted or 0]` lookup; a hidden OptionList with a highlighted
  option and its line cache cleared by a resize or new options). Upstream: OptionList page
  moves should do nothing while the list has no region, as `_update_lines` already does.
- A key that reaches the palette while it is being taken down finds its command list gone;
  the action is not run, Enter's answer is dropped, and text typed then starts no search.
  Its search for commands is cancelled as it closes (it too looked for the list).
Every palette the app opens is this one: ctrl+p, and the theme and key pickers that
Textual's own commands open (the app's `search_commands`/`search_themes`).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.await_complete import AwaitComplete
from textual.command import CommandList, CommandPalette
from textual.screen import ModalScreen
from textual.widgets import Input

Result = TypeVar("Result")


def _may_close(screen) -> bool:
    """Whether `screen` may be dismissed now (and, if so, it is marked as closing)."""
    if screen.closing or not screen.is_active:
        return False
    screen.closing = True
    return True


class Window(ModalScreen[Result], Generic[Result]):
    """A modal window of the app: it closes once."""

    closing = False

    def dismiss(self, result: Result | None = None) -> AwaitComplete:
        if not _may_close(self):
            return AwaitComplete.nothing()
        return super().dismiss(result)


class Palette(CommandPalette):
    """The command palette, safe against keys that come at the wrong moment."""

    closing = False

    def dismiss(self, result=None) -> AwaitComplete:
        if not _may_close(self):
            return AwaitComplete.nothing()
        self.workers.cancel_node(self)   # the search for commands: its list is going
        return super().dismiss(result)

    def _command_list(self) -> CommandList | None:
        found = self.query(CommandList)
        return found.first() if found else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        commands = self._command_list()
        if self.closing or commands is None:
            return False
        if action == "command_list":   # moves in the list: only in a list on the screen
            region = commands.scrollable_content_region
            return commands.display and region.width > 0 and region.height > 0
        return super().check_action(action, parameters)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.closing or self._command_list() is None:
            event.prevent_default()   # Textual's own handler would look for the list
            event.stop()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Keys typed after Enter or Esc in one burst: no new search for a closing palette
        (it would fill a list that is gone)."""
        if self.closing or not self.is_active or self._command_list() is None:
            event.prevent_default()
            event.stop()
