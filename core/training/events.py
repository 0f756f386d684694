"""What a training run reports, in order: `Tokenizing` progress while new data is tokenized
(none when it is cached), `Stats` once the data is read, an `Eval` (and a
`Sample`) at step 0, a `Step` per optimizer step, more `Eval`/`Sample` pairs, `Saved` after
each save asked for, `Notice`/`Error` lines, and `Done` last.

One stream for every consumer: `train --jsonl` prints `as_json()`, the Train pane draws it,
the workspace stores it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar


class TrainEvent:
    kind: ClassVar[str]

    def as_json(self) -> dict:
        return {"event": self.kind, **asdict(self)}  # type: ignore[call-overload]  # each event is a dataclass


@dataclass
class Stats(TrainEvent):
    kind = "stats"
    train: dict                       # core.data.texts.DataStats.as_dict() of each part
    test: dict
    train_rows: int
    test_rows: int
    mode: str                         # pack | pad
    eval_rows: int = 0                # the held-out rows each evaluation reads…
    eval_tokens: int = 0              # …and their tokens (a seeded sample, or all of them)
    cached: bool = False              # the tokens came from the cache
    dialogue: dict | None = None      # dialogues: conversations, turns, trained tokens per split


@dataclass
class Tokenizing(TrainEvent):
    """Progress of a first tokenization of the data (none when it is cached). Shown live by
    the CLI (on stderr) and the pane; not a `--jsonl` line."""
    kind = "tokenize"
    done: int                         # texts tokenized
    total: int


@dataclass
class Step(TrainEvent):
    kind = "step"
    step: int
    epoch: float                      # epochs done, fractional
    loss: float
    lr: float
    tokens_per_s: float
    total_steps: int
    tokens: int = 0                   # tokens trained so far (all processes): the chart's other x axis
    elapsed_s: float = 0.0            # seconds since this run's loop started: its ETA


@dataclass
class Eval(TrainEvent):
    kind = "eval"
    step: int
    eval_loss: float
    perplexity: float


@dataclass
class Sample(TrainEvent):
    kind = "sample"
    step: int
    text: str


@dataclass
class Saved(TrainEvent):
    kind = "saved"
    step: int
    out: str


@dataclass
class Notice(TrainEvent):
    kind = "notice"
    message: str


@dataclass
class Error(TrainEvent):
    kind = "error"
    message: str


@dataclass
class Done(TrainEvent):
    kind = "done"
    out: str | None
    steps: int
    eval_loss: float | None
    stop_reason: str                  # done | cancel | nan | oom | patience
    kept_step: int | None = None      # the step whose model `out` holds (keep-best: the best)


def tee(*consumers: Callable | None) -> Callable:
    """One event stream to several consumers (None: not there)."""
    present = [c for c in consumers if c is not None]

    def on_event(event) -> None:
        for consume in present:
            consume(event)
    return on_event
