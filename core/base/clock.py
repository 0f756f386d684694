"""The clock behind every duration a user reads: tokens per second, time to the first token,
a run's elapsed time and ETA. They are all read here, in the loops that do the work, so a
snapshot test can put a ticking clock in as `_source` (tests/conftest.py) and get the same
figures every time: each loop reads it a fixed number of times per token or step."""

from __future__ import annotations

import time


def seconds() -> float:
    """Now, in seconds, for differences only (a monotonic clock)."""
    return _source()


_source = time.perf_counter
