"""Keep the garbage collector's full passes off the keystroke path.

Once a model is loaded the process holds about half a million long-lived objects (torch,
transformers, Textual, the model). A full collection walks all of them — hundreds of
milliseconds on a small CPU — and Python starts one every few seconds of typing. Freezing
the heap once the app has settled moves those objects out of the collector's view, so a
later collection only walks what was allocated since. Loading another model thaws the heap
first, so the model it replaces can be collected; the app thaws it when it exits.
"""

import gc


def settle() -> None:
    """Collect once, then freeze what survives. Called when a model has been loaded and
    the one it replaced has been let go: whatever is frozen is never collected."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    gc.unfreeze()


def settle_when_idle(set_timer, busy, quiet, tries: int = 0) -> None:
    """`settle()` once the app has had a few half-seconds to draw the new model's first
    views and no key has come for a while (`quiet()`); never while `busy()` (a run's objects
    frozen now could never be collected once it ends). `set_timer(delay, callback)` waits."""
    if busy():
        return
    if tries < 3 or (not quiet() and tries < 40):
        set_timer(0.5, lambda: settle_when_idle(set_timer, busy, quiet, tries + 1))
        return
    settle()
