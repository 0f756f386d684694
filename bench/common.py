"""Shared by the benchmarks: models built locally (no downloads) and small statistics."""

import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The apps a benchmark runs keep their settings and history in a workspace of their own.
os.environ.setdefault("RUGPT_TUI_HOME", tempfile.mkdtemp(prefix="rugpt-tui-bench-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# ruGPT-3 small's exact shape (125,231,616 parameters with vocab 50264).
RUGPT3_SMALL_SHAPE = dict(n_layer=12, n_head=12, n_embd=768, n_positions=2048, vocab_size=50264)


def demo_session(device="cpu"):
    from core.model.session import load_session

    return load_session("demo", device=device)


def rugpt3_shape_session(device="cpu", dtype="float32", **shape):
    """A random-init model of ruGPT-3 small's shape (or that shape with `shape`'s changes),
    with the demo tokenizer (ids beyond its vocabulary decode to nothing, which is fine for
    timing)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from core.model.device import choose_placement
    from core.model.session import ModelInfo, ModelSession

    demo = demo_session(device)
    tok = demo.tokenizer
    config = GPT2Config(**(RUGPT3_SMALL_SHAPE | shape), bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    placement = choose_placement(device, dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config).to(placement.device, placement.torch_dtype).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    params = sum(p.numel() for p in model.parameters())
    info = ModelInfo("rugpt3small-shape", type(model).__name__, type(tok).__name__, params,
                     str(model.device), placement.dtype, config.vocab_size, config.n_positions)
    return ModelSession(model=model, tokenizer=tok, placement=placement, info=info)


def median(xs):
    return statistics.median(xs)


def pct(xs, q):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1)))))
    return xs[k]


class KeyTimings:
    """Per key: until the editor holds it, until the pane has applied the new view, and
    until the screen has drawn that view."""

    def __init__(self) -> None:
        self.edit: list[float] = []   # until the editor holds the key
        self.view: list[float] = []
        self.frame: list[float] = []


async def type_into_tokenize_pane(app, pilot, keys: int, at: int | None = None) -> KeyTimings:
    """Type keys (a letter, then backspace, …) into the focused Tokenize editor, at the end
    of the text or at character `at`.

    A key enters as the terminal driver delivers it: Pilot's own press waits for the whole
    screen to settle (~200 ms), which would swamp the figure. The pane's update and the
    screen's compositor refresh are observed by wrapping them, so waiting costs no polling
    work on the event loop being measured."""
    import asyncio
    import time

    from textual import events
    from textual.widgets import TextArea

    from tui.panes.tokenize.pane import TokenizePane

    pane = app.query_one(TokenizePane)
    screen = app.screen
    applied, drawn = asyncio.Event(), asyncio.Event()
    marks = {}

    apply, refresh = pane._apply, screen._compositor_refresh

    def timed_apply(state) -> None:
        apply(state)
        if state.view.text == area.text:  # the view of the text as typed so far
            marks["view"] = time.perf_counter()
            applied.set()

    stats = app.query_one("#tok-stats")  # its text changes with every key

    def timed_refresh() -> None:
        shows_update = applied.is_set() and stats in screen._dirty_widgets
        refresh()
        if shows_update and not drawn.is_set():
            marks["frame"] = time.perf_counter()
            drawn.set()

    area = app.query_one("#tok-input", TextArea)
    edit = area.edit

    def timed_edit(change):
        result = edit(change)
        marks["edit"] = time.perf_counter()
        return result

    pane._apply, screen._compositor_refresh, area.edit = timed_apply, timed_refresh, timed_edit
    timings = KeyTimings()
    try:
        if at is not None:
            area.move_cursor(area.document.get_location_from_index(at))
            await pilot.pause(0.1)
        for i in range(keys):
            applied.clear()
            drawn.clear()
            key = events.Key("я", "я") if i % 2 == 0 else events.Key("backspace", None)
            start = time.perf_counter()
            app.post_message(key)
            await applied.wait()
            await drawn.wait()
            timings.edit.append(marks["edit"] - start)
            timings.view.append(marks["view"] - start)
            timings.frame.append(marks["frame"] - start)
            await asyncio.sleep(0.03)  # a person types slower than a loop
    finally:
        del pane._apply, screen._compositor_refresh, area.edit
    return timings
