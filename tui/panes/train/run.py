"""A training run as the Train pane holds it, and how its events are drawn: log lines, the
status line and the loss chart."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual_plotext import PlotextPlot

from core.base.errors import one_line
from core.data.source import source_name
from core.training import events as ev
from core.training.config import TrainConfig, TrainControl, TrainResult
from core.training.memory import size
from tui.render.chips import printable
from tui.render.summaries import counted, dialogue_line, saved_text
from tui.widgets.messages import RunBuffer

if TYPE_CHECKING:
    from textual.timer import Timer
    from textual.widget import Widget

    from core.store.database import Store


@dataclass
class TrainRun:
    number: int
    config: TrainConfig
    control: TrainControl
    events: RunBuffer[ev.TrainEvent] = field(default_factory=RunBuffer)
    steps: list[tuple[int, float]] = field(default_factory=list)    # (step, loss)
    evals: list[tuple[int, float]] = field(default_factory=list)    # (step, eval loss)
    tokens: dict[int, int] = field(default_factory=dict)            # step → tokens trained
    last_step: ev.Step | None = None
    tokenizing: ev.Tokenizing | None = None   # the data's first tokenization, while it lasts
    meter: ProgressMeter = field(default_factory=lambda: ProgressMeter())
    result: TrainResult | None = None
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)   # result or error is in

    @property
    def running(self) -> bool:
        return self.result is None and self.error is None

    def curve(self) -> Curve:
        return Curve(f"#{self.number}", list(self.steps), list(self.evals), dict(self.tokens))

    def take_new(self) -> list[ev.TrainEvent]:
        """The events since the last look, with the curves brought up to date."""
        new = self.events.take_new()
        for event in new:
            if isinstance(event, ev.Step):
                self.steps.append((event.step, event.loss))
                self.tokens[event.step] = event.tokens
                self.last_step = event
            elif isinstance(event, ev.Eval):
                self.evals.append((event.step, event.eval_loss))
            elif isinstance(event, ev.Tokenizing):
                self.tokenizing = event
        return [event for event in new if not isinstance(event, ev.Tokenizing)]

    def status_line(self) -> str:
        """One line (≤ 80 columns), so an update never changes the layout."""
        step = self.last_step
        if step is None:
            return ""
        eta = step.elapsed_s / step.step * (step.total_steps - step.step) if step.step else 0
        return (f"step {step.step}/{step.total_steps} · epoch {step.epoch:.2f} · "
                f"loss {step.loss:.4f} · lr {step.lr:.1e} · {step.tokens_per_s:,.0f} tok/s · "
                f"ETA {eta:.0f} s")

    def end_line(self) -> Text:
        """The status line of a run that has ended: how, and where its model is."""
        r = self.result
        if self.error or r is None:
            return Text(self.error or "ended without a result", style="red")
        if r.save_error:
            return Text(r.save_error, style="red")
        loss = f"eval {r.eval_loss:.3f}" if r.eval_loss is not None else "no eval"
        return Text(f"finished: {r.steps} steps · {loss} · stop: {r.stop_reason}"
                    f"{saved_text(r.out, r.kept_step, self.config.keep_best)}")

    def summary(self) -> str:
        """The run in the runs list."""
        if self.running:
            return f"#{self.number} running…"
        r = self.result
        if self.error or r is None:
            return f"#{self.number} failed: {self.error or 'no result'}"
        return run_summary(self.number, r.steps, r.eval_loss, r.stop_reason, source_name(self.config.train))


def run_summary(number: int, steps: int, eval_loss: float | None, status: str, data: str,
                when: str = "") -> str:
    """A run in the runs list: this session's and those the workspace remembers alike."""
    loss = f"eval {eval_loss:.3f}" if eval_loss is not None else "no eval"
    when = f" · {when}" if when else ""
    return f"#{number} {steps} steps · {loss} · {status} · {data}{when}"


def foreign_live(row: dict) -> bool:
    """A run the workspace has as still going in another process."""
    return row["status"] == "running" and row["pid"] != os.getpid()


def other_run_status(row: dict) -> str:
    """The status line of a run going in another process: its step, eval and ETA."""
    started = datetime.fromisoformat(row["time"]).timestamp()
    done, total = row["steps"] or 0, row["total_steps"] or 0
    eta = (time.time() - started) / done * (total - done) if done and total else 0
    loss = f" · eval {row['eval_loss']:.3f}" if row["eval_loss"] is not None else ""
    return (f"run #{row['id']} in process {row['pid']}: step {done}/{total or '?'}{loss} · "
            f"ETA {eta:.0f} s · F9 asks it to save and stop")


def other_run_lines(store: Store, run_id: int, shown: set) -> list[Text]:
    """The evals and samples of a run in another process not shown yet (`shown` is updated),
    in step order."""
    evals = [(step, ("eval", step), Text(f"#{run_id} step {step}: eval loss {loss:.4f} · "
                                         f"perplexity {ppl:.1f}", style="cyan"))
             for step, loss, ppl in store.evals(run_id)]
    samples = [(step, ("sample", step), Text(f"  {printable(text)}", style="italic"))
               for step, text in store.samples(run_id)]
    new = sorted((item for item in evals + samples if item[1] not in shown), key=lambda item: item[0])
    shown.update(key for _, key, _ in new)
    return [line for _, _, line in new]


def preview_text(stats: dict, block: int, pack: bool) -> Text:
    """The chosen data in one line: what the run will train and evaluate on."""
    tr, te = stats["train"], stats["test"]
    text = Text()
    text.append(f"train {counted(tr['samples'], 'sample')} · {counted(tr['tokens'], 'token')} · "
                f"longest {tr['longest']}", style="green")
    if tr["truncated"]:
        text.append(f" · {tr['truncated']} longer than the block", style="yellow")
    # the groups are joined by " · " too: a line wrapped between them still shows where one
    # ends (spaces alone vanish at the fold)
    text.append(f" · test {counted(te['samples'], 'sample')} · {counted(te['tokens'], 'token')}")
    text.append(f" · → {counted(stats['train_rows'], 'block' if pack else 'row')} of ≤ {block}")
    if stats["eval_rows"] < stats["test_rows"]:
        text.append(f" · each eval reads {stats['eval_tokens']:,} held-out tokens")
    if stats.get("dialogue"):
        text.append(" · " + dialogue_line(stats["dialogue"]["train"]), style="cyan")
    return text


def plan_text(plan, lora: bool) -> str:
    """What the run trains and the memory it needs, in one short line (the run's log has
    the whole breakdown)."""
    trains = (f"LoRA {short_count(plan.trainable)} of {short_count(plan.total_parameters)} "
              f"params ({100 * plan.trainable / max(plan.total_parameters, 1):.2f} %)" if lora
              else f"all {short_count(plan.total_parameters)} params")
    return f"{trains} · ≈ {size(plan.total)}" + (f" a process (FSDP ×{plan.shards})" if plan.shards > 1 else "")


def short_count(n: int) -> str:
    """16384 → 16.4k, 324864 → 325k, 125231616 → 125M."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def estimate_text(estimate: dict) -> Text:
    """Big data before it is tokenized: what its first megabyte suggests."""
    return Text(f"{estimate['bytes'] / 1e6:,.0f} MB · ≈ {estimate['texts']:,} texts · "
                f"≈ {estimate['tokens']:,} tokens (from the first MB)", style="green")


class ProgressMeter:
    """A tokenization's progress with its ETA, painted at most four times a second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.painted = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.painted < 0.25:
            return False
        self.painted = now
        return True

    def line(self, estimate: dict | None, done: int, total: int) -> Text:
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else 0
        about = f"≈ {estimate['tokens']:,} tokens · " if estimate else ""
        return Text(f"{about}tokenizing {100 * done / max(total, 1):.0f} % "
                    f"({done:,}/{total:,} texts) · ETA {eta:.0f} s", style="yellow")


def log_line(event: ev.TrainEvent) -> Text | None:
    """How an event reads in the run's log (steps go to the status line and the chart)."""
    match event:
        case ev.Eval():
            return Text(f"step {event.step}: eval loss {event.eval_loss:.4f} · "
                        f"perplexity {event.perplexity:.1f}", style="cyan")
        case ev.Sample():
            return Text(f"  {printable(event.text)}", style="italic")
        case ev.Stats(train=tr):
            return Text(f"{counted(tr['samples'], 'sample')}, {counted(tr['tokens'], 'token')}, "
                        f"{counted(event.train_rows, 'row')} ({event.mode}); each eval reads "
                        f"{event.eval_tokens:,} held-out tokens"
                        + (f"; {dialogue_line(event.dialogue['train'])}" if event.dialogue else ""))
        case ev.Saved():
            return Text(f"saved at step {event.step} → {event.out}", style="green")
        case ev.Notice():
            return Text(event.message, style="yellow")
        case ev.Error():
            return Text(event.message, style="red")
    return None


class PaintPacer:
    """Paints each part of a widget at most once per its interval, and always paints the
    last state: what comes between two paints is folded into the next."""

    def __init__(self, owner: Widget) -> None:
        self.owner = owner
        self.painted: dict[str, float] = {}
        self.timers: dict[str, Timer] = {}

    def soon(self, what: str, every: float, paint: Callable[[], None]) -> None:
        """Paint now if `what` was last painted `every` seconds ago, else once when it is due."""
        wait = self.painted.get(what, 0.0) + every - time.monotonic()
        if wait <= 0:
            self.painted[what] = time.monotonic()
            paint()
        elif what not in self.timers:
            def due() -> None:
                # a timer stopped by cancel() may still fire once: it then finds nothing
                if self.timers.pop(what, None) is None:
                    return
                self.painted[what] = time.monotonic()
                paint()
            self.timers[what] = self.owner.set_timer(wait, due)

    def cancel(self) -> None:
        """Forget the paints that wait (the caller paints everything now)."""
        for timer in self.timers.values():
            timer.stop()
        self.timers.clear()


@dataclass
class Curve:
    """One run's losses, as the chart draws them."""
    label: str                                   # "#12"
    steps: list[tuple[int, float]]               # (step, train loss)
    evals: list[tuple[int, float]]               # (step, eval loss)
    tokens: dict[int, int] = field(default_factory=dict)   # step → tokens trained by then

    def on_tokens(self, points: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """The points with tokens seen for x instead of steps (step 0 is 0 tokens); a step
        whose count is unknown (a run recorded before counts were kept) is left out."""
        tokens = {0: 0, **self.tokens}
        return [(tokens[s], v) for s, v in points if s in tokens]


# One colour per run when runs are overlaid: train as a line, eval as dots of the same colour.
RUN_COLOURS = ("cyan", "orange", "green", "magenta", "yellow", "red")


class LossChart(PlotextPlot):
    """Train loss (every step) and eval loss (every eval) of one run, or of several overlaid;
    on a linear or a log scale."""

    def draw(self, curves: list[Curve], log_scale: bool = False, by_tokens: bool = False) -> None:
        labels = " ".join(c.label for c in curves)
        self.border_title = ("loss" + (f" · run {labels}" if curves else "") + (" · log" if log_scale else "")
                             + (" · x: tokens seen" if by_tokens else ""))
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        # No colours of its own but the lines': the pane's background shows through, and a
        # redraw sends a few colour changes per row instead of one per cell.
        plt.theme("clear")
        tall = self.size.height >= 14   # on a short terminal every row goes to the curve
        plt.frame(tall)   # the widget's border frames it anyway
        if tall:
            plt.xlabel("tokens seen" if by_tokens else "step")
        several = len(curves) > 1
        lines = []
        for i, curve in enumerate(curves):
            train_colour = RUN_COLOURS[i % len(RUN_COLOURS)] if several else "cyan"
            eval_colour = train_colour if several else "orange"
            name = f"{curve.label} " if several else ""
            steps, evals = ((curve.on_tokens(curve.steps), curve.on_tokens(curve.evals)) if by_tokens
                            else (curve.steps, curve.evals))
            lines.append((drawable(steps, log_scale), f"{name}train", "braille", train_colour))
            lines.append((drawable(evals, log_scale), f"{name}eval", "dot", eval_colour))
        lines = [line for line in lines if line[0]]
        if log_scale and lines:   # plotext cannot put nothing on a log scale
            plt.yscale("log")
        for points, label, marker, colour in lines:
            plt.plot([s for s, _ in points], [v for _, v in points], label=label, marker=marker,
                     color=colour)
        self.refresh()

    def render(self):
        try:
            return super().render()
        except Exception as exc:   # a chart that cannot draw says so; the app goes on
            return Text(f"the chart cannot draw this: {one_line(exc)}", style="red")


def drawable(points: list[tuple[int, float]], log_scale: bool) -> list[tuple[int, float]]:
    """The points a chart can draw: finite losses (a NaN or an infinity ends a run, its point
    stays in the data), and on a log scale only positive ones."""
    return [(x, y) for x, y in points if math.isfinite(y) and (y > 0 or not log_scale)]

