"""Four fixes to Textual, installed once per process when the app is created.

Keys reach a text field in the order they were typed. An Input or TextArea inserts a typed
character as soon as its key arrives, but runs its own bound keys (ctrl+a, ctrl+k,
backspace, arrows) only after the key has bubbled up through every widget above it to the
app. Typed fast — or sent by a terminal as one burst, or arriving while the app is busy —
the characters after a bound key overtake it: ctrl+a ctrl+k followed by a path lost the
path's first characters (Textual issue #6605). Here a field runs its own bindings when the
key reaches it, as it inserts characters; keys it does not bind bubble up as before.

A screen closes once. `Screen.dismiss` hands its result to the callback and pops whatever
screen is on top: dismissed twice — Enter and Esc pressed together in a dialog or the
command palette — it failed on the spent result (and left the palette stuck open), or closed
the window under it, or the main screen. A screen that is not on top, or is already
closing, is not dismissed again.

A burst of typed characters is a paste. A terminal that pastes without bracketed paste
(tmux `send-keys`, some SSH clients) sends the text as keys; Textual makes each character a
key event of its own, dispatched through the whole app — a few hundred a second — so a long
paste kept the app from answering for seconds. Where one read from the terminal holds a run
of BURST or more plain characters (no person types that fast; key repeat gives a few), the
run arrives as one Paste event, in its place among the other keys.

A closing palette ignores its keys. A key bound in the command palette (↓, Enter, Esc) that
arrives while the palette is being taken down looked for its command list, already gone,
and raised NoMatches.
"""

from __future__ import annotations

from textual import events
from textual._xterm_parser import XTermParser
from textual.await_complete import AwaitComplete
from textual.command import CommandPalette
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, TextArea


def _keys_in_order(on_key):
    async def on_key_in_order(self: Widget, event: events.Key) -> None:
        await on_key(self, event)
        if event._stop_propagation or event.is_printable:
            return   # the field handled it itself (a character, Enter in an editor)
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
    on_key_in_order.fixed = True
    return on_key_in_order


def _dismiss_once(dismiss):
    def dismiss_once(self: Screen, result=None) -> AwaitComplete:
        if getattr(self, "_dismissing", False) or not self.is_active:
            return AwaitComplete.nothing()
        self._dismissing = True
        return dismiss(self, result)
    dismiss_once.fixed = True
    return dismiss_once


def _while_open(action):
    def action_while_open(self: CommandPalette, *args) -> None:
        try:
            action(self, *args)
        except NoMatches:   # the palette is closing: its list is gone, and so is the key's use
            pass
    action_while_open.fixed = True
    return action_while_open


BURST = 16   # plain characters in one read from the terminal that make a paste


def _typed_character(event) -> bool:
    """A plain printable character: no modifier (ctrl+, alt+, …), not Enter or Tab."""
    return (isinstance(event, events.Key) and event.character is not None
            and len(event.character) == 1 and event.character.isprintable() and "+" not in event.key)


class BurstParser(XTermParser):
    """Textual's terminal parser; a run of BURST plain characters in one read is one Paste."""

    def feed(self, data: str):
        run: list[events.Key] = []
        for event in super().feed(data):
            if _typed_character(event):
                run.append(event)
                continue
            yield from _as_paste(run)
            run = []
            yield event
        yield from _as_paste(run)


def _as_paste(run: list[events.Key]):
    if len(run) >= BURST:
        yield events.Paste("".join(key.character for key in run))
    else:
        yield from run


def install() -> None:
    from textual.drivers import linux_driver, web_driver

    for driver in (linux_driver, web_driver):   # each reads its terminal with its own parser
        driver.XTermParser = BurstParser
    for field in (Input, TextArea):
        if not getattr(field._on_key, "fixed", False):
            field._on_key = _keys_in_order(field._on_key)
    if not getattr(Screen.dismiss, "fixed", False):
        Screen.dismiss = _dismiss_once(Screen.dismiss)
    if not getattr(CommandPalette._action_command_list, "fixed", False):
        CommandPalette._action_command_list = _while_open(CommandPalette._action_command_list)
