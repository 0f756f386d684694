"""Choosing the next token, in the order Hugging Face applies it:

    repetition penalty → temperature → top-k → top-p → softmax → draw

Each step works on logits already computed (no extra forward pass) and reports the chosen
token's probability and the best candidates of the very distribution it was drawn from.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch

from core.base.settings import SAMPLING_SETTINGS, by_name, check_all

_DEFAULT = {name: setting.default for name, setting in by_name(SAMPLING_SETTINGS).items()}


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = _DEFAULT["temperature"]
    top_k: int = _DEFAULT["top_k"]                 # 0 = off
    top_p: float = _DEFAULT["top_p"]               # 1.0 = off
    repetition_penalty: float = _DEFAULT["repetition_penalty"]
    greedy: bool = _DEFAULT["greedy"]
    max_new_tokens: int = _DEFAULT["max_new_tokens"]
    seed: int | None = _DEFAULT["seed"]
    stop: tuple[str, ...] = ()

    def as_record(self) -> dict:
        """The settings as stored with a generation (the seed is stored beside them)."""
        record = {s.name: getattr(self, s.name) for s in SAMPLING_SETTINGS if s.name != "seed"}
        return {**record, "stop": list(self.stop)}

    def validate(self) -> SamplingSettings:
        # greedy decoding never divides by the temperature
        check_all(SAMPLING_SETTINGS, self, skip=("temperature",) if self.greedy else ())
        return self


@dataclass
class Choice:
    id: int
    prob: float                      # under the distribution it was drawn from
    top: list[tuple[int, float]]     # best candidates of that distribution, best first


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """logits (V,), seen (N,) ids: divide positive logits of seen ids by `penalty`, multiply
    negative ones (so a seen token always gets less likely when penalty > 1)."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    picked = logits.gather(0, seen)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return logits.scatter(0, seen, picked)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of best tokens whose mass reaches p (the crossing token included)."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=False)          # worst first
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    drop_sorted = cumulative <= (1 - p)
    drop_sorted[-1] = False                                              # always keep one
    drop = drop_sorted.scatter(0, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def candidates(logits: torch.Tensor, seen: torch.Tensor, s: SamplingSettings):
    """(V,) raw logits → the distribution the token is drawn from, as the tokens it keeps:
    (ids (C,), logits (C,)); ids None means the whole vocabulary. Top-k keeps ties at the
    k-th value; after it only ~k tokens remain, so top-p sorts k values instead of the whole
    vocabulary, and the draw is over k."""
    logits = apply_repetition_penalty(logits.float(), seen, s.repetition_penalty)
    if s.greedy:
        return None, logits
    if s.temperature != 1.0:
        logits = logits / s.temperature
    if not 0 < s.top_k < logits.size(-1):
        return None, top_p_filter(logits, s.top_p)
    kth = torch.topk(logits, s.top_k).values[-1]
    ids = torch.nonzero(logits >= kth).squeeze(1)                       # ties at the k-th stay
    kept = logits[ids]
    if s.top_p < 1.0 and torch.unique(kept).numel() < kept.numel():
        # Equal logits: which of them top-p cuts depends on how the sort orders them, so
        # sort the full-length vector exactly as transformers does.
        full = top_p_filter(logits.masked_fill(logits < kth, float("-inf")), s.top_p)
        return ids, full[ids]
    return ids, top_p_filter(kept, s.top_p)


def choose_next(logits: torch.Tensor, seen: torch.Tensor, s: SamplingSettings,
                generator: torch.Generator | None, n_top: int = 10) -> Choice:
    """One decoding step. logits (V,) for the last position; seen (N,) prompt + generated ids."""
    ids, kept = candidates(logits, seen, s)                            # (C,) each; ids None = all
    probs = kept.softmax(-1)                                           # (C,)
    if s.greedy:
        pick = torch.argmax(probs)
    else:
        pick = torch.multinomial(probs, 1, generator=generator)[0]
    top = torch.topk(probs, min(n_top, probs.size(-1)))
    top_ids = top.indices if ids is None else ids[top.indices]
    best = [(int(i), float(v)) for i, v in zip(top_ids.tolist(), top.values.tolist())]
    if len(best) < n_top and ids is not None:
        # top-k cut the rest: list the next best by logit too, with probability 0
        shown = {i for i, _ in best}
        runners = torch.topk(logits, min(n_top + len(best), logits.size(-1))).indices.tolist()
        best += [(i, 0.0) for i in runners if i not in shown][: n_top - len(best)]
    return Choice(id=int(pick if ids is None else ids[pick]), prob=float(probs[pick]), top=best)


def resolve_seed(seed: int | None) -> int:
    """A given seed, or a fresh one that is reported so the run can be repeated."""
    return seed if seed is not None else secrets.randbits(48)


def make_generator(seed: int, device) -> torch.Generator:
    """A private RNG: sampling never touches (or depends on) the global torch RNG."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
