"""The process ends when the app does — within two seconds of ctrl+q, or of a hangup with no
run going — whatever a worker thread is doing.

Textual runs thread workers on the event loop's default executor, and `asyncio.run` waits for
every thread of that executor before it returns; Python waits again at exit. A worker stuck
in a read that never ends (a device, a FIFO, a dead network mount) or in a library call that
cannot be interrupted would keep the process alive forever after its screen is gone. Here
workers run on daemon threads that the loop waits for only briefly, and a process whose
threads are still busy after a short grace ends at once, once everything it keeps (settings,
the workspace database) has been written.

Even with every thread done, the interpreter's own teardown — freeing the modules and objects
of torch, transformers and their kin — takes 1–3 s after the exit functions have run. So the
process runs its exit functions (logging flushed, temporary folders removed) and then ends
without that teardown.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NoReturn

LOOP_GRACE_S = 0.5    # how long the event loop waits for its workers at exit
FINAL_GRACE_S = 1.0   # how long the process waits for any thread still running after that


class DaemonWorkers(ThreadPoolExecutor):
    """The event loop's default executor (where Textual's thread workers run): each job on a
    daemon thread of its own; shutting down waits for them at most `grace` seconds."""

    def __init__(self, grace: float = LOOP_GRACE_S) -> None:
        super().__init__(max_workers=1)   # the pool itself is never used: it starts no thread
        self.grace = grace
        self._jobs: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()

        def run() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._lock:
                    self._jobs.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"worker-{getattr(fn, '__name__', 'job')}",
                                  daemon=True)
        with self._lock:
            self._jobs.add(thread)
        thread.start()
        return future

    def busy(self) -> list[threading.Thread]:
        with self._lock:
            return [t for t in self._jobs if t.is_alive()]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            join_until(self.busy(), time.monotonic() + self.grace)


def join_until(threads: list[threading.Thread], deadline: float) -> None:
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def end_process(code: int, workers: DaemonWorkers | None = None,
                grace: float = FINAL_GRACE_S) -> NoReturn:
    """After the app has quit: give its workers and any other non-daemon thread (a cancelled
    run recording its end) up to `grace` seconds; then end the process with `code`. The exit
    functions run only when no thread is left: a daemon thread in the middle of a library
    call could hold up one of them, or crash the interpreter's shutdown."""
    me = threading.current_thread()
    waited = [t for t in threading.enumerate() if t is not me and not t.daemon]
    join_until(waited + (workers.busy() if workers is not None else []), time.monotonic() + grace)
    if not any(t.is_alive() for t in threading.enumerate() if t is not me):
        # What a normal exit runs first; its teardown after them is what takes the seconds.
        # `_run_exitfuncs` is private — the atexit module has no public way to run them
        # (tests/test_private_names.py).
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
