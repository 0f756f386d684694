"""From texts to batches: load and tokenize once, plan the steps, and hand out batches in a
fixed order that hides epochs and the skip to where a resumed run left off."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from core.batching import RowsDataset, pack_blocks, pad_samples
from core.data import load_texts, split_train_test, stats_of, token_lists
from core.errors import UserError
from core.train_config import TrainConfig

if TYPE_CHECKING:
    from accelerate import Accelerator


@dataclass
class PreparedData:
    train_rows: list[list[int]]
    test_rows: list[list[int]]
    stats: dict


def prepare_data(tokenizer, config: TrainConfig, block_size: int) -> PreparedData:
    """Load, validate, split and tokenize; rows are packed blocks or single texts."""
    train_ds = load_texts(config.train)
    if config.test:
        test_ds = load_texts(config.test)
    else:
        train_ds, test_ds = split_train_test(train_ds, config.test_split, config.seed)
    train_ids = token_lists(tokenizer, list(train_ds["text"]))
    test_ids = token_lists(tokenizer, list(test_ds["text"]))
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError("the tokenizer has no end-of-text token to separate samples")
    if config.pack:
        train_rows = pack_blocks(train_ids, eos, block_size).tolist()
        test_rows = pack_blocks(test_ids, eos, block_size).tolist()
    else:
        train_rows = pad_samples(train_ids, eos, block_size)
        test_rows = pad_samples(test_ids, eos, block_size)
    stats = {"train": stats_of(train_ids, block_size).as_dict(),
             "test": stats_of(test_ids, block_size).as_dict(),
             "train_rows": len(train_rows), "test_rows": len(test_rows),
             "mode": "pack" if config.pack else "pad"}
    return PreparedData(train_rows, test_rows, stats)


def default_prompt(tokenizer, data: PreparedData) -> str:
    """The first few words of the first test sample: the notebook's before/after prompt."""
    rows = data.test_rows or data.train_rows
    words = tokenizer.decode(rows[0][:8], skip_special_tokens=True).split()
    return " ".join(words[:2]) if words else "Это"


@dataclass(frozen=True)
class StepPlan:
    batches_per_epoch: int            # per process
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    drop_last: bool


def plan_steps(rows: int, config: TrainConfig, world: int) -> StepPlan:
    """How many batches and optimizer steps the run takes, on `world` processes."""
    global_batch = config.batch_size * world
    # A partial last batch is dropped (when there is a full one), so one process and several
    # see the same global batches.
    drop_last = rows >= global_batch
    batches = rows // global_batch if drop_last else math.ceil(rows / global_batch)
    steps_per_epoch = max(1, batches // config.grad_accum)
    total = max(1, math.ceil(config.epochs * steps_per_epoch))
    if config.max_steps:
        total = min(total, config.max_steps)
    return StepPlan(batches, steps_per_epoch, total, int(config.warmup * total), drop_last)


@dataclass(frozen=True)
class Position:
    """Where the run is in its data: `batch` batches of `epoch` done (0 at an epoch's start)."""
    epoch: int = 0
    batch: int = 0

    def epochs_done(self, plan: StepPlan) -> float:
        return self.epoch + self.batch / max(1, plan.batches_per_epoch)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of the rows in an epoch: a pure function of (seed, epoch), so a resumed run
    sees exactly the batches the uninterrupted one would have."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batches(accelerator: Accelerator, rows: list[list[int]], config: TrainConfig, plan: StepPlan,
            collate_fn, start: Position) -> Iterator[tuple[dict, Position]]:
    """Endless batches from `start` on, each with the position after it; a batch that ends
    an epoch comes with the next epoch's start."""
    epoch, skip = start.epoch, start.batch
    while True:
        order = epoch_order(len(rows), config.seed, epoch)
        loader = accelerator.prepare(DataLoader(
            RowsDataset([rows[i] for i in order]), batch_size=config.batch_size,
            collate_fn=collate_fn, drop_last=plan.drop_last))
        if skip:
            loader = accelerator.skip_first_batches(loader, skip)
        last = skip + len(loader)
        for done, batch in enumerate(loader, start=skip + 1):
            yield batch, (Position(epoch + 1, 0) if done == last else Position(epoch, done))
        epoch, skip = epoch + 1, 0
