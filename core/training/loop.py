"""Fine-tuning on Accelerate: your texts in, a better model out.

    train(session, TrainConfig(train="texts.txt", epochs=2, out="my-model"), on_event=print)

`on_event` gets the events of `core.training.events` (the `train --jsonl` lines). Only the main
process emits them and writes checkpoints; under torchrun / accelerate launch each rank
trains on its shard and Accelerate averages the gradients.

Every optimizer step holds the session lock, so the UI can generate from the same weights
between steps; the sampler's private RNG never touches training's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.base import clock
from core.base.cancel import Cancelled
from core.base.safe_write import FolderLock
from core.model.kernels import fused_activations
from core.training.batches import (
    batches,
)
from core.training.config import TrainConfig, TrainControl, TrainResult, check_paths
from core.training.events import (
    Done,
    Error,
    Notice,
    Saved,
    Step,
    TrainEvent,
    tee,
)
from core.training.run import PreparedRun
from core.training.sharding import check_launched
from core.training.step import Stopped, train_step
from core.training.tensorboard import TensorBoardLog

if TYPE_CHECKING:
    from core.model.session import ModelSession

def train(session: ModelSession, config: TrainConfig,
          on_event: Callable[[TrainEvent], None] = lambda e: None,
          control: TrainControl | None = None) -> TrainResult:
    """Fine-tune `session.model` in place. The output folder is locked for the whole run, so
    a second run pointed at it is refused at its start."""
    if session.adapter is not None and not config.lora:
        config = replace(config, lora=True)   # a model that carries an adapter trains it
    config.validate()
    check_launched(config)
    check_paths(config)
    rank = int(os.environ.get("RANK", "0"))
    lock = FolderLock(Path(config.out).resolve()) if config.out and rank == 0 else None
    if lock is not None:
        lock.acquire()
    logs = TensorBoardLog(config.out) if config.out and rank == 0 else None
    if logs is not None:
        on_event = tee(on_event, logs)
    try:
        with fused_activations(session.model):   # the same function, one kernel: core.model.kernels
            return _train(session, config, on_event, control or TrainControl())
    finally:
        if logs is not None:
            logs.close()
        if lock is not None:
            lock.release()


def _train(session: ModelSession, config: TrainConfig, on_event: Callable[[TrainEvent], None],
           control: TrainControl) -> TrainResult:
    try:
        run = PreparedRun.start(session, config, on_event, control)
    except Cancelled:   # stopped while the data was being tokenized
        on_event(Done(None, 0, None, "cancel"))
        return TrainResult(steps=0, eval_loss=None, out=None, stop_reason="cancel")
    plan, step, last_eval, stop_reason = run.plan, run.start_step, None, "done"
    kept = Kept(run, BestEval(config.patience))
    position = run.start_position   # the batches trained so far
    if step == 0:   # the "before" point of the curve: the model as it was loaded
        last_eval = kept.evaluated(step, position)
    meter = Throughput(run.accelerator.num_processes, run.tokens_seen)
    for batch, after in batches(run.accelerator, run.data.train_rows, config, plan,
                                run.collate_fn, run.start_position):
        if step >= plan.total_steps:
            break
        stop, save_now = run.agreed_signals(control)
        if stop:
            stop_reason = "cancel"
            break
        loss = train_step(run, batch, step)
        if isinstance(loss, Stopped):
            stop_reason = loss.reason
            run.emit(Error(loss.message))
            break
        position = after
        meter.count(batch)
        if not run.accelerator.sync_gradients:
            continue   # accumulating: no optimizer step yet
        run.scheduler.step()
        step += 1
        if config.fsdp and step == run.start_step + 1:
            run.report_shards()
        run.tokens_seen = meter.seen   # a save from here on carries it to a resume
        run.emit(Step(step, position.epochs_done(plan), loss, float(run.scheduler.get_last_lr()[0]),
                      meter.rate(), plan.total_steps, meter.seen, meter.elapsed()))
        if save_now:
            kept.save_asked(step, position)
            meter.restart()
        if step >= plan.total_steps:
            break
        if (config.eval_every and step % config.eval_every == 0) or position.batch == 0:
            last_eval = kept.evaluated(step, position)   # every N steps, and at an epoch's end
            meter.restart()
            if kept.best.out_of_patience():
                stop_reason = "patience"
                run.emit(Notice(kept.best.why_stopped()))
                break

    if stop_reason == "done":
        last_eval = kept.evaluated(step, position)
    out = None
    if config.keep_best:   # saved already, at its best evaluation
        out = config.out if kept.step is not None else None
    elif stop_reason in ("done", "patience") or (stop_reason == "cancel" and run.save_on_stop):
        out = config.out if kept.save(step, position, say=False) else None
    run.accelerator.unwrap_model(run.model).eval()
    kept_step = kept.step if out is not None else None
    run.emit(Done(out, step, last_eval, stop_reason, kept_step))
    return TrainResult(steps=step, eval_loss=last_eval, out=out, stop_reason=stop_reason,
                       save_error=run.save_error if out is None else None, kept_step=kept_step)


@dataclass
class BestEval:
    """The best eval loss so far, and how many evaluations have not bettered it: what
    `--patience` counts and `--keep-best` keeps."""
    patience: int                    # 0: never out of patience
    loss: float = math.inf
    step: int | None = None
    since: int = 0                   # evaluations since the best

    def better(self, step: int, loss: float | None) -> bool:
        if loss is None:             # no held-out data: nothing to compare
            return False
        if loss < self.loss:
            self.loss, self.step, self.since = loss, step, 0
            return True
        self.since += 1
        return False

    def out_of_patience(self) -> bool:
        return self.patience > 0 and self.since >= self.patience

    def why_stopped(self) -> str:
        return (f"stopped early: {self.since} evaluations without a better eval loss than "
                f"{self.loss:.4f} (step {self.step})")


class Kept:
    """Evaluations and saves, and the step whose model the output folder holds. With
    keep-best, a better eval loss is saved at once and nothing else is: a save asked for
    mid-run is declined with a notice, and the run's end writes nothing more."""

    def __init__(self, run: PreparedRun, best: BestEval) -> None:
        self.run, self.best = run, best
        self.step: int | None = None

    def evaluated(self, step: int, position) -> float | None:
        loss = self.run.eval_and_sample(step)
        if self.best.better(step, loss) and self.run.config.keep_best:
            self.save(step, position)
        return loss

    def save_asked(self, step: int, position) -> None:
        if not self.run.config.keep_best:
            self.save(step, position)
            return
        self.run.emit(Notice(f"keep-best: {self.run.config.out} keeps the best evaluation's model"
                             + (f" (step {self.step})" if self.step is not None else "")
                             + "; it is saved at each better evaluation"))

    def save(self, step: int, position, say: bool = True) -> bool:
        if not self.run.save(step, position) or self.run.config.out is None:
            return False
        self.step = step
        if say:
            self.run.emit(Saved(step, self.run.config.out))
        return True


class Throughput:
    """Training tokens per second since the last step (or since an eval or save paused it)."""

    def __init__(self, world: int, seen: int = 0) -> None:
        self.world, self.seen = world, seen   # `seen`: every token trained, across restarts
        self.started = clock.seconds()
        self.restart()

    def restart(self) -> None:
        self.tokens, self.since = 0, clock.seconds()

    def elapsed(self) -> float:
        """Seconds since the loop started (evaluations and saves included)."""
        return clock.seconds() - self.started

    def count(self, batch: dict) -> None:
        tokens = int(batch["attention_mask"].sum()) * self.world
        self.tokens += tokens
        self.seen += tokens

    def rate(self) -> float:
        now = clock.seconds()
        rate = self.tokens / max(now - self.since, 1e-9)
        self.tokens, self.since = 0, now
        return rate
