"""F4 — the Train pane: pick data, see its statistics, fine-tune in the background, watch the
loss fall and the samples change, and keep talking to the model in the Generate pane."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, ProgressBar, RichLog, SelectionList, Static, Switch

from core.checkpoint import save_locked
from core.data import describe, fingerprint, sample_corpus_path
from core.errors import SaveError, UserError, one_line
from core.safe_write import check_output_folder
from core.settings import TRAIN_SETTINGS, by_name, default_block_size, train_defaults
from core.store import RunRecorder
from core.train_config import TrainConfig, TrainControl
from tui.messages import Replaceable, SessionChanged, WeightsChanged
from tui.train_run import (
    RUN_COLOURS,
    Curve,
    LossChart,
    PaintPacer,
    TrainRun,
    log_line,
    preview_text,
    run_summary,
)
from tui.widgets import (
    LabeledInput,
    PathSuggester,
    SettingField,
    changed_values,
    read_fields,
    short_path,
)

if TYPE_CHECKING:
    from core.session import ModelSession
    from core.store import Store

# The settings the pane shows, in its grid's order; the rest keep their defaults.
SHOWN = ("epochs", "lr", "batch_size", "block_size", "eval_every", "pack", "mixed_precision")
DEFAULT_OUT = "rugpt-finetuned"
# However fast the steps come, the screen (and the SSH link) sees the status line and the
# progress bar at most twice a second, the chart once a second and new log lines in one
# batch every 2 s; the last state is always drawn.
STATUS_EVERY_S = 0.5
CHART_EVERY_S = 1.0
LOG_EVERY_S = 2.0


class TrainingProgress(Replaceable):
    """New training events wait in the run's buffer."""


@dataclass
class TrainingFinished(Message):
    run: TrainRun


@dataclass
class SaveFinished(Message):
    message: str
    ok: bool


@dataclass
class DataPreview(Message):
    text: Text
    ok: bool


class TrainPane(Horizontal):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: TrainRun | None = None
        self.runs: list[TrainRun] = []
        self._preview_timer = None
        self._pacer = PaintPacer(self)
        self._log_lines: list[Text] = []
        self._shown_run: int | None = None     # the run the chart shows when none is ticked
        self._defaults: dict = {}              # what the fields showed for this model
        self._past: dict[int, dict] = {}       # runs the workspace remembers, by id
        self._past_curves: dict[int, Curve] = {}
        self.log_scale = False

    def compose(self) -> ComposeResult:
        with Vertical(id="train-left"):
            with Grid(id="train-data-row"):
                yield LabeledInput("train data (file, folder, hub)", "", "train-data", None)
                yield LabeledInput("test data (empty: hold out 10 %)", "", "train-test", None)
            yield Static("", id="train-preview")
            # A grid, not a row: at any width every label and field stays whole.
            with Grid(id="train-settings"):
                settings = by_name(TRAIN_SETTINGS)
                for name in SHOWN:
                    yield SettingField(settings[name], settings[name].default, "train")
                yield LabeledInput("output folder", DEFAULT_OUT, "train-out", None, id="train-out-box")
            yield ProgressBar(id="train-progress", show_eta=False)
            yield Static("F8 start · F9 stop · ctrl+s save now · ctrl+b before/after", id="train-status")
            yield LossChart(id="train-chart")
        with Vertical(id="train-right"):
            yield RichLog(id="train-log", wrap=True, markup=False, max_lines=2000, min_width=20)
            yield SelectionList[int](id="train-runs")

    def on_mount(self) -> None:
        self.query_one("#train-data", Input).suggester = PathSuggester()
        self.query_one("#train-test", Input).suggester = PathSuggester()
        self.query_one("#train-log").border_title = "evals and samples"
        runs = self.query_one("#train-runs")
        runs.border_title = "runs"
        runs.border_subtitle = "space: overlay · ctrl+l: log"
        self.query_one("#train-progress").display = False
        self.query_one(LossChart).draw([])
        store = self.app.store
        if store is not None:
            self._past = {row["id"]: row for row in store.runs(limit=200)}
        self._fill_runs_list()

    def on_session_changed(self, message: SessionChanged) -> None:
        session = message.session
        data = self.query_one("#train-data", Input)
        if not data.value:
            # The shipped corpus: `Start training` works at once on a fresh install.
            data.value = short_path(sample_corpus_path())
        # The model's defaults, the same `rugpt-tui train` uses, then what was last chosen
        # for this model.
        self._defaults = train_defaults(session.info.model, session.max_positions)
        for field in self.query(SettingField):
            name = field.setting.name
            field.show(message.remembered.get(name, self._defaults[name]))
        self.schedule_preview()

    def restore_paths(self, paths: dict[str, str]) -> None:
        """The data and output paths last used."""
        for key, field_id in (("train", "train-data"), ("test", "train-test"), ("out", "train-out")):
            if key in paths:
                self.query_one(f"#{field_id}", Input).value = paths[key]

    def data_paths(self) -> dict[str, str]:
        values = {key: self.query_one(f"#{field_id}", Input).value.strip()
                  for key, field_id in (("train", "train-data"), ("test", "train-test"), ("out", "train-out"))}
        return {key: value for key, value in values.items() if value}

    def changed_settings(self) -> dict:
        """The valid settings on screen that differ from this model's defaults."""
        return changed_values(self.query(SettingField), self._defaults)

    def commands(self):
        yield SystemCommand("Start training", "Fine-tune on the chosen data (F8)", self.start)
        yield SystemCommand("Stop training", "Stop after the current step (F9)", self.stop)
        yield SystemCommand("Save checkpoint", "Save the current weights now (ctrl+s)", self.save_now)
        yield SystemCommand("Load dataset", "Choose the training data", self.focus_data)

    def focus_data(self) -> None:
        self.app.action_show_tab("train")
        self.query_one("#train-data", Input).focus()

    @property
    def training(self) -> bool:
        return self.run is not None and self.run.running

    # -- settings and data preview -------------------------------------------------------

    def read_config(self) -> TrainConfig:
        data = self.query_one("#train-data", Input).value.strip()
        if not data:
            raise UserError("train data: choose a file, a folder or a hub dataset")
        return TrainConfig(
            train=data, test=self.query_one("#train-test", Input).value.strip() or None,
            out=self.query_one("#train-out", Input).value.strip() or None,
            **read_fields(self.query_one("#train-settings")),
        ).validate()

    @on(Input.Changed, "#train-out")
    def out_changed(self) -> None:
        self.check_out_field(quiet=True)

    def check_out_field(self, quiet: bool = False) -> str | None:
        """The output folder under the rule every model write follows: a problem is shown on
        the field (and, unless `quiet`, in the status line and a notification)."""
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

    @on(Input.Changed, "#train-data, #train-test, #train-block-size")
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
        except UserError as exc:
            self.query_one("#train-preview", Static).update(Text(str(exc), style="red"))
            return
        self.app.run_worker(lambda: self._preview(session, config), thread=True, exclusive=True,
                            group="train-preview", name="train-preview")

    def _preview(self, session: ModelSession, config: TrainConfig) -> None:
        from core.train_data import prepare_data

        block = config.block_size or default_block_size(session.max_positions)
        try:
            data = prepare_data(session.tokenizer, config, block)
        except Exception as exc:  # one line, never a traceback on screen
            error = str(exc) if isinstance(exc, UserError) else one_line(exc)
            self.post_message(DataPreview(Text(error, style="red"), False))
            return
        self.post_message(DataPreview(preview_text(data.stats, block, config.pack), True))

    def on_data_preview(self, message: DataPreview) -> None:
        self.query_one("#train-preview", Static).update(message.text)

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        from core.compare import remember_base

        session = self.app.session
        if session is None:
            self.app.notify("No model loaded yet", severity="warning")
            return
        if self.training:
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
        store = self.app.store
        number = (store.start_run(session.info.model, config) if store is not None
                  else len(self.runs) + 1)
        run = TrainRun(number=number, config=config, control=TrainControl(save_on_stop=False))
        self.run = run
        self.runs.append(run)
        self._shown_run = run.number
        self._fill_runs_list()
        self.query_one("#train-log", RichLog).write(
            Text(f"— run #{run.number}: {describe(config.train)}", style="bold"))
        progress = self.query_one("#train-progress", ProgressBar)
        progress.display = True   # hidden while idle: an empty bar would pulse forever
        progress.update(total=None, progress=0)
        self.query_one("#train-status", Static).update("preparing data…")
        # Owned by the App, not the pane: switching tabs never stops it.
        self.app.run_worker(lambda: self._train(session, run, store), thread=True, exclusive=True,
                            group="train", name="train")

    def _train(self, session: ModelSession, run: TrainRun, store: Store | None) -> None:
        from textual.worker import get_current_worker

        from core.training import train

        worker = get_current_worker()
        run.control.cancelled = lambda: worker.is_cancelled   # the app exits: never outlive it
        record = None
        if store is not None:   # the workspace keeps every step, eval and sample as it comes
            store.set_data_hash(run.number, fingerprint(run.config.train))
            record = RunRecorder(store, run.number)

        def on_event(event) -> None:
            run.events.push(event)
            if record is not None:
                record(event)
            self.post_message(TrainingProgress())

        try:
            run.result = train(session, run.config, on_event=on_event, control=run.control)
        except UserError as exc:
            run.error = str(exc)
        except Exception as exc:  # one line on screen, the app keeps running
            run.error = one_line(exc)
        if run.error and store is not None:
            store.end_run(run.number, "failed", run.error)
        self.post_message(TrainingFinished(run))

    def stop(self, save: bool = False) -> None:
        """Stop after the current step; with `save`, save a checkpoint first (when the run
        has an output folder)."""
        if self.training:
            self.run.control.save_on_stop = save and self.run.config.out is not None
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

    def _save_current(self, session: ModelSession, out: str) -> None:
        try:
            with session.lock:
                save_locked(out, session.model, session.tokenizer,
                            {"step": 0, "note": "saved from the app"})
        except Exception as exc:   # one line; the app and the previous save stay
            message = str(exc) if isinstance(exc, (UserError, SaveError)) else one_line(exc)
            self.post_message(SaveFinished(message, False))
            return
        self.post_message(SaveFinished(f"saved to {out}", True))

    def on_save_finished(self, message: SaveFinished) -> None:
        self.app.notify(message.message, title="Save checkpoint",
                        severity="information" if message.ok else "error",
                        timeout=5 if message.ok else 8)

    def on_training_progress(self, message: TrainingProgress) -> None:
        run = self.run
        if run is None:
            return
        new = run.take_new()
        self._log_lines.extend(line for line in map(log_line, new) if line is not None)
        if self._log_lines:
            # A new line scrolls (and so repaints) the whole log: lines that come close
            # together are written in one go.
            self._pacer.soon("log", LOG_EVERY_S, self._flush_log)
        if run.last_step is not None:
            self._pacer.soon("status", STATUS_EVERY_S, self._paint_status)
            self._pacer.soon("chart", CHART_EVERY_S, self.draw_chart)

    def paint_now(self) -> None:
        """Draw everything that waits for its turn (log lines, status, chart) now."""
        self._pacer.cancel()
        self._flush_log()
        self._paint_status()
        self.draw_chart()

    def _flush_log(self) -> None:
        log = self.query_one("#train-log", RichLog)
        for line in self._log_lines:
            log.write(line)
        self._log_lines.clear()

    def _paint_status(self) -> None:
        run = self.run
        if run is None or run.last_step is None:
            return
        self.query_one("#train-progress", ProgressBar).update(
            total=run.last_step.total_steps, progress=run.last_step.step)
        self.query_one("#train-status", Static).update(run.status_line(), layout=False)

    def on_training_finished(self, message: TrainingFinished) -> None:
        run = message.run
        self.app.post_message(WeightsChanged())   # new weights: the other panes look again
        self.on_training_progress(TrainingProgress())
        self.paint_now()   # the final state, drawn at once
        status = self.query_one("#train-status", Static)
        if run.error:
            status.update(Text(run.error, style="red"))
            self.app.notify(run.error, title="Training", severity="error")
        else:
            r = run.result
            loss = f"eval {r.eval_loss:.3f}" if r.eval_loss is not None else "no eval"
            saved = f" · saved to {r.out}" if r.out else ""
            status.update(f"finished: {r.steps} steps · {loss} · stop: {r.stop_reason}{saved}")
            if r.save_error:
                status.update(Text(r.save_error, style="red"))
                self.app.notify(r.save_error, title="Training", severity="error", timeout=8)
        self._fill_runs_list()

    # -- the runs list and the chart ---------------------------------------------------------

    def _fill_runs_list(self) -> None:
        """Every run, newest first: this session's and those the workspace remembers."""
        runs = self.query_one("#train-runs", SelectionList)
        ticked = set(runs.selected)
        mine = {run.number: run for run in self.runs}
        entries = [(number, run.summary()) for number, run in mine.items()]
        entries += [(rid, run_summary(rid, row["steps"], row["eval_loss"], row["status"],
                                      describe(row["train"]), row["time"][:16].replace("T", " ")))
                    for rid, row in self._past.items() if rid not in mine]
        entries.sort(key=lambda entry: -entry[0])
        highlighted = runs.highlighted
        runs.clear_options()
        runs.add_options([(label, number, number in ticked) for number, label in entries])
        if entries:
            runs.highlighted = min(highlighted or 0, len(entries) - 1)

    @on(SelectionList.SelectionHighlighted, "#train-runs")
    def run_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        if event.selection.value != self._shown_run:
            self._shown_run = event.selection.value
            self.draw_chart()

    @on(SelectionList.SelectedChanged, "#train-runs")
    def overlay_changed(self) -> None:
        self.draw_chart()

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self.draw_chart()

    def on_resize(self) -> None:
        # the chart's labels depend on its height: draw it again for the new size
        self.call_after_refresh(self.draw_chart)

    def _curve(self, number: int) -> Curve | None:
        run = next((r for r in self.runs if r.number == number), None)
        if run is not None:
            return run.curve()
        if number not in self._past_curves and self.app.store is not None:
            steps, evals = self.app.store.curves(number)
            self._past_curves[number] = Curve(f"#{number}", steps, evals)
        return self._past_curves.get(number)

    def draw_chart(self) -> None:
        """The ticked runs overlaid; with none ticked, the highlighted (or running) run."""
        numbers = list(self.query_one("#train-runs", SelectionList).selected)[:len(RUN_COLOURS)]
        if not numbers and self._shown_run is not None:
            numbers = [self._shown_run]
        curves = [c for c in map(self._curve, sorted(numbers)) if c is not None]
        self.query_one(LossChart).draw(curves, self.log_scale)
