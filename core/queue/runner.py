"""The headless runner: started when something is queued, it takes the queue's items one
after another, each as its own `rugpt-tui train` process, until the queue is empty or
paused — then it exits.

It belongs to no terminal (a session of its own, its output in the workspace's
`queue.log`), so it goes on when every app is closed and every SSH session is gone. One
runner per workspace: it holds `queue.lock`. Each run records itself in the workspace like
any CLI run — its process's pid in the runs, so the Train pane stops it (SIGTERM: save and
stop) as it stops any run of another process — and a run that fails, even before it
started, is recorded as failed; the queue goes on.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from core.base.errors import one_line
from core.base.safe_write import process_alive
from core.base.settings import TRAIN_SETTINGS, as_flags
from core.queue.items import QueueItem, RunQueue
from core.store.database import Store, now_iso
from core.store.workspace import data_dir
from core.training.config import TrainConfig

LOCK_FILE = "queue.lock"
LOG_FILE = "queue.log"
PATHS = ("train", "test", "out", "resume")


def lock_path() -> Path:
    return data_dir() / LOCK_FILE


def log_path() -> Path:
    return data_dir() / LOG_FILE


def runner_pid() -> int | None:
    """The pid of the runner working through this workspace's queue, if one is."""
    try:
        pid = int(lock_path().read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and process_alive(pid) else None


def ensure_runner() -> int | None:
    """Start a runner unless one is at work; its pid, or None when it could not start."""
    if (pid := runner_pid()) is not None:
        return pid
    data_dir().mkdir(parents=True, exist_ok=True)
    with open(log_path(), "a", encoding="utf-8") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tui.cli.main", "queue", "--runner"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=data_dir())
    # reaped when it exits, so a long-lived app leaves no zombie behind (it never waits on it)
    threading.Thread(target=proc.wait, daemon=True, name="queue-runner-reaper").start()
    return proc.pid


def train_command(item: QueueItem) -> list[str]:
    """The item's run as a command: `rugpt-tui train` with its settings, recorded as the
    item's (`--queue-item`); several processes go to torchrun."""
    config = item.config
    args = ["--model", item.model, "--queue-item", str(item.id), "--jsonl"]
    for name in ("device", "dtype"):
        if config.get(name):
            args += [f"--{name}", str(config[name])]
    for name in PATHS:
        if config.get(name):
            args += [f"--{name}", str(config[name])]
    args += as_flags(TRAIN_SETTINGS, config)
    processes = int(config.get("processes") or 1)
    if processes > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}", "-m", "tui.cli.main", "train", *args]
    return [sys.executable, "-m", "tui.cli.main", "train", *args]


class Runner:
    WAIT_S = 1.0   # how often a run that trains now is asked whether it has ended

    def __init__(self, store: Store) -> None:
        self.store, self.queue = store, RunQueue(store)
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def run(self) -> int:
        """Work through the queue; 0 when it is empty or paused, or another runner has it."""
        signal.signal(signal.SIGTERM, self._terminate)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)   # no terminal to lose
        while not self.stopping:
            with open(lock_path(), "a+", encoding="utf-8") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return 0   # another runner works through the queue
                lock.seek(0)
                lock.truncate()
                lock.write(str(os.getpid()))
                lock.flush()
                try:
                    self._drain()
                finally:
                    lock.truncate(0)
                    lock.flush()
            # something queued while the lock was being let go is not left behind
            if self.stopping or self.queue.paused() or not self.queue.waiting():
                return 0
        return 0

    def _drain(self) -> None:
        self.queue.drop_orphans()
        while not self.stopping and self._wait_for_other_runs() and (item := self.queue.take_next()) is not None:
            self._log(f"item {item.id}: starting {item.name or item.config.get('train')}")
            error = self._run(item)
            self._log(f"item {item.id}: " + (f"failed: {error}" if error else "ended"))
            self.queue.finished(item.id)

    def _wait_for_other_runs(self) -> bool:
        """Runs one after another: a run that trains on this machine now (the app's, a
        `train` in a terminal) ends before the next queued one starts. False if told to stop."""
        said = False
        while not self.stopping:
            busy = [r for r in self.store.runs(limit=50)
                    if r["status"] == "running" and r["host"] == socket.gethostname()]
            if not busy:
                return True
            if not said:
                self._log(f"waiting for run #{busy[0]['id']} to end")
                said = True
            time.sleep(self.WAIT_S)
        return False

    def _run(self, item: QueueItem) -> str | None:
        """One item's run to its end; the error it failed with, if it failed."""
        try:
            self.child = subprocess.Popen(train_command(item), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True, errors="replace")
        except OSError as exc:
            return self._failed(item, one_line(exc))
        tail: deque[str] = deque(maxlen=40)
        stderr = self.child.stderr
        assert stderr is not None   # a pipe, asked for above
        reader = threading.Thread(target=lambda: tail.extend(stderr), daemon=True)
        reader.start()
        code = self.child.wait()
        reader.join(timeout=5)
        self.child = None
        if code == 0:
            return None
        errors = [line.removeprefix("rugpt-tui: error: ").strip() for line in tail
                  if line.startswith("rugpt-tui: error:")]
        message = errors[-1] if errors else (
            f"exit code {code}" + (f": {tail[-1].strip()}" if tail else ""))
        return self._failed(item, message)

    def _failed(self, item: QueueItem, message: str) -> str:
        """A run that failed before it recorded itself (a setting or path refused) is
        recorded here, so the queue's every item leaves a run behind."""
        current = next((i for i in self.queue.items() if i.id == item.id), None)
        if current is not None and current.run_id is None:
            config = TrainConfig(train=str(item.config.get("train") or "?"))
            run_id = self.store.start_run(item.model, config, sweep=item.sweep)
            self.store.end_run(run_id, "failed", message)
        return message

    def _terminate(self, *_) -> None:
        """SIGTERM: the current run saves and stops, and no other starts."""
        self.stopping = True
        if self.child is not None:
            try:
                self.child.send_signal(signal.SIGTERM)
            except OSError:
                pass

    def _log(self, line: str) -> None:
        print(f"{now_iso()} {line}", flush=True)
