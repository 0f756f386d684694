"""The hardware while the pane's run trains, read on a worker once a second (core.base.hardware):
the chart's panel shows it whole — per GPU utilisation, memory, temperature, power; on a
machine without an NVIDIA driver the app's CPU use and resident memory — and the status
line ends with the short form."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from core.base.hardware import HardwareMonitor, Reading

if TYPE_CHECKING:
    from textual.widget import Widget

    from tui.panes.train.pane import TrainPane
    from tui.panes.train.run import TrainRun

READ_EVERY_S = 1.0


@dataclass
class HardwareRead(Message):
    reading: Reading | None          # None: the run it was read for has ended
    pid: int | None = None           # the process read: None for the app's own

def watch_hardware(pane: Widget, run: TrainRun) -> None:
    """Read the hardware until `run` ends (or the app quits), each reading posted to `pane`."""
    pane.app.run_worker(lambda: _read_while(pane, lambda: run.running), thread=True,
                        group="hardware", exclusive=True, name="hardware")


def follow_other_run(pane: TrainPane, row: dict) -> None:
    """The same for the shown run when it trains in another process of this machine (a
    queued run, a `train` in a terminal): the GPUs, or that process's CPU and memory."""
    if row["host"] != socket.gethostname() or pane.watched_pid == row["pid"] or pane.training:
        return
    pane.watched_pid = row["pid"]

    def alive() -> bool:
        now = pane.runs_list.past.get(row["id"])
        return now is not None and now["status"] == "running" and not pane.training

    pane.app.run_worker(lambda: _read_while(pane, alive, row["pid"]), thread=True,
                        group="hardware", exclusive=True, name="hardware")


def _read_while(pane: Widget, alive: Callable[[], bool], pid: int | None = None) -> None:
    from textual.worker import get_current_worker

    worker = get_current_worker()
    monitor = HardwareMonitor(pid)
    while _keep_reading(worker, alive):
        try:
            reading = monitor.read()
        except OSError:   # the other process has ended
            break
        pane.post_message(HardwareRead(reading, pid))
        due = time.monotonic() + READ_EVERY_S
        while time.monotonic() < due and _keep_reading(worker, alive):   # quitting never waits 1 s
            time.sleep(0.05)
    if not worker.is_cancelled:   # the run ended: no figure stays up as if it still trained
        pane.post_message(HardwareRead(None, pid))


def _keep_reading(worker, alive: Callable[[], bool]) -> bool:
    return alive() and not worker.is_cancelled


def short_line(reading: Reading) -> str:
    """The status line's end: the busiest GPU's use and memory, or the process's."""
    if reading.gpus:
        gpu = max(reading.gpus, key=lambda g: g.utilization or 0)
        used = f" · {gpu.memory_used / 1e9:.1f} GB" if gpu.memory_used is not None else ""
        return f"GPU{gpu.index} {gpu.utilization if gpu.utilization is not None else '?'}%{used}"
    return f"CPU {reading.host.cpu_percent:.0f}% · {reading.host.rss / 1e9:.1f} GB"
