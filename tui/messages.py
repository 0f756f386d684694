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


class Replaceable(Message):
    """"More is waiting in the run's buffer": a newer nudge makes a queued one redundant, so
    a fast stream (tokens, training steps) never floods the UI's queue."""

    def can_replace(self, message: Message) -> bool:
        return type(message) is type(self)
