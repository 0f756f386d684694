"""Messages that carry results from worker threads back to the UI (`post_message` is thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class SessionLoaded(Message):
    session: object


@dataclass
class SessionFailed(Message):
    error: str
    name: str


@dataclass
class SessionNotice(Message):
    """Said while loading (e.g. the fallback to the demo model), before the load finishes."""
    text: str
