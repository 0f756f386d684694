"""Two ways to turn tokenized texts into rows, and rows into batches.

pack (default): every text + EOS, joined, cut into `block_size` blocks — no padding at all.
pad: one text per row, EOS appended, cut to `block_size`, padded to the longest row of the
batch; the loss skips padding through the attention mask (labels -100), never by comparing
ids with the pad id, so a real EOS is always learned even when the pad id equals the EOS id.

Rows are views of the token stream (`core.data.cache.TokenizedSplit`, memory-mapped), never
copies: a corpus costs a few bytes per token of resident memory, whatever its size.
"""

from __future__ import annotations

import numpy as np
import torch

from core.data.cache import TokenizedSplit


class PackedRows(torch.utils.data.Dataset):
    """(N, block_size) blocks of the stream; a tail shorter than a block is dropped unless it
    is all there is (a tiny dataset: one short row)."""

    def __init__(self, stream: TokenizedSplit, block_size: int) -> None:
        n = len(stream.ids) // block_size
        self.width = block_size if n else len(stream.ids)

        def blocks(a: np.ndarray) -> np.ndarray:
            return a[: max(n, 1) * self.width].reshape(-1, self.width) if self.width \
                else np.zeros((0, 0), a.dtype)
        self.blocks = blocks(stream.ids)
        self.masks = blocks(stream.mask) if stream.mask is not None else None

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int):
        """A block of ids — with its loss mask, for dialogues."""
        return self.blocks[i] if self.masks is None else (self.blocks[i], self.masks[i])

    def row_tokens(self) -> np.ndarray:
        return np.full(len(self), self.width, np.int64)


class PaddedRows(torch.utils.data.Dataset):
    """One row per non-empty text (its ids and EOS), cut to `block_size`."""

    def __init__(self, stream: TokenizedSplit, block_size: int) -> None:
        lengths = stream.lengths()
        kept = np.flatnonzero(lengths > 1)           # a text that tokenized to nothing: no row
        self.ids, self.mask, self.starts = stream.ids, stream.mask, stream.starts[kept]
        self.lengths = np.minimum(lengths[kept], block_size)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int):
        start = int(self.starts[i])
        end = start + int(self.lengths[i])
        return self.ids[start:end] if self.mask is None else (self.ids[start:end], self.mask[start:end])

    def row_tokens(self) -> np.ndarray:
        return self.lengths


def pad_rows(rows, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row: input_ids, attention_mask and labels, each (B, T). A
    row may come with its loss mask (ids, mask): then only its masked tokens are labels."""
    pairs = [row if isinstance(row, tuple) else (row, None) for row in rows]
    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    learn = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (ids, loss_mask) in enumerate(pairs):
        input_ids[i, : len(ids)] = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        mask[i, : len(ids)] = 1
        learn[i, : len(ids)] = True if loss_mask is None else torch.as_tensor(np.asarray(loss_mask) > 0)
    labels = input_ids.masked_fill(~learn, -100)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def collate(pad_id: int):
    def fn(rows) -> dict[str, torch.Tensor]:
        return pad_rows(rows, pad_id)
    return fn


def trained_row(rows: PackedRows | PaddedRows, i: int, pad_id: int) -> tuple[list[int], list[bool]]:
    """Row `i` exactly as a training batch carries it: its ids, and for each token whether
    the loss covers predicting it (its label is not -100; a row's first token never is)."""
    batch = pad_rows([rows[i]], pad_id)
    scored = (batch["labels"][0] != -100).tolist()
    scored[0] = False
    return batch["input_ids"][0].tolist(), scored
