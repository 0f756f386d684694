"""The queue from the Train pane: F8 while a run goes (or `Queue this run`) queues the form's
settings as the next run, and a field typed with several values (`1e-4, 3e-4`) queues a
sweep's grid; the Queue window lists what is queued — reorder, remove, pause after the
current run — with the table of a sweep's runs, and Compare models on that sweep's best."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from core.base.errors import UserError
from core.base.safe_write import check_output_folder
from core.data.source import source_name
from core.queue.items import QueueItem, RunQueue, new_sweep
from core.queue.runner import ensure_runner
from core.queue.sweep import Combination, SweepAxis, grid, parse_sweep, sweep_rows
from core.store.database import resolved
from core.training.config import TrainConfig, check_paths
from tui.panes.host import host
from tui.render.summaries import sweep_lines
from tui.widgets.fields import SettingField
from tui.widgets.windows import Window

if TYPE_CHECKING:
    from tui.panes.train.form import TrainForm
    from tui.panes.train.pane import TrainPane

MAX_COMPARED = 4   # Compare models takes two to four


def sweep_axes(form: TrainForm) -> list[SweepAxis]:
    """The number fields typed with several values, comma-parted: the sweep's axes."""
    axes = []
    for field in form.query(SettingField):
        setting, control = field.setting, field.control
        if setting.kind in (int, float) and "," in str(control.value):
            axes.append(parse_sweep(f"{setting.name}={control.value}", shown=setting.label or setting.named))
    return axes


def is_sweep(form: TrainForm) -> bool:
    """A field holds several values: F8 queues the grid (a bad value is said then)."""
    try:
        return bool(sweep_axes(form))
    except UserError:
        return True


def queue_from_pane(pane: TrainPane) -> None:
    """The pane's form queued; the output folder field moves on to a free folder."""
    pane.form.next_out_folder(pane.out_folders(), only_filled=True)
    if pane.check_out_field() is None and queue_from_form(pane.form) is not None:
        pane.form.next_out_folder(pane.out_folders())   # the next run gets its own folder
        pane.poll_workspace()


def open_queue(pane: TrainPane) -> None:
    store = host(pane).store
    if store is None:
        pane.app.notify("the queue lives in the workspace database, which cannot be used",
                        title="Queue", severity="error")
        return
    pane.app.push_screen(QueueScreen(store))


def queued_settings(config: TrainConfig, device: str) -> dict:
    """A run's settings as the queue keeps them: every setting, the paths absolute (the
    runner starts elsewhere), the device the app's model is on."""
    settings = {k: v for k, v in asdict(config).items() if v is not None}
    for name in ("train", "test", "resume"):
        if name in settings and Path(settings[name]).expanduser().exists():
            settings[name] = resolved(settings[name])
    if config.out:
        settings["out"] = resolved(config.out)
    return {**settings, "device": device.split(":")[0]}   # the command line names a kind: cuda


def queue_from_form(form: TrainForm) -> list[str] | None:
    """The form's run (or its sweep's grid) added to the queue and the runner started: the
    output folders queued, or None when something was refused (said in a notification)."""
    app, store, session = form.app, host(form).store, host(form).session
    try:
        if store is None:
            raise UserError("the queue lives in the workspace database, which cannot be used")
        if session is None:
            raise UserError("no model loaded yet")
        axes = sweep_axes(form)
        combos = grid(axes) if axes else [Combination({}, "")]
        runs = []
        for combo in combos:   # every run checked before any is queued
            config = form.read_config(swept=combo.values)
            if axes:   # a sweep: the output folder holds one folder per run
                config = replace(config, out=str(check_output_folder(config.out or "", "output folder")
                                                 / combo.name))
            check_paths(config)
            runs.append((config, combo.name))
    except UserError as exc:
        app.notify(str(exc), title="Queue this run", severity="error", timeout=8)
        return None
    queue = RunQueue(store)
    sweep = new_sweep(store, {a.setting.name: a.values for a in axes}) if axes else None
    device = session.placement.device
    for config, name in runs:
        queue.add(session.info.model, queued_settings(config, device), sweep=sweep, name=name or None)
    ensure_runner()
    what = f"sweep {sweep}: {len(runs)} runs" if sweep is not None else "the run"
    app.notify(f"queued {what} — the runner starts each when the run before it ends "
               "(ctrl+u: the queue)", title="Queue", timeout=6)
    return [config.out for config, _ in runs if config.out]


def queued_out_folders(store) -> set[str]:
    """The output folders of the runs the queue holds: no new run takes one of them."""
    if store is None:
        return set()
    return {resolved(item.config["out"]) for item in RunQueue(store).items() if item.config.get("out")}


def item_line(item: QueueItem) -> Text:
    state = {"running": "green", "paused": "yellow"}.get(item.state, "")
    run = f" run #{item.run_id}" if item.run_id else ""
    return Text.assemble((f"{item.state:<8}", state), f"{run} {item.model} · "
                         f"{source_name(str(item.config.get('train')))}",
                         (f" · sweep {item.sweep} {item.name}" if item.sweep else "", "cyan"))


class QueueScreen(Window):
    DEFAULT_CSS = """
    QueueScreen { align: center middle; }
    #queue-box { width: 96%; max-width: 120; height: 90%; border: thick $primary;
                 background: $surface; padding: 0 1; }
    #queue-title { color: $text-muted; }
    #queue-items { height: 1fr; min-height: 3; }
    #queue-sweep { height: auto; max-height: 50%; overflow-y: auto; }
    """
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("shift+up,minus", "move(-1)", "Sooner"),
        Binding("shift+down,plus", "move(1)", "Later"),
        Binding("delete,x", "remove", "Remove"),
        Binding("p", "pause", "Pause / resume"),
        Binding("c", "compare", "Compare the sweep's best"),
    ]

    def __init__(self, store) -> None:
        super().__init__()
        self.queue = RunQueue(store)
        self.items: list[QueueItem] = []
        self.sweep: int | None = None   # the sweep whose table shows

    def compose(self) -> ComposeResult:
        with Vertical(id="queue-box"):
            yield Label(id="queue-head")
            yield Static("shift+↑↓ or -/+ move · x remove · p pause after this run / resume · "
                         "c compare the sweep's best · Esc closes", id="queue-title")
            yield OptionList(id="queue-items")
            yield Static(id="queue-sweep")

    def on_mount(self) -> None:
        self.query_one("#queue-items").focus()
        self.refresh_queue()
        self.set_interval(1.0, self.refresh_queue)   # the runner and other apps change it

    def refresh_queue(self) -> None:
        listing = self.query_one("#queue-items", OptionList)
        chosen, items = self.chosen(), self.queue.items()
        if items != self.items:   # rebuilt only when it changed: the highlight stays put
            self.items = items
            listing.clear_options()
            listing.add_options([Option(item_line(item), id=str(item.id)) for item in items])
            ids = [item.id for item in items]
            if ids:
                listing.highlighted = ids.index(chosen.id) if chosen is not None and chosen.id in ids else 0
        paused = self.queue.paused()
        self.query_one("#queue-head", Label).update(Text.assemble(
            ("Queue", "bold"), f" · {len(self.items)} run{'s' * (len(self.items) != 1)}",
            (" · paused: nothing more starts until p" if paused else "", "yellow")))
        self.show_sweep()

    def chosen(self) -> QueueItem | None:
        index = self.query_one("#queue-items", OptionList).highlighted
        return self.items[index] if index is not None and index < len(self.items) else None

    def on_option_list_option_highlighted(self) -> None:
        self.show_sweep()

    def show_sweep(self) -> None:
        """The table of the highlighted item's sweep, else of the newest sweep."""
        chosen = self.chosen()
        if chosen is not None and chosen.sweep is not None:
            self.sweep = chosen.sweep
        elif self.sweep is None:
            newest = self.queue.store.read("SELECT MAX(id) AS id FROM sweeps")[0]["id"]
            self.sweep = newest
        box = self.query_one("#queue-sweep", Static)
        rows = sweep_rows(self.queue.store, self.sweep) if self.sweep is not None else []
        box.update(Text(f"sweep {self.sweep}\n" + "\n".join(sweep_lines(rows))) if rows
                   else Text("no sweep yet: type several values into a field (1e-4, 3e-4), then F8",
                             style="dim"))

    def action_move(self, by: int) -> None:
        chosen = self.chosen()
        if chosen is not None and self.queue.move(chosen.id, by):
            self.refresh_queue()

    def action_remove(self) -> None:
        chosen = self.chosen()
        if chosen is None:
            return
        if chosen.state == "running":
            self.app.notify("the running run is stopped like any run: F9 on the Train pane "
                            "(its row highlighted)", title="Queue", severity="warning")
            return
        self.queue.remove(chosen.id)
        self.refresh_queue()

    def action_pause(self) -> None:
        if self.queue.paused():
            self.queue.resume()
            if self.queue.waiting():
                ensure_runner()
        else:
            self.queue.pause()
        self.refresh_queue()

    def action_compare(self) -> None:
        """Compare models with the sweep's best runs (by best eval loss) ticked."""
        rows = sweep_rows(self.queue.store, self.sweep) if self.sweep is not None else []
        scored = sorted((r for r in rows if r["run"] and r["best_eval_loss"] is not None),
                        key=lambda r: r["best_eval_loss"])[:MAX_COMPARED]
        if len(scored) < 2:
            self.app.notify("the sweep has fewer than two finished runs to compare",
                            title="Compare models", severity="warning")
            return
        runs = tuple(r["run"] for r in scored)
        self.dismiss()
        self.app.call_later(self.app.run_action, f"compare_models({runs!r})")
