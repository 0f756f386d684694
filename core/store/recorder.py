"""A run's events into the workspace as they come: steps in batches, evals, samples and notes
at once, where its model was saved (and whose model that replaced), its end."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING

from core.base.errors import first_line
from core.store.database import Store, now_iso, resolved
from core.training import events as ev

if TYPE_CHECKING:
    from core.base.hardware import HardwareMonitor


class RunRecorder:
    """Stores one run's events as they come: steps in batches (at most a second or 50 steps
    behind), evals, samples and notes at once, the end with its outcome — the same for the
    Train pane and `rugpt-tui train`. A run refused before its data was accepted (before its
    Stats) is forgotten, one that fails later is recorded as failed; its end is marked seen
    where someone watched it happen."""

    FLUSH_EVERY_S = 1.0
    FLUSH_STEPS = 50

    def __init__(self, store: Store, run_id: int) -> None:
        self.store, self.run_id = store, run_id
        self.pending: list[tuple[str, tuple]] = []
        self.last_flush = time.monotonic()
        self.lost: str | None = None   # the database went away: the run goes on without it
        self.started = False   # the data was accepted
        self.monitor: HardwareMonitor | None = None

    def __call__(self, event: ev.TrainEvent) -> None:
        self.started = self.started or isinstance(event, ev.Stats)
        rid = self.run_id
        match event:
            case ev.Step():
                self.pending.append(("INSERT OR REPLACE INTO run_steps (run_id, step, loss, lr, "
                                     "tokens_per_s, epoch, tokens) VALUES (?,?,?,?,?,?,?)",
                                     (rid, event.step, event.loss, event.lr, event.tokens_per_s,
                                      event.epoch, event.tokens)))
                self.pending.append(("UPDATE runs SET steps = ?, total_steps = ? WHERE id = ?",
                                     (event.step, event.total_steps, rid)))
                if (len(self.pending) >= 2 * self.FLUSH_STEPS
                        or time.monotonic() - self.last_flush >= self.FLUSH_EVERY_S):
                    self.flush()
                return
            case ev.Eval():
                self.pending.append(("INSERT OR REPLACE INTO run_evals VALUES (?,?,?,?)",
                                     (rid, event.step, event.eval_loss, event.perplexity)))
                self._sample_hardware(event.step)
                self.pending.append(("UPDATE runs SET eval_loss = ? WHERE id = ?", (event.eval_loss, rid)))
            case ev.Sample():
                self.pending.append(("INSERT INTO run_samples VALUES (?,?,?)", (rid, event.step, event.text)))
            case ev.Notice() | ev.Error():
                self.pending.append(("INSERT INTO run_notes VALUES (?,?,?)", (rid, event.kind, event.message)))
            case ev.Saved():
                self._saved_to(event.out)
            case ev.Done():
                if event.out:
                    self._saved_to(event.out)
                self.pending.append((
                    "UPDATE runs SET status = ?, steps = ?, eval_loss = ?, ended = ? WHERE id = ?",
                    (event.stop_reason, event.steps, event.eval_loss, now_iso(), rid)))
            case _:
                return
        self.flush()

    def _sample_hardware(self, step: int) -> None:
        """What the machine held at this evaluation: a finished run shows its peak."""
        if self.monitor is None:
            from core.base.hardware import HardwareMonitor

            self.monitor = HardwareMonitor()
        sample = self.monitor.read().as_json()
        self.pending.append(("INSERT INTO run_hardware VALUES (?,?,?)",
                             (self.run_id, step, json.dumps(sample))))

    def _saved_to(self, out: str) -> None:
        """The run's model is in `out` (recorded as an absolute path); an earlier run's model
        that was there is replaced by this one's."""
        out = resolved(out)
        self.pending.append(("UPDATE runs SET out = ? WHERE id = ?", (out, self.run_id)))
        self.pending.append(("UPDATE runs SET replaced_by = ? WHERE out = ? AND id < ? "
                             "AND replaced_by IS NULL", (self.run_id, out, self.run_id)))

    def flush(self) -> None:
        if not self.pending or self.lost:
            self.pending.clear()
            return
        try:
            self.store.write(self.pending)
        except sqlite3.Error as exc:
            self.lost = first_line(exc)
        self.pending = []
        self.last_flush = time.monotonic()


    def failed(self, message: str, refused: bool) -> None:
        """The run ended with an error: `refused` — bad input — before it started is
        forgotten, anything else is recorded as failed."""
        if refused and not self.started:
            self.store.discard_run(self.run_id)
        else:
            self.store.end_run(self.run_id, "failed", message)

    def seen(self) -> None:
        self.store.mark_seen([self.run_id])
