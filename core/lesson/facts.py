"""What the exercises are checked against: facts of the loaded model, computed when asked."""

from __future__ import annotations

import math
import re
from functools import lru_cache

from core.data.texts import sample_corpus_path

WORD = re.compile(r"[а-яё]+|[a-z]+", re.IGNORECASE)
VOWELS = set("аеёиоуыэюяaeiouy")


def pieces(tokenizer, text: str) -> list[str]:
    """`text` as the model's tokens, each shown as the text it holds."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [tokenizer.decode([i]) for i in ids]


def word_tokens(tokenizer, word: str) -> list[str]:
    """A word's tokens as it appears inside a sentence — after a space, as most words do —
    and as the Tokenize pane shows it on its own; the fewer of the two."""
    return min(pieces(tokenizer, " " + word), pieces(tokenizer, word), key=len)


def is_word(text: str) -> bool:
    """A plausible word: letters of one alphabet, a vowel, no letter three times running."""
    return (WORD.fullmatch(text) is not None and 2 <= len(text) <= 40
            and bool(VOWELS & set(text.lower())) and re.search(r"(.)\1\1", text.lower()) is None)


def split_goal(tokenizer) -> int:
    """How many tokens "a word that falls apart" needs for this vocabulary: more than 19 in
    20 of the words of the shipped Russian corpus split into (at least 3)."""
    return _split_goal(tokenizer.name_or_path, len(tokenizer), tokenizer)


@lru_cache(maxsize=8)
def _split_goal(name: str, size: int, tokenizer) -> int:
    text = sample_corpus_path().read_text(encoding="utf-8")
    words = sorted({w.lower() for w in WORD.findall(text) if len(w) > 1})
    counts = sorted(len(word_tokens(tokenizer, w)) for w in words)
    p95 = counts[min(len(counts) - 1, math.ceil(0.95 * len(counts)) - 1)] if counts else 2
    return max(3, p95 + 1)


def logits_shape(session, text: str) -> tuple[int, int, int]:
    """(1, T, V): one row, a position per token the tokenizer gives for `text` (special
    tokens it adds included), a score per entry of the output layer."""
    ids = session.tokenizer(text)["input_ids"]
    return 1, len(ids), int(session.model.get_output_embeddings().weight.shape[0])


def allowed_next(session, prompt: str, settings) -> int:
    """How many tokens can follow `prompt` under `settings` (what the candidates view marks
    as possible): the distribution the next token is drawn from, its non-zero entries."""
    import torch

    from core.inference.sampling import candidates

    if settings.greedy:
        return 1
    ids = session.tokenizer(prompt, return_tensors="pt")["input_ids"].to(session.model.device)
    with session.lock, torch.no_grad():
        logits = session.model(input_ids=ids).logits[0, -1]                   # (V,)
    _, kept = candidates(logits, ids[0], settings)
    return int(torch.isfinite(kept).sum())


def training_blocks(tokenizer, config) -> int:
    """The training rows (blocks, when packed) `config`'s data gives at its block size."""
    from core.training.batches import prepare_data

    return int(prepare_data(tokenizer, config, config.block_size).stats["train_rows"])
