"""Two ways to turn texts into batches.

pack (default): every text + EOS, joined, cut into `block_size` blocks — no padding at all.
pad: one text per row, EOS appended, padded to the longest row of the batch; the loss skips
padding through the attention mask (labels -100), never by comparing ids with the pad id,
so a real EOS is always learned even when the pad id equals the EOS id.
"""

from __future__ import annotations

import torch


def pack_blocks(ids: list[list[int]], eos_id: int, block_size: int) -> torch.Tensor:
    """(N, block_size) blocks from the texts joined with EOS; a tail shorter than a block is
    dropped unless it is all there is."""
    stream = [t for text in ids for t in (*text, eos_id)]
    n_blocks = len(stream) // block_size
    if n_blocks == 0:
        return torch.tensor([stream], dtype=torch.long)          # (1, len) — a tiny dataset
    return torch.tensor(stream[: n_blocks * block_size], dtype=torch.long).view(n_blocks, block_size)


def pad_rows(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row: input_ids, attention_mask and labels, each (B, T)."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    labels = input_ids.masked_fill(mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def pad_samples(ids: list[list[int]], eos_id: int, block_size: int) -> list[list[int]]:
    """One row per text with EOS appended, cut to `block_size`."""
    return [(text + [eos_id])[:block_size] for text in ids if text]


class RowsDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[list[int]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> list[int]:
        return self.rows[i]


def collate(pad_id: int):
    def fn(rows: list[list[int]]) -> dict[str, torch.Tensor]:
        return pad_rows(rows, pad_id)
    return fn
