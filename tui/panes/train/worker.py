"""A training run on the Train pane's worker thread: the run itself (here, or on several
processes through torchrun), its events handed to the pane and recorded in the workspace,
and its end — a run refused before it began is forgotten, a failure is one line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from core.base.errors import UserError, one_line
from core.data.source import resolve_source
from core.store.recorder import RunRecorder
from core.training.events import Notice
from tui.panes.train.run import TrainRun
from tui.widgets.messages import Replaceable

if TYPE_CHECKING:
    from core.model.session import ModelSession
    from core.store.database import Store


class TrainingProgress(Replaceable):
    """New training events wait in the run's buffer."""


@dataclass
class TrainingFinished(Message):
    run: TrainRun


def run_training(session: ModelSession, run: TrainRun, store: Store | None,
                 post: Callable[[Message], object], cancelled: Callable[[], bool],
                 detached: Callable[[], bool]) -> None:
    """Train `run` to its end, `post`ing progress and the end to the pane. `cancelled()`
    stops it (the app quit); `detached()` says nobody watches its end any more."""
    from core.training.loop import train

    run.control.cancelled = cancelled
    record = None
    if store is not None:   # the workspace keeps every step, eval and sample as it comes
        try:   # read once here; the run finds it resolved (core.data.source)
            store.set_data_hash(run.number, resolve_source(run.config.train).fingerprint)
        except UserError:
            pass   # the run itself says what is wrong with the data, and is recorded as failed
        record = RunRecorder(store, run.number)

    def on_event(event) -> None:
        run.events.push(event)
        if record is not None:
            record(event)
        post(TrainingProgress())

    refused = False
    try:
        if run.config.processes > 1:
            run.result = _train_in_processes(session, run, on_event)
        else:
            run.result = train(session, run.config, on_event=on_event, control=run.control)
    except UserError as exc:
        run.error, refused = str(exc), True
    except Exception as exc:  # one line on screen, the app keeps running
        run.error = one_line(exc)
    finally:
        if record is not None:
            if run.error:
                record.failed(run.error, refused)
            if not detached():   # its end was seen here; else it is announced later
                record.seen()
        run.finished.set()
    post(TrainingFinished(run))


def _train_in_processes(session: ModelSession, run: TrainRun, on_event):
    """The run on several processes (torchrun), drawn as a local one; when it saved, its
    weights come into this app's model, the weights as loaded staying the "before"."""
    from core.model.weights import load_trained_weights
    from core.training.processes import train_in_processes

    if session.weights_version:
        on_event(Notice(f"the processes load {session.info.model} as saved: changes made "
                        "to it in this app since are not in this run"))
    on_event(Notice(f"training on {run.config.processes} processes (torchrun)"))
    device = "cpu" if session.placement.device == "cpu" else "auto"
    result = train_in_processes(session.info.model, run.config, run.config.processes,
                                on_event=on_event, control=run.control, device=device,
                                dtype="auto" if session.placement.inference_only
                                else session.placement.dtype)
    if result.out:
        load_trained_weights(session, result.out)
    return result
