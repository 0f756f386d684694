"""A fix to Textual, installed once per process when the app is created.

A burst of typed characters is a paste. A terminal that pastes without bracketed paste
(tmux `send-keys`, some SSH clients) sends the text as keys; Textual makes each character a
key event of its own, dispatched through the whole app — a few hundred a second — so a long
paste kept the app from answering for seconds. Where one read from the terminal holds a run
of BURST or more plain characters (no person types that fast; key repeat gives a few), the
run arrives as one Paste event, in its place among the other keys.

Textual's terminal parser is private (`textual._xterm_parser.XTermParser`) and its drivers
make one from their module's global name `XTermParser`, with no public way to give them
another: that name is replaced in both driver modules (tests/test_private_names.py fails
when either is gone). Upstream, a driver option for the parser class would do.
"""

from __future__ import annotations

from textual import events
from textual._xterm_parser import XTermParser

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
