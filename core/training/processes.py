"""A training run on several processes (one per GPU), started and watched from here.

    train_in_processes("demo", config, processes=2, on_event=print, control=control)

It runs `rugpt-tui train … --jsonl` under `torchrun`; every line rank 0 prints becomes the
same event a run in this process emits, so whoever shows a local run shows this one alike.
Stopping sends SIGTERM to every worker: each finishes its step (the ranks agree on which),
rank 0 saves when asked to, all exit; whatever is still alive after a grace period is killed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from core.base.errors import UserError
from core.base.settings import TRAIN_SETTINGS, as_flags
from core.data.source import check_source
from core.training import events as ev
from core.training.config import TrainConfig, TrainControl, TrainResult, check_paths

STOP_GRACE_S = 120.0        # a save of a big model can take a while
EVENTS = {cls.kind: cls for cls in (ev.Stats, ev.Step, ev.Eval, ev.Sample, ev.Saved, ev.Notice,
                                     ev.Error, ev.Done)}


def event_from_json(line: str) -> ev.TrainEvent | None:
    """A `train --jsonl` line as its event (None for anything else)."""
    try:
        data = json.loads(line)
        cls = EVENTS[data.pop("event")]
        return cls(**data)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def visible_devices() -> int:
    """How many processes a run gets by default: one per visible GPU, else one."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def train_command(model: str, config: TrainConfig, processes: int, device: str = "auto",
                  dtype: str = "auto") -> list[str]:
    """`torchrun … rugpt-tui train` with every setting of `config` on its command line."""
    args = ["--model", model, "--device", device, "--dtype", dtype, "--train", config.train,
            "--jsonl", "--no-record"]
    for name in ("test", "out", "resume"):
        if getattr(config, name):
            args += [f"--{name}", str(getattr(config, name))]
    args += as_flags(TRAIN_SETTINGS, asdict(config))
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", "-m", "tui.cli.main", "train", *args]


def _workers(pid: int) -> list[int]:
    """torchrun's worker processes (its children), Linux; empty where /proc has no answer."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def train_in_processes(model: str, config: TrainConfig, processes: int,
                       on_event: Callable[[ev.TrainEvent], None] = lambda e: None,
                       control: TrainControl | None = None, device: str = "auto",
                       dtype: str = "auto", env: dict | None = None,
                       started: Callable[[int], None] = lambda pid: None) -> TrainResult:
    """Run `config` on `processes` processes; `started` hears the process group's id."""
    control = control or TrainControl()
    if processes < 2:
        raise UserError(f"processes {processes}: a run on several processes needs at least 2")
    config.validate()
    check_paths(config)   # refused here, before any process starts
    for source in (config.train, config.test):
        if source:
            check_source(source)
    env = dict(os.environ if env is None else env)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    env["TOKENIZERS_PARALLELISM"] = "false"
    proc = subprocess.Popen(train_command(model, config, processes, device, dtype),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, env=env, start_new_session=True)
    started(proc.pid)
    lines: queue.Queue[str | None] = queue.Queue()
    errors: deque[str] = deque(maxlen=200)   # stderr's last lines (progress bars come there too)

    def read(stream, sink) -> None:
        for line in stream:
            sink(line)
        if stream is proc.stdout:
            lines.put(None)

    readers = [threading.Thread(target=read, args=(proc.stdout, lines.put), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, errors.append), daemon=True)]
    for reader in readers:
        reader.start()
    done, stopping_since, listening = None, None, False
    try:
        while True:
            # The workers hear signals once they print: their handlers are set before the
            # first line (a signal before that would kill a worker instead).
            if listening and control.stopping() and stopping_since is None:
                stopping_since = time.monotonic()
                # `train` saves and stops on SIGTERM, stops without saving on SIGUSR1
                _signal_workers(proc, signal.SIGTERM if control.save_on_stop else signal.SIGUSR1)
            if listening and control.save_now.is_set():
                control.save_now.clear()
                _signal_workers(proc, signal.SIGUSR2)   # `train` saves now and goes on
            if stopping_since is not None and time.monotonic() - stopping_since > STOP_GRACE_S:
                _kill_all(proc)
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            event = event_from_json(line)
            if event is not None:
                listening = True
                on_event(event)
                if isinstance(event, ev.Done):
                    done = event
        proc.wait()
    finally:
        if proc.poll() is None:
            _kill_all(proc)
            proc.wait()
        for reader in readers:
            reader.join(timeout=5)
    if done is None:
        message = next((e.removeprefix("rugpt-tui: error: ").strip() for e in reversed(errors)
                        if e.startswith("rugpt-tui: error:")), None)
        if message is None:
            tail = [e.strip() for e in errors if e.strip()]
            message = f"the {processes} training processes ended with exit code {proc.returncode}" \
                + (f": {tail[-1]}" if tail else "")
        raise UserError(message)
    return TrainResult(steps=done.steps, eval_loss=done.eval_loss, out=done.out,
                       stop_reason=done.stop_reason, kept_step=done.kept_step)


def _signal_workers(proc: subprocess.Popen, signum: int) -> None:
    for pid in _workers(proc.pid):
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def _kill_all(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
