"""Our own decode loop: prefill the prompt once, then one token per step from a KV cache.

    events = generate_stream(session, "Это", SamplingSettings(seed=1))
    for event in events: ...   # TokenEvent per token, GenerationNotice for warnings, GenerationDone at the end

Only the last position's logits are computed at each step. Cancel (`should_stop`) is checked
before every forward pass, so it takes effect within one step. Every forward holds the
session lock, so a training run on the same weights interleaves step by step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from core.base import clock
from core.base.errors import UserError
from core.inference.sampling import SamplingSettings, choose_next, make_generator, resolve_seed


@dataclass
class TokenEvent:
    step: int
    id: int
    text: str                         # new text this token completes ("" mid-character)
    prob: float
    top: list[tuple[int, float]]
    elapsed_s: float = 0.0

    def as_json(self) -> dict:
        return {"step": self.step, "id": self.id, "text": self.text, "prob": self.prob,
                "top": [[i, p] for i, p in self.top]}


@dataclass
class GenerationNotice:
    message: str


@dataclass
class GenerationDone:
    ids: list[int]
    text: str
    new_tokens: int
    tokens_per_s: float
    stop_reason: str                  # length | eos | stop | cancel
    ttft_s: float | None = None
    seed: int | None = None
    prompt_tokens: int = 0
    cached_ids: list[int] | None = None   # the ids the KV cache holds at the end

    def as_json(self) -> dict:
        return {"done": True, "ids": self.ids, "text": self.text, "new_tokens": self.new_tokens,
                "tokens_per_s": self.tokens_per_s, "stop_reason": self.stop_reason,
                "ttft_s": self.ttft_s, "seed": self.seed, "prompt_tokens": self.prompt_tokens}


class IncrementalDecoder:
    """Turns ids into text as they arrive without ever emitting half a character (`�`):
    text is held back until the bytes of the character are complete.

    `context` is the end of the prompt: new text is decoded after it, so a SentencePiece
    word marker keeps its space (decoded alone, `▁был` is "был": the decoder drops the
    space that starts a text)."""

    CONTEXT_TOKENS = 4

    def __init__(self, tokenizer, context: list[int] | None = None) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = list(context or [])[-self.CONTEXT_TOKENS:]
        self.prefix = 0           # start of the window decoded for context
        self.read = len(self.ids)  # end of what has been emitted

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        before = self._decode(self.ids[self.prefix:self.read])
        now = self._decode(self.ids[self.prefix:])
        if len(now) > len(before) and not now.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return now[len(before):]
        return ""



DAMAGED = ("the model's scores are not numbers (NaN or infinite): its weights are damaged — "
           "a run that diverged? Reset to base weights (palette), or load the model again")

def cache_keyword(model) -> str:
    """transformers ≥ 5.24 names the forward argument `cache`; earlier, `past_key_values`."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _forward_kwargs(model) -> dict:
    params = inspect.signature(model.forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def eos_ids_of(model, tokenizer) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, (list, tuple)) else {int(eos)}


def fit_prompt(prompt_ids: list[int], max_new: int, context: int) -> tuple[list[int], int, list[str]]:
    """Cut the prompt from the left (and if need be, the budget) so prompt + new ≤ context."""
    notices = []
    if max_new >= context:
        max_new = context - 1
        notices.append(f"max new tokens cut to {max_new}: the model's context is {context} tokens")
    if len(prompt_ids) + max_new > context:
        keep = context - max_new
        notices.append(f"prompt cut from the left to its last {keep} of {len(prompt_ids)} tokens "
                       f"(context {context} = prompt + {max_new} new)")
        prompt_ids = prompt_ids[-keep:]
    return prompt_ids, max_new, notices


class _EvalMode:
    """Eval mode for one forward, restoring whatever mode a training run left the model in."""

    def __init__(self, model) -> None:
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        if self.was_training:
            self.model.eval()

    def __exit__(self, *exc):
        if self.was_training:
            self.model.train()


def crop_cache(cache, length: int) -> None:
    """Keep the first `length` positions of a KV cache."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)   # a negative count removes that many from the end


def _compiled_or_plain(forward):
    """`forward` compiled with CUDA graphs; should compiling fail, the plain one from then on
    (slower, never wrong)."""
    compiled = torch.compile(forward, mode="reduce-overhead", fullgraph=True)
    chosen = [compiled]

    def step(*args, **kwargs):
        try:
            return chosen[0](*args, **kwargs)
        except Exception:
            if chosen[0] is forward:
                raise
            chosen[0] = forward
            return forward(*args, **kwargs)
    return step


def static_decoding(session):
    """A static KV cache the length of the context, kept on the session (its tensors never
    move, which CUDA graphs need), and the decode step: compiled with CUDA graphs on a GPU,
    the plain forward elsewhere."""
    from transformers import StaticCache

    kept = getattr(session, "static_decode", None)
    if kept is None or kept[0] is not session.model:
        model = session.model
        cache = StaticCache(config=model.config, max_cache_len=session.max_positions)
        step = model.forward
        if model.device.type == "cuda":
            step = _compiled_or_plain(model.forward)
        kept = session.static_decode = (model, cache, step)
    _, cache, step = kept
    with torch.inference_mode():   # its tensors were made under inference mode
        cache.reset()
    return cache, step


def generate_stream(session, prompt: str, settings: SamplingSettings | None = None,
                    should_stop: Callable[[], bool] = lambda: False,
                    prompt_ids: list[int] | None = None, n_top: int = 10,
                    cache=None, cached: int = 0, static: bool = False) -> Iterator:
    """`cache` (with `cached` > 0): a KV cache that already holds the first `cached` prompt
    ids — only the rest is prefilled (a chat's next turn). It is cut to those `cached`
    positions first, and holds every token fed when the loop ends. `static`: decode with a
    static cache and a compiled step (`static_decoding`) instead."""
    s = (settings or SamplingSettings()).validate()
    model, tokenizer, lock = session.model, session.tokenizer, session.lock
    device = model.device
    start = clock.seconds()

    prompt_ids, max_new, notices = _prompt_ids(session, prompt, prompt_ids, s.max_new_tokens)
    if notices or cache is None:   # a prompt cut from the left shares no prefix with the cache
        cached = 0
    for message in notices:
        yield GenerationNotice(message)

    seed = resolve_seed(s.seed)
    generator = make_generator(seed, device)
    eos_ids = eos_ids_of(model, tokenizer)
    decoder = IncrementalDecoder(tokenizer, context=prompt_ids)
    cache, decode, cached = _ready_cache(session, cache, cached, len(prompt_ids), static)
    forward_kw = {"use_cache": True, cache_keyword(model): cache, **_forward_kwargs(model)}

    seen = torch.tensor(prompt_ids, device=device)          # (N,) for the repetition penalty
    step_input = seen[None, cached:]                         # (1, T): the prompt's new part first
    new_ids: list[int] = []
    pieces: list[str] = []                                   # the text as streamed
    recent = ""                                              # enough text to spot a stop string
    stop_reason = "length"
    ttft = None
    tail = max((len(x) for x in s.stop), default=0)

    for step in range(max_new):
        if should_stop():
            stop_reason = "cancel"
            break
        with lock, torch.inference_mode(), _EvalMode(model):
            if static:   # positions given, never read off the cache: one graph for every step
                first = 0 if step == 0 else len(prompt_ids) + step - 1   # the prompt, then one id
                positions = torch.arange(first, first + step_input.shape[1], device=device)[None]
                forward = model if step == 0 else decode   # the prefill runs uncompiled
                out = forward(input_ids=step_input, position_ids=positions, **forward_kw)
            else:
                out = model(input_ids=step_input, **forward_kw)
            logits = out.logits[0, -1]                       # (V,) last position only
            if not torch.isfinite(logits).all():   # no distribution to draw from
                raise UserError(DAMAGED)
            choice = choose_next(logits, seen, s, generator, n_top)
        next_id = choice.id
        new_ids.append(next_id)
        seen = torch.cat([seen, seen.new_tensor([next_id])])
        step_input = seen[None, -1:]                         # (1, 1): one token per step
        piece = decoder.push(next_id)
        pieces.append(piece)
        now = clock.seconds()
        if ttft is None:
            ttft = now - start
        yield TokenEvent(step, next_id, piece, choice.prob, choice.top, now - start)
        if next_id in eos_ids:
            stop_reason = "eos"
            break
        if piece and s.stop:
            recent = (recent + piece)[-(tail + len(piece)):]
            if any(stop in recent for stop in s.stop):
                stop_reason = "stop"
                break

    elapsed = clock.seconds() - start
    # Each forward gave one new id: the cache holds the prompt and every new id but the last.
    fed = prompt_ids + new_ids[:-1] if new_ids else prompt_ids[:cached]
    # What was streamed: the new tokens decoded after the prompt, less a character whose
    # bytes the last token left unfinished.
    yield GenerationDone(ids=new_ids, text="".join(pieces), new_tokens=len(new_ids),
               tokens_per_s=len(new_ids) / elapsed if elapsed > 0 else 0.0,
               stop_reason=stop_reason, ttft_s=ttft, seed=seed,
               prompt_tokens=len(prompt_ids), cached_ids=fed)


def _ready_cache(session, cache, cached: int, prompt_length: int, static: bool):
    """The KV cache to decode with, the compiled step (static decoding), and how many prompt
    ids it already holds — at least one id is left to prefill; a reused cache is cut to them."""
    if static:
        cache, decode = static_decoding(session)
        return cache, decode, 0
    if cache is None:
        from transformers import DynamicCache

        cache = DynamicCache()
    cached = min(cached, prompt_length - 1)
    crop_cache(cache, cached)
    return cache, None, cached


def _prompt_ids(session, prompt: str, prompt_ids: list[int] | None,
                max_new_tokens: int) -> tuple[list[int], int, list[str]]:
    """The ids the model is fed (`tokenizer(prompt)` unless given; the start token for an
    empty prompt), cut from the left to leave room for the new tokens; how many new tokens
    fit; and what was changed, to say."""
    tokenizer = session.tokenizer
    if prompt_ids is None:
        prompt_ids = tokenizer(prompt)["input_ids"]
    notices = []
    if not prompt_ids:
        start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        prompt_ids = [start_id]
        notices.append("empty prompt: starting from the beginning-of-text token")
    prompt_ids, max_new, cut = fit_prompt(list(prompt_ids), max_new_tokens, session.max_positions)
    return prompt_ids, max_new, notices + cut


@dataclass
class NextTokenView:
    """The notebook's look inside: logits (B, T, V), softmax over V, the best candidates."""
    logits_shape: tuple[int, int, int]
    prompt_tokens: int
    top: list[tuple[int, str, float, float]]   # id, piece, probability, logit
    entropy_bits: float


def inspect_next(session, prompt: str, n_top: int = 10) -> NextTokenView:
    model, tokenizer = session.model, session.tokenizer
    ids = tokenizer(prompt)["input_ids"] or [tokenizer.bos_token_id or tokenizer.eos_token_id]
    ids = ids[-session.max_positions:]
    with session.lock, torch.inference_mode(), _EvalMode(model):
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits  # (1, T, V)
    last = logits[0, -1].float()                             # (V,)
    if not torch.isfinite(last).all():
        raise UserError(DAMAGED)
    probs = last.softmax(-1)                                 # sums to 1 over the vocabulary
    top = torch.topk(probs, min(n_top, probs.numel()))
    entropy = float(-(probs * probs.clamp_min(1e-30).log2()).sum())
    rows = [(int(i), tokenizer.decode([int(i)]), float(p), float(last[i]))
            for p, i in zip(top.values, top.indices)]
    return NextTokenView(tuple(logits.shape), len(ids), rows, entropy)
