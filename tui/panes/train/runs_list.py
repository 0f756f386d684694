"""Every training run in one list, newest first: this session's and those the workspace
remembers (other sessions, `train` runs, runs still going in another process). Highlighting
a run shows it in the loss chart; ticking runs (space) overlays them; `l` loads its model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import SelectionList

from core.data.source import source_name
from tui.panes.host import host
from tui.panes.train.run import RUN_COLOURS, Curve, TrainRun, run_summary

if TYPE_CHECKING:
    from core.store.database import Store


class RunsList(SelectionList[int]):
    BINDINGS = [Binding("l", "load_run", "Load this run's model"),
                Binding("q", "show_queue", "The queue")]

    class ShowQueue(Message):
        """The user asked for the queue's window (q)."""

    class Shown(Message):
        """What the chart should show has changed (another run highlighted or ticked)."""

    def action_load_run(self) -> None:
        """The highlighted run's saved model, loaded as a finished run's is: its weights on
        its base (l)."""
        if self.highlighted is None:
            return
        number = self.get_option_at_index(self.highlighted).value
        store = host(self).store
        row = store.run(number) if store is not None else None
        if row is None or not row["out"] or row["replaced_by"] or not Path(row["out"]).is_dir():
            why = "replaced by a later run" if row and row["replaced_by"] else "saved no model"
            self.notify(f"run #{number} {why}", title="Load model", severity="warning")
            return
        host(self).load_model(row["model"], trained=row["out"])

    def action_show_queue(self) -> None:
        self.post_message(self.ShowQueue())

    def show_queue_size(self) -> None:
        """The list's title says how many runs the queue holds (the runner starts them)."""
        queued = 0
        if self.store is not None:
            from core.queue.items import RunQueue

            queued = RunQueue(self.store).waiting()
        self.border_title = "runs" + (f" · {queued} queued" if queued else "")

    def __init__(self, mine: list[TrainRun], **kwargs) -> None:
        super().__init__(**kwargs)
        self.mine = mine                     # this session's runs (the pane's list)
        self.past: dict[int, dict] = {}      # the workspace's runs, by id
        self.store: Store | None = None      # the workspace they are read from (load)
        self._curves: dict[int, Curve] = {}
        self.shown: int | None = None        # the run the chart shows when none is ticked
        self._ticked: frozenset[int] = frozenset()

    def load(self, store: Store | None) -> bool:
        """The runs the workspace holds; False when there is none to read."""
        self.store = store
        if store is not None:
            self.past = {row["id"]: row for row in store.runs(limit=200)}
        self.refill()
        return store is not None

    def shown_row(self) -> dict | None:
        """The workspace's row of the run the list shows, if it has one."""
        return None if self.shown is None else self.past.get(self.shown)

    def poll(self) -> list[int]:
        """Read the workspace again; the ids of the runs that changed (a live run grew)."""
        if self.store is None:
            return []
        rows = {row["id"]: row for row in self.store.runs(limit=200)}
        mine = {run.number for run in self.mine}   # drawn from memory: their rows don't matter
        changed = [rid for rid, row in rows.items() if rid not in mine and self.past.get(rid) != row]
        self.past = rows
        if changed:
            for rid in changed:
                self._curves.pop(rid, None)
            self.refill()
        return changed

    def refill(self) -> None:
        ticked = set(self.selected)
        mine = {run.number: run for run in self.mine}
        entries = [(number, run.summary()) for number, run in mine.items()]
        entries += [(rid, run_summary(rid, row["steps"], row["eval_loss"], row["status"],
                                      source_name(row["train"]), row["time"][:16].replace("T", " ")))
                    for rid, row in self.past.items() if rid not in mine]
        entries.sort(key=lambda entry: -entry[0])
        highlighted = self.highlighted
        self.clear_options()
        self.add_options([(label, number, number in ticked) for number, label in entries])
        if entries:
            self.highlighted = min(highlighted or 0, len(entries) - 1)

    def curve(self, number: int, store: Store | None) -> Curve | None:
        run = next((r for r in self.mine if r.number == number), None)
        if run is not None:
            return run.curve()
        if number not in self._curves and store is not None:
            steps, evals = store.curves(number)
            self._curves[number] = Curve(f"#{number}", steps, evals, store.step_tokens(number))
        return self._curves.get(number)

    def chosen(self) -> list[Curve]:
        """The ticked runs; with none ticked, the highlighted (or running) one."""
        numbers = list(self.selected)[:len(RUN_COLOURS)] or ([self.shown] if self.shown else [])
        return [c for c in (self.curve(n, self.store) for n in sorted(numbers)) if c is not None]

    @on(SelectionList.SelectionHighlighted)
    def _highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        if event.selection.value != self.shown:
            self.shown = event.selection.value
            self.post_message(self.Shown())

    @on(SelectionList.SelectedChanged)
    def _ticks_changed(self) -> None:
        ticked = frozenset(self.selected)
        if ticked != self._ticked:   # refilling the list re-announces the same ticks
            self._ticked = ticked
            self.post_message(self.Shown())
