"""F4 — the Train pane: pick data, see its statistics, fine-tune in the background, watch the
loss fall and the samples change, and keep talking to the model in the Generate pane."""

from __future__ import annotations

import os
import signal
import socket
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, RichLog, Static

from core.base.errors import UserError, one_line
from core.data.source import source_name
from core.store.database import resolved
from core.training.config import TrainControl, check_paths
from tui.panes.host import host
from tui.panes.train import hardware_view, queue_view
from tui.panes.train.form import OutFolderChecked, TrainForm
from tui.panes.train.hardware_view import HardwareRead, short_line
from tui.panes.train.run import (
    LossChart,
    PaintPacer,
    TrainRun,
    foreign_live,
    log_line,
    other_run_lines,
    other_run_status,
)
from tui.panes.train.runs_list import RunsList
from tui.panes.train.saving import save_loaded_model
from tui.panes.train.worker import TrainingFinished, TrainingProgress, run_training
from tui.render.notify import ring_if_away
from tui.widgets.messages import SessionChanged, WeightsChanged

if TYPE_CHECKING:
    from core.base.hardware import Reading
    from core.model.session import ModelSession
    from core.store.database import Store

# However fast the steps come, the screen (and the SSH link) sees the status line and the
# progress bar at most twice a second, the chart once a second and new log lines in one
# batch every 2 s; the last state is always drawn.
STATUS_EVERY_S = 0.5
CHART_EVERY_S = 1.0
LOG_EVERY_S = 2.0
POLL_S = 1.0   # how often the workspace is read for runs of other processes


class TrainPane(Horizontal):
    # over the pane's fields too (an Input's ctrl+u would clear it): the queue is one key away
    BINDINGS = [Binding("ctrl+u", "show_queue", "Queue", show=False, priority=True)]
    IDLE_HINT = "F8 start · F9 stop · ctrl+s save · ctrl+b before/after · ctrl+u queue"   # ≤ 78: whole at 80×24

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: TrainRun | None = None
        self.runs: list[TrainRun] = []
        self.form = TrainForm(id="train-form")
        self._pacer = PaintPacer(self)
        self._log_lines: list[Text] = []
        self._diffed: list[int] = []   # the two ticked runs whose difference the log said
        self.runs_list = RunsList(self.runs, id="train-runs")
        self._other_logged: dict[int, set] = {}   # evals and samples of other runs, shown
        self.log_scale = False
        self.by_tokens = False   # the chart's x axis: steps, or tokens seen
        self._noted_out = False   # the status line says whose model the output folder holds
        self.hardware: Reading | None = None   # the newest reading while a run trains
        self.watched_pid: int | None = None    # another process's run whose hardware is read

    def compose(self) -> ComposeResult:
        with Vertical(id="train-left"):
            yield self.form
            yield ProgressBar(id="train-progress", show_eta=False)
            yield Static(self.IDLE_HINT, id="train-status")
            yield LossChart(id="train-chart")
        with Vertical(id="train-right"):
            yield RichLog(id="train-log", wrap=True, markup=False, max_lines=2000, min_width=20)
            yield self.runs_list

    def on_mount(self) -> None:
        self.query_one("#train-log").border_title = "evals and samples"
        self.runs_list.border_title = "runs"
        self.runs_list.border_subtitle = "space overlay · q queue · ctrl+l log"
        self.query_one(LossChart).draw([])
        if self.runs_list.load(host(self).store):   # a workspace to follow
            self.set_interval(POLL_S, self.poll_workspace)

    def on_session_changed(self, message: SessionChanged) -> None:
        self.form.show_model(message.session, message.remembered)

    def restore_paths(self, paths: dict[str, str]) -> None:
        self.form.restore_paths(paths)

    def data_paths(self) -> dict[str, str]:
        return self.form.data_paths()

    def changed_settings(self) -> dict:
        return self.form.changed_settings()

    def commands(self):
        yield SystemCommand("Start training", "Fine-tune on the chosen data (F8)", self.start)
        yield SystemCommand("Stop training", "Stop after the current step (F9)", self.stop)
        yield SystemCommand("Queue this run", "Add the form's run (or its sweep) to the queue: "
                            "a headless runner starts it after the runs before it", self.queue_run)
        yield SystemCommand("Show queue", "The queued runs: reorder, remove, pause; a sweep's "
                            "table (ctrl+u)", self.action_show_queue)
        yield SystemCommand("Save checkpoint", "Save the current weights now (ctrl+s)", self.save_now)
        yield SystemCommand("Load dataset", "Choose the training data", self.focus_data)
        yield SystemCommand("Toggle x axis: steps / tokens seen", "The loss chart against tokens "
                            "trained, so runs of other batch sizes compare", self.toggle_x_axis)
        yield SystemCommand("Samples as trained", "The data's rows as the model is trained on "
                            "them: scored and unscored tokens (ctrl+w on this tab)", self.show_samples)

    def show_samples(self) -> None:
        from tui.panes.train.samples import toggle_samples

        toggle_samples(self, self.form.prepared)

    def focus_data(self) -> None:
        host(self).show_tab("train")
        self.form.focus_data()

    @property
    def training(self) -> bool:
        return self.run is not None and self.run.running

    def on_out_folder_checked(self, message: OutFolderChecked) -> None:
        """Whose model the chosen output folder holds, said before F8 replaces it."""
        if self.training:
            return
        status = self.query_one("#train-status", Static)
        if message.note:
            status.update(Text(message.note, style="yellow"))
        elif message.problem is None and self._noted_out:
            status.update(self.IDLE_HINT)
        self._noted_out = message.note is not None

    def out_folders(self) -> set[str]:
        """The folders this session's runs and the queue's save to (some not made yet)."""
        return ({resolved(run.config.out) for run in self.runs if run.config.out}
                | queue_view.queued_out_folders(host(self).store))

    def queue_run(self) -> None:
        """The form's run, or the sweep its fields describe, into the queue."""
        queue_view.queue_from_pane(self)

    def action_show_queue(self) -> None:   # ctrl+u, the palette, q on the runs list
        queue_view.open_queue(self)

    def on_runs_list_show_queue(self) -> None:
        self.action_show_queue()

    def check_out_field(self) -> str | None:
        """The output folder's problem, if it has one, said in the status line and a
        notification (the field is marked as it is typed)."""
        problem = self.form.check_out_field()
        if problem:
            self.query_one("#train-status", Static).update(Text(problem, style="red"))
            self.app.notify(problem, title="Output folder", severity="error", timeout=8)
        return problem

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        from core.model.weights import remember_base

        session = host(self).session
        if session is None:
            self.app.notify("No model loaded yet", severity="warning")
            return
        if self.training or queue_view.is_sweep(self.form):   # the next run, or a sweep's grid:
            self.queue_run()                                   # the queue's
            return
        self.form.next_out_folder(self.out_folders(), only_filled=True)   # another app's run?
        try:   # a setting out of range; data that is not there, or never ends; an output
            config = self.form.read_config()      # folder that is not ours
            if self.check_out_field() is not None:
                return
            check_paths(config)
        except UserError as exc:   # refused: no run is recorded
            self.app.notify(str(exc), title="Start training", severity="error", timeout=8)
            self.query_one("#train-status", Static).update(Text(str(exc), style="red"))
            return
        if not config.lora and session.adapter is None:
            remember_base(session)   # "before" stays the model as loaded (an adapter: switched off)
        store = host(self).store
        holder = self.form.model_in_out_folder()
        if holder is not None:   # the user chose that folder, told whose model it holds
            self.app.notify(f"this run's saves replace the model of run #{holder['id']} in "
                            f"{config.out}", title="Start training", timeout=6)
        number = (store.start_run(session.info.model, config) if store is not None
                  else len(self.runs) + 1)
        run = TrainRun(number=number, config=config, control=TrainControl(save_on_stop=False))
        self.run = run
        self.runs.append(run)
        self.form.next_out_folder(self.out_folders())   # the next run gets a folder of its own
        self.runs_list.shown = run.number
        self.runs_list.refill()
        self.query_one("#train-log", RichLog).write(
            Text(f"— run #{run.number}: {source_name(config.train)}", style="bold"))
        progress = self.query_one("#train-progress", ProgressBar)
        progress.add_class("-running")   # hidden while idle: an empty bar would pulse forever
        progress.update(total=None, progress=0)
        self.query_one("#train-status", Static).update("preparing data…")
        # Owned by the App, not the pane: switching tabs never stops it.
        self.app.run_worker(lambda: self._train(session, run, store), thread=True, exclusive=True,
                            group="train", name="train")
        hardware_view.watch_hardware(self, run)

    def _train(self, session: ModelSession, run: TrainRun, store: Store | None) -> None:
        from textual.worker import get_current_worker

        worker, app = get_current_worker(), host(self)   # the app is still reachable after it quit
        # The app quits: the run stops with it — unless the terminal hung up, when the run
        # goes on detached to its end (the app's process waits for it).
        run_training(session, run, store, self.post_message,
                     cancelled=lambda: worker.is_cancelled and not app.detached,
                     detached=lambda: app.detached is not None)

    def stop(self, save: bool = False) -> None:
        """Stop after the current step; with `save`, save a checkpoint first (when the run
        has an output folder). With no run of ours going, a run of another process that is
        highlighted is asked to save and stop (SIGTERM)."""
        if (run := self.run) is not None and run.running:
            run.control.save_on_stop = save and run.config.out is not None
            run.control.stop.set()
            self.query_one("#train-status", Static).update("stopping after this step…")
            return
        row = self.runs_list.shown_row()
        if row is not None and foreign_live(row) and row["host"] == socket.gethostname():
            try:
                os.kill(row["pid"], signal.SIGTERM)
            except OSError as exc:
                self.app.notify(one_line(exc), title="Stop training", severity="error")
                return
            self.query_one("#train-status", Static).update(
                f"run #{row['id']} (process {row['pid']}) saves and stops after its step…")

    # -- runs of other processes (detached after a hangup, or a CLI run) --------------------

    def poll_workspace(self) -> None:
        """Runs as the workspace has them now: a run of another process is shown live — its
        curve, evals, samples and ETA — as it writes them."""
        changed = self.runs_list.poll()
        self.runs_list.show_queue_size()
        if self.runs_list.shown in changed and not self.training:
            self.draw_chart()
            self._show_other_run(self.runs_list.past[self.runs_list.shown])

    def _show_other_run(self, row: dict) -> None:
        """The status line and new evals and samples of a run of another process."""
        store = self.runs_list.store
        if foreign_live(row) and store is not None:
            self.query_one("#train-status", Static).update(other_run_status(row), layout=False)
            hardware_view.follow_other_run(self, row)
            shown = self._other_logged.setdefault(row["id"], set())
            self._log_lines.extend(other_run_lines(store, row["id"], shown))
            self._flush_log()

    def save_now(self) -> None:
        run = self.run
        if run is not None and run.running:
            if run.config.out is None:
                self.app.notify("Set an output folder first", severity="warning")
            else:
                run.control.save_now.set()
            return
        session = host(self).session
        if session is None:
            return
        out = self.form.out_folder()
        if self.check_out_field() is not None:
            return
        save_loaded_model(self.app, session, out)

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
        if run.last_step is not None or run.tokenizing is not None:
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
        if run is None:
            return
        status = self.query_one("#train-status", Static)
        if run.last_step is None and run.tokenizing is not None and run.running:
            done, total = run.tokenizing.done, run.tokenizing.total   # the data's first tokenization
            self.query_one("#train-progress", ProgressBar).update(total=total, progress=done)
            status.update(run.meter.line(None, done, total), layout=False)
            return
        if run.last_step is not None:
            self.query_one("#train-progress", ProgressBar).update(
                total=run.last_step.total_steps, progress=run.last_step.step)
        if not run.running:   # however late a paint comes, an ended run reads as ended
            status.update(run.end_line(), layout=False)
        elif run.last_step is not None:
            hardware = f" · {short_line(self.hardware)}" if self.hardware is not None else ""
            status.update(run.status_line() + hardware, layout=False)

    def on_hardware_read(self, message: HardwareRead) -> None:
        self.hardware = message.reading
        self.query_one(LossChart).border_subtitle = message.reading.line() if message.reading else ""

    def on_training_finished(self, message: TrainingFinished) -> None:
        run = message.run
        self.app.post_message(WeightsChanged())   # new weights: the other panes look again
        self.on_training_progress(TrainingProgress())
        self.paint_now()   # the final state, drawn at once
        problem, line = run.error or (run.result.save_error if run.result else None), run.end_line().plain
        self.app.notify(line, title=f"Run #{run.number} ended", severity="error" if problem else "information",
                        timeout=8 if problem else 5)
        ring_if_away(self.app, f"rugpt-tui: run #{run.number} ended", line)
        self.runs_list.refill()

    # -- the runs list and the chart ---------------------------------------------------------

    def on_runs_list_shown(self) -> None:
        self.draw_chart()
        ticked = sorted(self.runs_list.selected)
        store = host(self).store
        if len(ticked) == 2 and store is not None and ticked != self._diffed:
            self._diffed = ticked   # two runs side by side: how they differ, said once
            from core.store.run_diff import runs_difference

            first, second = (store.run(number) for number in ticked)
            if first is not None and second is not None:
                self._log_lines.append(Text(runs_difference(first, second), style="cyan"))
                self._flush_log()
        row = self.runs_list.shown_row()
        if row is not None and not self.training:
            self._show_other_run(row)

    def toggle_x_axis(self) -> None:
        """Steps, or tokens seen: runs of other batch or block sizes compare honestly."""
        self.by_tokens = not self.by_tokens
        self.draw_chart()

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self.draw_chart()

    def on_resize(self) -> None:
        # the chart's labels depend on its height: draw it again for the new size
        self.call_after_refresh(self.draw_chart)

    def draw_chart(self) -> None:
        self.query_one(LossChart).draw(self.runs_list.chosen(), self.log_scale, self.by_tokens)
