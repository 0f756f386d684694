"""From texts to batches: rows from the tokenized data (tokenized once, `core.data.tokenized`),
plan the steps, and hand out batches in a fixed order that hides epochs and the skip to where
a resumed run left off."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from core.base.cancel import abandon_when
from core.data.cache import Progress, TokenCache, TokenizedSplit
from core.data.rows import PackedRows, PaddedRows
from core.data.texts import DataStats
from core.data.tokenized import Corpus, corpus_tokens, resolve_corpus
from core.training.config import TrainConfig

if TYPE_CHECKING:
    from accelerate import Accelerator


@dataclass
class PreparedData:
    corpus: Corpus                    # the data as resolved (its sources, a dialogue template)
    train_rows: PackedRows | PaddedRows
    test_rows: PackedRows | PaddedRows
    eval_rows: list[int]              # the held-out rows every evaluation reads
    stats: dict


def stream_stats(stream: TokenizedSplit, block_size: int) -> DataStats:
    lengths = stream.lengths()   # EOS included
    return DataStats(samples=stream.texts, tokens=int(lengths.sum()),
                     longest=int(lengths.max(initial=0)),
                     truncated=int((lengths > block_size).sum()), block_size=block_size)


def eval_sample(rows: PackedRows | PaddedRows, budget: int, seed: int) -> list[int]:
    """Held-out rows in a seeded order until `budget` tokens (0: all of them), in their
    original order: the same rows at every evaluation, so the curve's points compare."""
    if not budget:
        return list(range(len(rows)))
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).numpy()
    tokens = np.cumsum(rows.row_tokens()[order])
    take = int(np.searchsorted(tokens, budget)) + 1   # the row that reaches the budget counts
    return sorted(order[:take].tolist())


def prepare_data(tokenizer, config: TrainConfig, block_size: int,
                 progress: Progress | None = None, cancelled: Callable[[], bool] = lambda: False,
                 cache: TokenCache | None = None) -> PreparedData:
    """The data as rows: packed blocks or single texts, views of the cached token streams
    (tokenized now if they are not cached yet)."""
    with abandon_when(cancelled):   # reading and hashing big data stop too, not only tokenizing
        corpus = resolve_corpus(tokenizer, config)
        tokens = corpus_tokens(tokenizer, config, block_size, corpus, progress, cancelled, cache)
    rows = PackedRows if config.pack else PaddedRows
    train_rows, test_rows = rows(tokens.train, block_size), rows(tokens.test, block_size)
    eval_rows = eval_sample(test_rows, config.eval_tokens, config.seed)
    stats = {"train": stream_stats(tokens.train, block_size).as_dict(),
             "test": stream_stats(tokens.test, block_size).as_dict(),
             "train_rows": len(train_rows), "test_rows": len(test_rows),
             "mode": "pack" if config.pack else "pad",
             "eval_rows": len(eval_rows),
             "eval_tokens": int(test_rows.row_tokens()[eval_rows].sum()),
             "cached": not tokens.built}
    if tokens.train.mask is not None:   # dialogues: what is learned of them
        stats["dialogue"] = dialogue_stats(tokens)
    return PreparedData(corpus, train_rows, test_rows, eval_rows, stats)


def dialogue_stats(tokens) -> dict:
    """Conversations, assistant turns, trained tokens and their share of all, per split."""
    out = {}
    for split, stream in (("train", tokens.train), ("test", tokens.test)):
        counts = (tokens.info or {}).get(split, {})
        trained = int(stream.mask.sum()) if len(stream.mask) else 0
        out[split] = {"conversations": stream.texts, "turns": counts.get("turns", 0),
                      "dropped_turns": counts.get("dropped_turns", 0), "trained_tokens": trained,
                      "trained_share": trained / max(len(stream.ids), 1)}
    return out


def default_prompt(tokenizer, data: PreparedData) -> str:
    """The first few words of the first test sample: the notebook's before/after prompt."""
    rows = data.test_rows if len(data.test_rows) else data.train_rows
    first = rows[0]
    if isinstance(first, tuple):   # a dialogue: the conversation up to its first reply
        ids, mask = first
        reply = int(np.argmax(mask)) if mask.any() else len(ids)
        return tokenizer.decode(ids[:reply].tolist(), skip_special_tokens=False)
    words = tokenizer.decode(first[:8].tolist(), skip_special_tokens=True).split()
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


def private_generator():
    """A DataLoader draws a seed from the global RNG each time it is iterated unless it has a
    generator of its own; that draw would shift dropout's stream, so a resumed run (which
    starts its loader at another moment) would not continue the way the uninterrupted one did."""
    import torch

    return torch.Generator().manual_seed(0)


def batches(accelerator: Accelerator, rows: PackedRows | PaddedRows, config: TrainConfig, plan: StepPlan,
            collate_fn, start: Position) -> Iterator[tuple[dict, Position]]:
    """Endless batches from `start` on, each with the position after it; a batch that ends
    an epoch comes with the next epoch's start."""
    epoch, skip = start.epoch, start.batch
    while True:
        order = epoch_order(len(rows), config.seed, epoch)
        loader = accelerator.prepare(DataLoader(
            Subset(rows, order), batch_size=config.batch_size,
            collate_fn=collate_fn, drop_last=plan.drop_last, generator=private_generator()))
        if skip:
            loader = accelerator.skip_first_batches(loader, skip)
        last = skip + len(loader)
        for done, batch in enumerate(loader, start=skip + 1):
            yield batch, (Position(epoch + 1, 0) if done == last else Position(epoch, done))
        epoch, skip = epoch + 1, 0
