"""Compare models (palette): two to four models or runs, ticked in a list, side by side — their
held-out loss and perplexity on one file (the Train pane's test data by default; a score the
workspace already holds is not computed again), and the Generate pane's prompt with the same
seed, streamed in a column each. Models load one at a time on a worker thread, so the
comparison costs the memory of one model besides the app's."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, SelectionList, Static

from core.base.errors import UserError, one_line
from core.store.catalog import ModelChoice
from tui.render.chips import printable
from tui.shell.models.picker import ChoicesFound, find_choices
from tui.widgets.fields import Field
from tui.widgets.windows import Window

if TYPE_CHECKING:
    from core.inference.sampling import SamplingSettings
    from tui.shell.app import RuGPTApp

MAX_MODELS = 4
FLUSH_S = 0.03   # streamed text reaches the screen in batches, not once per token


@dataclass
class CompareRequest:
    choices: list[ModelChoice]
    data: str
    prompt: str
    settings: SamplingSettings        # its seed set


@dataclass
class Scored(Message):
    index: int
    line: str                         # "loss · perplexity · tokens", or why there is none


@dataclass
class Streamed(Message):
    index: int
    text: str                         # the column's whole text so far
    done: bool = False


class CompareSetupScreen(Window[CompareRequest | None]):
    """Tick two to four models (space), check the data and the prompt, Enter compares."""

    DEFAULT_CSS = """
    CompareSetupScreen { align: center middle; }
    #cmp-setup { width: 96%; max-width: 120; height: 90%; border: thick $primary;
                 background: $surface; padding: 0 1; }
    #cmp-models { height: 1fr; }
    #cmp-problem { color: $error; }
    """
    # Enter compares from anywhere in the window (in the list it would tick, as space does)
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("enter", "start", "Compare", priority=True)]

    def __init__(self, store, data: str, prompt: str, settings, ticked_runs: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.store, self.data, self.prompt, self.settings = store, data, prompt, settings
        self.choices: list[ModelChoice] = []
        self.ticked_runs = ticked_runs   # runs ticked from the start (a sweep's)

    def compose(self) -> ComposeResult:
        with Vertical(id="cmp-setup"):
            yield Label("Compare models — space ticks 2 to 4 · Enter compares · Esc cancels")
            yield SelectionList[int](id="cmp-models")
            yield Label("held-out data (loss and perplexity on it)")
            yield Field(self.data, id="cmp-data")
            yield Label("prompt (the Generate pane's settings, one seed for all)")
            yield Field(self.prompt, id="cmp-prompt")
            yield Label("", id="cmp-problem")

    def on_mount(self) -> None:
        self.query_one("#cmp-models").focus()
        find_choices(self, self.store)

    def on_choices_found(self, message: ChoicesFound) -> None:
        self.choices = message.choices
        listing = self.query_one("#cmp-models", SelectionList)
        listing.clear_options()
        listing.add_options([(choice.label, i, choice.run_id in self.ticked_runs)
                             for i, choice in enumerate(self.choices)])
        if self.choices:
            listing.highlighted = 0

    def action_start(self) -> None:
        ticked = sorted(self.query_one("#cmp-models", SelectionList).selected)
        data = self.query_one("#cmp-data", Input).value.strip()
        prompt = self.query_one("#cmp-prompt", Input).value
        problem = ("tick 2 to 4 models (space)" if not 2 <= len(ticked) <= MAX_MODELS
                   else "held-out data: choose a file" if not data else None)
        if problem:
            self.query_one("#cmp-problem", Label).update(problem)
            return
        self.dismiss(CompareRequest([self.choices[i] for i in ticked], data, prompt, self.settings))

    def action_cancel(self) -> None:
        self.dismiss(None)


def short_name(choice: ModelChoice) -> str:
    """A column's title: a run by its number, a folder by its last part."""
    if choice.kind == "run":
        return choice.label.split(" · ", 1)[0]
    return choice.name.rstrip("/").rsplit("/", 1)[-1] if choice.name.startswith(("/", "~", ".")) \
        else choice.name


class CompareScreen(Window):
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    #cmp-box { width: 100%; height: 100%; border: thick $primary; background: $surface; }
    #cmp-title { padding: 0 1; }
    #cmp-scores { height: auto; padding: 0 1; }
    #cmp-columns { height: 1fr; }
    .cmp-text { width: 1fr; height: 1fr; border: round $panel; padding: 0 1; overflow-y: auto; }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, request: CompareRequest, store) -> None:
        super().__init__()
        self.request, self.store = request, store
        self.lines = ["waiting…"] * len(request.choices)

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical(id="cmp-box"):
            yield Label(f"{r.data} · prompt {r.prompt!r} · seed {r.settings.seed} · Esc closes",
                        id="cmp-title")
            yield Static(id="cmp-scores")
            with Horizontal(id="cmp-columns"):
                for i, choice in enumerate(r.choices):
                    column = Static(Text(printable(r.prompt), style="dim"), id=f"cmp-text-{i}",
                                    classes="cmp-text")
                    column.border_title = short_name(choice)
                    yield column

    def on_mount(self) -> None:
        self.draw_scores()
        self.compare()

    def draw_scores(self) -> None:
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("model")
        table.add_column("loss · perplexity · tokens")
        for choice, line in zip(self.request.choices, self.lines):
            table.add_row(short_name(choice), line)
        self.query_one("#cmp-scores", Static).update(table)

    def on_scored(self, message: Scored) -> None:
        self.lines[message.index] = message.line
        self.draw_scores()

    def on_streamed(self, message: Streamed) -> None:
        text = Text(printable(self.request.prompt), style="dim")
        text.append(printable(message.text))
        self.query_one(f"#cmp-text-{message.index}", Static).update(text)

    @work(thread=True, exclusive=True, group="compare-models")
    def compare(self) -> None:
        from textual.worker import get_current_worker

        from core.model.weights import load_with_weights

        worker = get_current_worker()
        for i, choice in enumerate(self.request.choices):
            if worker.is_cancelled:
                return
            try:
                self.post_message(Scored(i, "loading…"))
                app = cast("RuGPTApp", self.app)
                session = load_with_weights(choice.name, choice.trained, device=app.device,
                                            dtype=app.dtype)
                self.post_message(Scored(i, self.score(i, session, choice, lambda: worker.is_cancelled)))
                self.stream(i, session, lambda: worker.is_cancelled)
            except UserError as exc:
                self.post_message(Scored(i, f"[red]{exc}[/red]"))
            except Exception as exc:   # one line, never a traceback on screen
                self.post_message(Scored(i, f"[red]{one_line(exc)}[/red]"))
            session = None   # one model in memory at a time

    def score(self, i: int, session, choice: ModelChoice, cancelled) -> str:
        from core.data.source import resolve_source
        from core.inference.scoring import score_model

        key, data = choice.trained or choice.name, self.request.data
        data_hash = resolve_source(data).fingerprint
        block = min(session.max_positions, 1024)
        kept = next((s for s in (self.store.scores(data_hash) if self.store else [])
                     if s["model"] == key and s["block_size"] == block), None)
        if kept is not None:
            loss, tokens, how = kept["loss"], kept["tokens"], " (kept)"
        else:
            started = shown = time.monotonic()

            def progress(done: int, total: int) -> None:
                nonlocal shown
                if time.monotonic() - shown > 0.25:
                    shown = time.monotonic()
                    self.post_message(Scored(i, f"scoring… {done:,} of {total:,} samples"))
            score = score_model(session, data, block, progress=progress, cancelled=cancelled)
            loss, tokens, how = score.loss, score.tokens, ""
            if self.store is not None:
                self.store.add_score(key, data, data_hash, block, loss, tokens, time.monotonic() - started)
        return f"{loss:.4f} · {math.exp(loss):,.2f} · {tokens:,}{how}"

    def stream(self, i: int, session, cancelled) -> None:
        from core.inference.generation import GenerationDone, TokenEvent, generate_stream

        text, flushed = "", time.monotonic()
        for event in generate_stream(session, self.request.prompt, self.request.settings, cancelled):
            if isinstance(event, TokenEvent):
                text += event.text
                if time.monotonic() - flushed > FLUSH_S:
                    self.post_message(Streamed(i, text))
                    flushed = time.monotonic()
            elif isinstance(event, GenerationDone):
                self.post_message(Streamed(i, event.text, done=True))


def with_seed(settings):
    """One seed for every column: the Generate pane's, or a fixed one when it has none."""
    return settings if settings.seed is not None else replace(settings, seed=1)
