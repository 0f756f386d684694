"""Telling a user who looks elsewhere (another tmux window, another tab) that something ended:
the terminal bell, and a desktop notification by escape sequence — OSC 9 (iTerm2, Windows
Terminal, kitty, foot, WezTerm) and OSC 777 (VTE terminals, urxvt). A terminal that knows
neither ignores them, as terminals do with unknown OSC sequences."""

from __future__ import annotations

BELL = "\a"


def _clean(text: str) -> str:
    """Text safe inside an OSC sequence: no control characters, no `;` in OSC 777's fields."""
    return "".join(ch if ch.isprintable() else " " for ch in text).replace(";", ",")[:200]


def notification(title: str, body: str) -> str:
    """The bell and both desktop-notification sequences, as one write."""
    title, body = _clean(title), _clean(body)
    return f"{BELL}\x1b]9;{title}: {body}\a\x1b]777;notify;{title};{body}\a"


def ring_if_away(app, title: str, body: str) -> None:
    """Ring and notify when the user looks elsewhere — the terminal reported it lost focus —
    and the workspace setting (`notify`) is on; a user watching the app needs no bell.
    The sequences go through the app's driver (`App._driver`, private: Textual has no public
    way to write to the terminal; its own `copy_to_clipboard` writes OSC 52 the same way —
    tests/test_private_names.py)."""
    if not app.app_focus and app.saved.notify and app._driver is not None:
        app._driver.write(notification(title, body))
