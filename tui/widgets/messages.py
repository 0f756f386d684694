"""How the parts of the app talk. Worker threads hand results back with `post_message`
(thread-safe, never blocks); the app tells the panes what changed with `SessionChanged` and
`WeightsChanged`; panes never reach into each other."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from textual.message import Message

if TYPE_CHECKING:
    from core.model.session import ModelSession


@dataclass
class SessionLoaded(Message):
    session: ModelSession


@dataclass
class SessionFailed(Message):
    error: str
    name: str


@dataclass
class SessionNotice(Message):
    """Said while loading (e.g. the fallback to the demo model), before the load finishes."""
    text: str


@dataclass
class SessionChanged(Message, bubble=False):
    """From the app to every pane: a model was loaded; `remembered` holds the training
    settings last chosen for it."""
    session: ModelSession
    remembered: dict = field(default_factory=dict)


class WeightsChanged(Message, bubble=False):
    """The weights moved (a run ended, a reset): a pane posts it to the app, and the app
    passes it on to every pane."""


class Replaceable(Message):
    """"More is waiting in the run's buffer": a newer nudge makes a queued one redundant, so
    a fast stream (tokens, training steps) never floods the UI's queue."""

    def can_replace(self, message: Message) -> bool:
        return type(message) is type(self)


T = TypeVar("T")


class RunBuffer(Generic[T]):
    """What a worker produced and the UI has not shown yet. The worker `push`es; the UI,
    nudged by a `Replaceable` message, `take_new`s everything since its last look."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._shown = 0
        self._lock = threading.Lock()

    def push(self, item: T) -> None:
        with self._lock:
            self.items.append(item)

    def take_new(self) -> list[T]:
        with self._lock:
            new = self.items[self._shown:]
            self._shown = len(self.items)
        return new

    def caught_up(self) -> bool:
        return self._shown == len(self.items)

    def __len__(self) -> int:
        return len(self.items)
