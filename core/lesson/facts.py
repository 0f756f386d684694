"""What the exercises are checked against: facts of the loaded model, computed when asked."""

from __future__ import annotations

import math
import re
from functools import lru_cache

from core.base.paths import corpus_path

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


# The words of one letter: Russian prepositions, conjunctions, particles, a pronoun, and
# English's two.
ONE_LETTER_WORDS = set("авжиксоуяai")


def word_problem(text: str) -> tuple[str, str] | None:
    """Why `text` is not a plausible word (in Russian, in English), or None when it is one:
    letters of one alphabet, a vowel, no letter three times running; or a word of one letter."""
    lower = text.lower()
    if not text:
        return "пусто", "nothing typed"
    if not re.fullmatch(r"[^\W\d_]+", text):
        return "нужны только буквы", "letters only"
    if WORD.fullmatch(text) is None:
        return ("буквы одного алфавита (русского или латинского)",
                "letters of one alphabet (Cyrillic or Latin)")
    if len(text) == 1:
        if lower in ONE_LETTER_WORDS:
            return None
        return ("одна буква — это слово, только если это а, в, ж, и, к, о, с, у или я",
                "one letter is a word only as a, I (or Russian а, в, ж, и, к, о, с, у, я)")
    if len(text) > 40:
        return "слишком длинное для слова", "too long for a word"
    if not VOWELS & set(lower):
        return "в нём нет гласной", "it has no vowel"
    if re.search(r"(.)\1\1", lower):
        return "буква три раза подряд", "a letter three times running"
    return None


def is_word(text: str) -> bool:
    return word_problem(text) is None


def split_goal(tokenizer) -> int:
    """How many tokens "a word that falls apart" needs for this vocabulary: more than 19 in
    20 of the words of the shipped Russian corpus split into (at least 3)."""
    return _split_goal(tokenizer.name_or_path, len(tokenizer), tokenizer)


@lru_cache(maxsize=8)
def _split_goal(name: str, size: int, tokenizer) -> int:
    text = corpus_path().read_text(encoding="utf-8")
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


def settled_block(session, prompt: str) -> tuple[int, int, list[str]]:
    """(the first layer whose top next token at the prompt's last position is the model's
    final one, that token's id, each layer's top token there as text) — the logit lens."""
    from core.inference.inside import logit_lens, prompt_ids

    lens = logit_lens(session, prompt_ids(session, prompt), top=1)
    tops = [row[-1].top[0][0] for row in lens]
    names = [session.tokenizer.decode([i]) for i in tops]
    return next(layer for layer, i in enumerate(tops) if i == tops[-1]), tops[-1], names
