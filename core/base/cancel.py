"""Long reads that can be abandoned. A caller that may lose interest (the Train pane's preview
when the path changes, a run that is stopped, the app quitting) runs the work inside
`abandon_when(cancelled)`; the loops that read data call `check_cancelled()` between chunks,
which raises `Cancelled` once `cancelled()` is true. Scopes are per thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Cancelled(Exception):
    """The work was abandoned (the preview moved on, the run was stopped)."""


_scope = threading.local()


@contextmanager
def abandon_when(cancelled: Callable[[], bool]) -> Iterator[None]:
    """Inside: `check_cancelled()` on this thread raises once `cancelled()` is true."""
    outer = getattr(_scope, "cancelled", None)
    _scope.cancelled = cancelled if outer is None else (lambda: outer() or cancelled())
    try:
        yield
    finally:
        _scope.cancelled = outer


def check_cancelled() -> None:
    cancelled = getattr(_scope, "cancelled", None)
    if cancelled is not None and cancelled():
        raise Cancelled()
