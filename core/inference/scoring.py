"""How well a model predicts held-out text: the token-weighted next-token loss and its
perplexity, each sample framed as training frames it and scored on its own.

A text sample is the tokenizer's own framing (its special tokens) plus the end-of-text token
unless the tokenizer already ends with it; a dialogue is rendered with the model's template
and only its replies are scored, as in training. A sample longer than the block is cut into
windows of the block size; in each window every token after the first is predicted from the
ones before it. Samples are read one batch at a time, so memory stays bounded on big files.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core.base.errors import UserError

WINDOWS_PER_BATCH = 8
Progress = Callable[[int, int], None]   # (samples scored, samples in all)


@dataclass
class Score:
    model: str
    loss: float                       # token-weighted mean next-token loss
    tokens: int                       # the tokens it is the mean over
    block_size: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)

    def as_json(self) -> dict:
        return {"model": self.model, "loss": self.loss, "perplexity": self.perplexity}


def frame_text(tokenizer, text: str) -> tuple[list[int], list[int]]:
    """(ids, scored) of a text sample as training frames it."""
    ids = list(tokenizer(text)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids, [1] * len(ids)


def windows(ids: list[int], scored: list[int], block: int) -> Iterator[tuple[list[int], list[int]]]:
    """The sample cut into windows of `block` tokens; a window of one token predicts nothing."""
    for start in range(0, len(ids), block):
        window = ids[start:start + block]
        if len(window) > 1:
            yield window, scored[start:start + block]


def score_windows(model, batch: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[float, int]:
    """(summed loss, tokens scored) over a batch of windows."""
    import torch

    from core.data.rows import pad_rows

    padded = pad_rows(batch, pad_id)   # padded as a training batch is: labels -100 where unscored
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=padded["input_ids"].to(device),
                       attention_mask=padded["attention_mask"].to(device)).logits  # (B, T, V)
    targets = padded["labels"][:, 1:].to(device)                                     # (B, T-1)
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum")
    return float(losses), int((targets != -100).sum())


def samples(session, spec: str, cache_dir: str) -> tuple[int, Iterator[tuple[list[int], list[int]]]]:
    """(how many, the framed samples) of the data at `spec`: texts (through `datasets`, its
    files in `cache_dir`) or dialogues."""
    from core.data.dialogues import encode_dialogue, read_dialogues
    from core.data.source import resolve_source
    from core.data.templates import template_for

    source = resolve_source(spec)
    if source.dialogues:
        conversations = read_dialogues(source).items
        template = template_for(session.tokenizer, "auto")
        framed = (encode_dialogue(session.tokenizer, template, messages, 1 << 30)[:2]
                  for messages in conversations)
        return len(conversations), framed
    from core.data.texts import load_texts

    texts = load_texts(source, cache_dir)
    return len(texts), (frame_text(session.tokenizer, row["text"]) for row in texts)


def score_model(session, spec: str, block: int | None = None, progress: Progress | None = None,
                cancelled: Callable[[], bool] = lambda: False) -> Score:
    """The model's loss on the data at `spec`, token-weighted over every scored token."""
    from core.base.settings import default_block_size

    block = block or default_block_size(session.max_positions)
    if block > session.max_positions:
        raise UserError(f"--block-size {block}: the model's context is {session.max_positions}")
    if block < 2:
        raise UserError(f"--block-size {block}: a window needs at least 2 tokens")
    with tempfile.TemporaryDirectory(prefix="rugpt-tui-eval-") as cache_dir:
        loss_sum, tokens = _score(session, spec, block, cache_dir, progress, cancelled)
    if tokens == 0:
        raise UserError(f"{spec}: no token to score (every sample is shorter than two tokens)")
    return Score(session.info.model, loss_sum / tokens, tokens, block)


def _score(session, spec: str, block: int, cache_dir: str, progress: Progress | None,
           cancelled: Callable[[], bool]) -> tuple[float, int]:
    pad = session.tokenizer.pad_token_id
    pad = pad if pad is not None else (session.tokenizer.eos_token_id or 0)
    total, framed = samples(session, spec, cache_dir)
    loss_sum, tokens = 0.0, 0
    batch: list[tuple[list[int], list[int]]] = []
    with session.lock:
        was_training = session.model.training
        session.model.eval()
        try:
            for done, (ids, scored) in enumerate(framed, 1):
                batch.extend(windows(ids, scored, block))
                if len(batch) >= WINDOWS_PER_BATCH or done == total:
                    if batch:
                        s, n = score_windows(session.model, batch, pad)
                        loss_sum, tokens, batch = loss_sum + s, tokens + n, []
                    if progress is not None:
                        progress(done, total)
                if cancelled():
                    raise UserError("evaluation stopped")
        finally:
            session.model.train(was_training)
    return loss_sum, tokens
