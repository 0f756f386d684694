"""Counts over a token view: how many tokens each word takes (the notebook's Task 0), and
the rows of the padded batch several lines make."""

from __future__ import annotations

import re

import numpy as np

from core.tokens.pieces import piece_table
from core.tokens.view import TokenView

_WORD = re.compile(r"\w+(?:[-’']\w+)*")


def word_counts(view: TokenView) -> tuple[list[str], list[int], list[int]]:
    """(words, their start offsets, how many tokens each takes) — the notebook's Task 0.
    Words inside special tokens (`</s>`) are skipped; a token holding part of a character
    counts for the word it is in."""
    found = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(view.text)]
    if not found or not view.ids:
        return [], [], []
    words, w_starts, w_ends = zip(*found)
    # A token with an empty slice holds part of the character at its position: treat it as
    # covering that character. Both bounds then never decrease along the tokens.
    lo = np.asarray(view.starts)
    hi = np.maximum(np.asarray(view.ends), lo + 1)
    first = np.searchsorted(hi, w_starts, side="right")   # first token reaching past the word start
    last = np.searchsorted(lo, w_ends, side="left")       # first token starting at/after the word end
    counts = last - first
    if not view.table.special_ids.isdisjoint(view.ids):
        special = np.fromiter((t in view.table.special_ids for t in view.ids), dtype=bool,
                              count=view.count)
        specials_before = np.concatenate(([0], np.cumsum(special)))
        keep = (specials_before[last] - specials_before[first]) == 0
        idx = np.flatnonzero(keep).tolist()
        return [words[i] for i in idx], [w_starts[i] for i in idx], counts[keep].tolist()
    return list(words), list(w_starts), counts.tolist()


def word_spread(view: TokenView) -> dict[str, tuple[int, int]]:
    """Each distinct word, in order of first appearance, with the fewest and the most tokens
    it takes: the same word splits differently at the start of a line and after a space."""
    words, _, counts = word_counts(view)
    spread: dict[str, tuple[int, int]] = {}
    for word, n in zip(words, counts):
        seen = spread.get(word)
        if seen is None:
            spread[word] = (n, n)
        elif n < seen[0] or n > seen[1]:
            spread[word] = (min(n, seen[0]), max(n, seen[1]))
    return spread


def most_split(spread: dict[str, tuple[int, int]], n: int = 10) -> list[tuple[str, int]]:
    """(word, tokens) for the words that split the most, where they split the most."""
    top = sorted(spread.items(), key=lambda item: -item[1][1])[:n]  # stable: ties by position
    return [(word, most) for word, (_, most) in top]


def single_token_words(spread: dict[str, tuple[int, int]]) -> list[str]:
    """Words that are a single token somewhere in the text (often only after a space)."""
    return [word for word, (fewest, _) in spread.items() if fewest == 1]


def line_token_counts(tokenizer, lines: list[str]) -> list[int]:
    """How many tokens `tokenizer(line)` gives for each line — the rows of the padded batch
    `tensor_view` builds. Remembered per line, so while one line of a long text is being
    edited only that line is tokenized again."""
    table = piece_table(tokenizer)
    if len(table.line_counts) > 20_000:
        table.line_counts = {}
    memo = table.line_counts
    missing = [line for line in dict.fromkeys(lines) if line not in memo]
    if missing:
        backend = table.backend
        if backend is not None:
            rows = [enc.ids for enc in backend.encode_batch(missing, add_special_tokens=True)]
        else:
            rows = tokenizer(missing)["input_ids"]
        for line, ids in zip(missing, rows):
            memo[line] = len(ids)
    return [memo[line] for line in lines]


def pad_mask(length: int, width: int, left: bool) -> list[int]:
    """One row of the attention mask of a batch padded to `width`."""
    real, pad = [1] * length, [0] * (width - length)
    return pad + real if left else real + pad
