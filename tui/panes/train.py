"""F4 — the Train pane: pick data, see its statistics, fine-tune in the background, watch the
loss fall and the samples change, and keep talking to the model in the Generate pane."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, OptionList, ProgressBar, RichLog, Select, Static, Switch
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

from core.data import describe
from core.errors import one_line
from tui.messages import Replaceable
from tui.widgets import LabeledInput

DEFAULT_OUT = "rugpt-finetuned"
# However fast the steps come, the screen (and the SSH link) sees the status line and the
# progress bar at most twice a second, the chart once a second and new log lines in one
# batch every 2 s; the last state is always drawn.
STATUS_EVERY_S = 0.5
CHART_EVERY_S = 1.0
LOG_EVERY_S = 2.0


def short_path(path: Path) -> str:
    """Relative to the working folder when inside it (shorter, and the same on every machine)."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


class PathSuggester(Suggester):
    """Completes file and folder names as you type a path."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        folder, prefix = (path, "") if value.endswith(os.sep) else (path.parent, path.name)
        try:
            names = sorted(p.name + (os.sep if p.is_dir() else "") for p in folder.iterdir()
                           if p.name.startswith(prefix) and not p.name.startswith("."))
        except OSError:
            return None
        return value + names[0][len(prefix):] if names else None


class TrainingProgress(Replaceable):
    """New training events wait in the run's buffer."""


@dataclass
class TrainingFinished(Message):
    run: object


@dataclass
class DataPreview(Message):
    text: Text
    ok: bool


@dataclass
class TrainRun:
    number: int
    config: object
    control: object
    events: list = field(default_factory=list)
    shown: int = 0
    steps: list = field(default_factory=list)        # (step, loss)
    evals: list = field(default_factory=list)        # (step, eval loss)
    result: object = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        return self.result is None and self.error is None


class TrainPane(Horizontal):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: TrainRun | None = None
        self.runs: list[TrainRun] = []
        self._preview_timer = None
        self._painted = {"status": 0.0, "chart": 0.0, "log": 0.0}
        self._log_lines: list[Text] = []
        self._paint_timers: dict[str, object] = {}
        self._last_step: dict | None = None
        self._chart_run: TrainRun | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="train-left"):
            with Grid(id="train-data-row"):
                yield LabeledInput("train data (file, folder, hub)", "", "train-data", None)
                yield LabeledInput("test data (empty: hold out 10 %)", "", "train-test", None)
            yield Static("", id="train-preview")
            # A grid, not a row: at any width every label and field stays whole.
            with Grid(id="train-settings"):
                yield LabeledInput("epochs", "2", "train-epochs", None)
                yield LabeledInput("lr", "5e-5", "train-lr", None)
                yield LabeledInput("batch", "8", "train-batch", None)
                yield LabeledInput("block", "", "train-block", None)
                yield LabeledInput("eval every", "0", "train-eval-every", None)
                with Vertical(classes="train-switch"):
                    yield Static("pack")
                    yield Switch(True, id="train-pack")
                with Vertical(classes="train-select"):
                    yield Static("precision")
                    yield Select([(v, v) for v in ("auto", "no", "bf16", "fp16")], value="auto",
                                 allow_blank=False, id="train-precision", compact=True)
                yield LabeledInput("output folder", DEFAULT_OUT, "train-out", None, id="train-out-box")
            yield ProgressBar(id="train-progress", show_eta=False)
            yield Static("F8 start · F9 stop · ctrl+s save now · ctrl+b before/after", id="train-status")
            yield PlotextPlot(id="train-chart")
        with Vertical(id="train-right"):
            yield RichLog(id="train-log", wrap=True, markup=False, max_lines=2000, min_width=20)
            yield OptionList(id="train-runs")

    def on_mount(self) -> None:
        self.query_one("#train-data", Input).suggester = PathSuggester()
        self.query_one("#train-test", Input).suggester = PathSuggester()
        self.query_one("#train-log").border_title = "evals and samples"
        self.query_one("#train-runs").border_title = "runs this session"
        self.query_one("#train-chart").border_title = "loss"
        self.query_one("#train-progress").display = False
        self._draw_chart(None)

    def on_session(self, session) -> None:
        data = self.query_one("#train-data", Input)
        if not data.value:
            from core.data import sample_corpus_path

            # The shipped corpus: `Start training` works at once on a fresh install.
            data.value = short_path(sample_corpus_path())
        # The model's defaults, the same `rugpt-tui train` uses.
        from core.training import train_defaults

        defaults = train_defaults(session.info.model, session.max_positions)
        shown = {"epochs": f"{defaults['epochs']:g}", "lr": f"{defaults['lr']:.0e}".replace("e-0", "e-"),
                 "batch_size": str(defaults["batch_size"]), "block_size": str(defaults["block_size"])}
        for field_id, key in (("train-epochs", "epochs"), ("train-lr", "lr"),
                              ("train-batch", "batch_size"), ("train-block", "block_size")):
            self.query_one(f"#{field_id}", Input).value = shown[key]
        self.schedule_preview()

    def commands(self):
        yield SystemCommand("Start training", "Fine-tune on the chosen data (F8)", self.start)
        yield SystemCommand("Stop training", "Stop after the current step (F9)", self.stop)
        yield SystemCommand("Save checkpoint", "Save the current weights now (ctrl+s)", self.save_now)
        yield SystemCommand("Load dataset", "Choose the training data", self.focus_data)
        yield SystemCommand("Before / after", "Same prompt and seed on base and current weights (ctrl+b)",
                            self.app.action_before_after)
        yield SystemCommand("Reset to base weights", "Undo all training in this session",
                            self.app.action_reset_weights)

    def focus_data(self) -> None:
        self.app.action_show_tab("train")
        self.query_one("#train-data", Input).focus()

    # -- settings and data preview -------------------------------------------------------

    def read_config(self):
        from core.errors import UserError
        from core.training import TrainConfig

        def number(field_id, kind, name, optional=False):
            raw = self.query_one(f"#{field_id}", Input).value.strip()
            if optional and not raw:
                return None
            try:
                return kind(raw)
            except ValueError:
                raise UserError(f"{name}: {raw!r} is not a number") from None

        data = self.query_one("#train-data", Input).value.strip()
        if not data:
            raise UserError("train data: choose a file, a folder or a hub dataset")
        return TrainConfig(
            train=data, test=self.query_one("#train-test", Input).value.strip() or None,
            epochs=number("train-epochs", float, "epochs"), lr=number("train-lr", float, "lr"),
            batch_size=number("train-batch", int, "batch"),
            block_size=number("train-block", int, "block", optional=True),
            eval_every=number("train-eval-every", int, "eval every"),
            pack=self.query_one("#train-pack", Switch).value,
            mixed_precision=self.query_one("#train-precision", Select).value,
            out=self.query_one("#train-out", Input).value.strip() or None,
        ).validate()

    @on(Input.Changed, "#train-out")
    def out_changed(self) -> None:
        self.check_out_field(quiet=True)

    def check_out_field(self, quiet: bool = False) -> str | None:
        """The output folder under the rule every model write follows: a problem is shown on
        the field (and, unless `quiet`, in the status line and a notification)."""
        from core.errors import UserError
        from core.safe_write import check_output_folder

        field = self.query_one("#train-out", Input)
        value = field.value.strip()
        problem = None
        if value:
            try:
                check_output_folder(value, "output folder")
            except UserError as exc:
                problem = str(exc)
        field.set_class(problem is not None, "-invalid")
        field.tooltip = problem
        if problem and not quiet:
            self.query_one("#train-status", Static).update(Text(problem, style="red"))
            self.app.notify(problem, title="Output folder", severity="error", timeout=8)
        return problem

    @on(Input.Changed, "#train-data, #train-test, #train-block")
    @on(Switch.Changed, "#train-pack")
    def data_changed(self) -> None:
        self.schedule_preview()

    def schedule_preview(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.4, self._start_preview)

    def _start_preview(self) -> None:
        session = self.app.session
        if session is None:
            return
        try:
            config = self.read_config()
        except Exception as exc:
            self.query_one("#train-preview", Static).update(Text(str(exc), style="red"))
            return
        self.app.run_worker(lambda: self._preview(session, config), thread=True, exclusive=True,
                            group="train-preview", name="train-preview")

    def _preview(self, session, config) -> None:
        from core.errors import UserError
        from core.training import prepare_data

        block = config.block_size or min(session.max_positions, 1024)
        try:
            data = prepare_data(session.tokenizer, config, block)
        except UserError as exc:
            self.post_message(DataPreview(Text(str(exc), style="red"), False))
            return
        except Exception as exc:  # never a traceback on screen
            self.post_message(DataPreview(Text(one_line(exc), style="red"), False))
            return
        tr, te = data.stats["train"], data.stats["test"]
        text = Text()
        text.append(f"train {tr['samples']} samples · {tr['tokens']:,} tokens · longest {tr['longest']}", style="green")
        if tr["truncated"]:
            text.append(f" · {tr['truncated']} longer than the block", style="yellow")
        text.append(f"   test {te['samples']} samples · {te['tokens']:,} tokens")
        text.append(f"   → {data.stats['train_rows']} {'blocks' if config.pack else 'rows'} of ≤ {block}")
        self.post_message(DataPreview(text, True))

    def on_data_preview(self, message: DataPreview) -> None:
        self.query_one("#train-preview", Static).update(message.text)

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        from core.compare import remember_base
        from core.errors import UserError
        from core.training import TrainControl

        session = self.app.session
        if session is None:
            self.app.notify("No model loaded yet", severity="warning")
            return
        if self.run is not None and self.run.running:
            self.app.notify("A training run is already going (F9 stops it)", severity="warning")
            return
        try:
            config = self.read_config()
        except UserError as exc:
            self.app.notify(str(exc), title="Start training", severity="error")
            return
        if self.check_out_field() is not None:
            return
        remember_base(session)   # "before" stays the model as loaded
        run = TrainRun(number=len(self.runs) + 1, config=config, control=TrainControl(save_on_stop=False))
        self.run = run
        self.runs.append(run)
        self.query_one("#train-runs", OptionList).add_option(Option(f"#{run.number} running…"))
        self.query_one("#train-log", RichLog).write(
            Text(f"— run #{run.number}: {describe(config.train)}", style="bold"))
        progress = self.query_one("#train-progress", ProgressBar)
        progress.display = True   # hidden while idle: an empty bar would pulse forever
        progress.update(total=None, progress=0)
        self.query_one("#train-status", Static).update("preparing data…")
        # Owned by the App, not the pane: switching tabs never stops it.
        self.app.run_worker(lambda: self._train(session, run), thread=True, exclusive=True,
                            group="train", name="train")

    def _train(self, session, run: TrainRun) -> None:
        from textual.worker import get_current_worker

        from core.errors import UserError
        from core.training import train

        worker = get_current_worker()  # cancelled when the app exits: never outlive it

        def on_event(event):
            with run.lock:
                run.events.append(event)
            self.post_message(TrainingProgress())

        try:
            run.result = train(session, run.config, on_event=on_event, control=run.control,
                               should_stop=lambda: worker.is_cancelled)
        except UserError as exc:
            run.error = str(exc)
        except Exception as exc:  # one line on screen, the app keeps running
            run.error = one_line(exc)
        self.post_message(TrainingFinished(run))

    def stop(self) -> None:
        if self.run is not None and self.run.running:
            self.run.control.stop.set()
            self.query_one("#train-status", Static).update("stopping after this step…")

    def save_now(self) -> None:
        run = self.run
        if run is not None and run.running:
            if run.config.out is None:
                self.app.notify("Set an output folder first", severity="warning")
            else:
                run.control.save_now.set()
            return
        session = self.app.session
        if session is None:
            return
        out = self.query_one("#train-out", Input).value.strip() or DEFAULT_OUT
        if self.check_out_field() is not None:
            return
        self.app.run_worker(lambda: self._save_current(session, out), thread=True, group="save")

    def _save_current(self, session, out: str) -> None:
        from core.checkpoint import save_locked
        from core.errors import SaveError, UserError

        try:
            with session.lock:
                save_locked(out, session.model, session.tokenizer,
                            {"step": 0, "note": "saved from the app"})
        except Exception as exc:   # one line; the app and the previous save stay
            message = str(exc) if isinstance(exc, (UserError, SaveError)) else one_line(exc)
            self.app.call_from_thread(self.app.notify, message, title="Save checkpoint",
                                      severity="error", timeout=8)
            return
        self.app.call_from_thread(self.app.notify, f"saved to {out}", title="Save checkpoint")

    def on_training_progress(self, message: TrainingProgress) -> None:
        run = self.run
        if run is None:
            return
        with run.lock:
            new = run.events[run.shown:]
            run.shown = len(run.events)
        lines = self._log_lines
        last_step = None
        for event in new:
            kind = event["event"]
            if kind == "step":
                run.steps.append((event["step"], event["loss"]))
                last_step = event
            elif kind == "eval":
                run.evals.append((event["step"], event["eval_loss"]))
                lines.append(Text(f"step {event['step']}: eval loss {event['eval_loss']:.4f} · "
                                  f"perplexity {event['perplexity']:.1f}", style="cyan"))
            elif kind == "sample":
                lines.append(Text(f"  {event['text']}", style="italic"))
            elif kind == "stats":
                tr = event["train"]
                lines.append(Text(f"{tr['samples']} samples, {tr['tokens']:,} tokens, "
                                  f"{event['train_rows']} rows ({event['mode']})"))
            elif kind == "saved":
                lines.append(Text(f"saved at step {event['step']} → {event['out']}", style="green"))
            elif kind in ("notice", "error"):
                lines.append(Text(event["message"], style="yellow" if kind == "notice" else "red"))
        if lines:
            # A new line scrolls (and so repaints) the whole log: lines that come close
            # together are written in one go.
            self._paint_soon("log", LOG_EVERY_S, self._flush_log)
        if last_step is not None:
            self._last_step = last_step
            self._paint_soon("status", STATUS_EVERY_S, self._paint_status)
            self._paint_soon("chart", CHART_EVERY_S, lambda: self._draw_chart(run))

    def _paint_soon(self, what: str, every: float, paint) -> None:
        """Paint now if `what` was last painted `every` seconds ago, else once when it is due."""
        wait = self._painted[what] + every - time.monotonic()
        if wait <= 0:
            self._painted[what] = time.monotonic()
            paint()
        elif what not in self._paint_timers:
            def due() -> None:
                del self._paint_timers[what]
                self._painted[what] = time.monotonic()
                paint()
            self._paint_timers[what] = self.set_timer(wait, due)

    def paint_now(self) -> None:
        """Draw everything that waits for its turn (log lines, status, chart) now."""
        for timer in self._paint_timers.values():
            timer.stop()
        self._paint_timers.clear()
        self._flush_log()
        self._paint_status()
        self._draw_chart(self.run)

    def _flush_log(self) -> None:
        log = self.query_one("#train-log", RichLog)
        for line in self._log_lines:
            log.write(line)
        self._log_lines.clear()

    def _paint_status(self) -> None:
        run, step = self.run, self._last_step
        if run is None or step is None:
            return
        done, total = step["step"], step["total_steps"]
        self.query_one("#train-progress", ProgressBar).update(total=total, progress=done)
        elapsed = time.monotonic() - run.started
        eta = elapsed / done * (total - done) if done else 0
        # One line (≤ 80 columns), so an update never changes the layout.
        self.query_one("#train-status", Static).update(
            f"step {done}/{total} · epoch {step['epoch']:.2f} · loss {step['loss']:.4f} · "
            f"lr {step['lr']:.1e} · {step['tokens_per_s']:,.0f} tok/s · ETA {eta:.0f} s",
            layout=False)

    def on_training_finished(self, message: TrainingFinished) -> None:
        run = message.run
        self.app.query_one("GeneratePane").schedule_inspect()   # new weights, new next token
        self.on_training_progress(TrainingProgress())
        self.paint_now()   # the final state, drawn at once
        runs = self.query_one("#train-runs", OptionList)
        if run.error:
            summary = f"#{run.number} failed: {run.error}"
            self.query_one("#train-status", Static).update(Text(run.error, style="red"))
            self.app.notify(run.error, title="Training", severity="error")
        else:
            r = run.result
            loss = f"eval {r.eval_loss:.3f}" if r.eval_loss is not None else "no eval"
            summary = f"#{run.number} {r.steps} steps · {loss} · {r.stop_reason}"
            saved = f" · saved to {r.out}" if r.out else ""
            self.query_one("#train-status", Static).update(
                f"finished: {r.steps} steps · {loss} · stop: {r.stop_reason}{saved}")
            if r.save_error:
                self.query_one("#train-status", Static).update(Text(r.save_error, style="red"))
                self.app.notify(r.save_error, title="Training", severity="error", timeout=8)
        runs.replace_option_prompt_at_index(run.number - 1, summary)

    @on(OptionList.OptionSelected, "#train-runs")
    def show_run(self, event: OptionList.OptionSelected) -> None:
        self._draw_chart(self.runs[event.option_index])

    def on_resize(self) -> None:
        # the chart's labels depend on its height: draw it again for the new size
        self.call_after_refresh(self._draw_chart, self._chart_run)

    def _draw_chart(self, run: TrainRun | None) -> None:
        self._chart_run = run
        chart = self.query_one("#train-chart", PlotextPlot)
        chart.border_title = "loss" if run is None else f"loss · run #{run.number}"
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        # No colours of its own but the two lines': the pane's background shows through,
        # and a redraw sends a few colour changes per row instead of one per cell.
        plt.theme("clear")
        if chart.size.height >= 14:   # on a short terminal every row goes to the curve
            plt.xlabel("step")
        if run is not None and run.steps:
            plt.plot([s for s, _ in run.steps], [v for _, v in run.steps], label="train",
                     marker="braille", color="cyan")
            if run.evals:
                plt.plot([s for s, _ in run.evals], [v for _, v in run.evals], label="eval",
                         marker="dot", color="orange")
        chart.refresh()

    @property
    def training(self) -> bool:
        return self.run is not None and self.run.running
