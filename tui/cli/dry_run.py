"""`rugpt-tui train --dry-run`: the data as the run would train on it — its statistics, then
its first samples as token chips with the tokens the loss covers told apart — and no
training."""

from __future__ import annotations

import sys

from rich.console import Console

from core.base.settings import default_block_size
from core.data.rows import trained_row
from core.tokens.pieces import piece_table
from core.training.config import TrainConfig
from tui.cli.commands import tokenize_progress
from tui.render.chips import sample_text
from tui.render.summaries import dialogue_line

SAMPLES_SHOWN = 3


def dry_run(session, config: TrainConfig, samples: int = SAMPLES_SHOWN) -> int:
    from core.training.batches import prepare_data
    from core.training.events import Tokenizing

    tokenizing = tokenize_progress(Console(stderr=True, highlight=False))
    block = config.block_size or default_block_size(session.max_positions)
    try:
        prepared = prepare_data(session.tokenizer, config, block,
                                progress=lambda done, total: tokenizing(Tokenizing(done, total)))
    finally:
        tokenizing(None)
    out = Console(highlight=False, soft_wrap=True)
    plain = not out.is_terminal or out.no_color
    stats, rows = prepared.stats, prepared.train_rows
    train, test = stats["train"], stats["test"]
    out.print(f"train: {train['samples']:,} samples, {train['tokens']:,} tokens, longest "
              f"{train['longest']}; test: {test['samples']:,} samples, {test['tokens']:,} tokens")
    out.print(f"{stats['train_rows']:,} rows of at most {block} tokens ({stats['mode']}"
              + (": texts joined, end of text between them, cut into blocks" if stats["mode"] == "pack"
                 else ": one text a row, padded in its batch") + ")")
    if "dialogue" in stats:
        out.print(dialogue_line(stats["dialogue"]["train"]))
    out.print("scored tokens in colour, unscored ones dimmed and struck through" if not plain
              else "tokens parted by |, unscored runs in ⟦ ⟧ (a row's first token is never scored)")
    pad = session.tokenizer.pad_token_id
    pad = pad if pad is not None else session.tokenizer.eos_token_id
    table = piece_table(session.tokenizer)
    for i in range(min(samples, len(rows))):
        ids, scored = trained_row(rows, i, pad)
        out.print(f"\nrow {i + 1} of {len(rows):,}: {len(ids)} tokens, {sum(scored)} scored")
        out.print(sample_text(table, ids, scored, plain=plain))
    sys.stdout.flush()
    return 0
