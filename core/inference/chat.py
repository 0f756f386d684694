"""A conversation with the model, each reply streamed from our decode loop.

    chat = Chat(session, template="auto", system="Отвечай коротко.")
    for event in chat.send("Привет!", SamplingSettings(seed=1)):
        ...   # generation.TokenEvent per token, GenerationNotice, then ChatDone

The KV cache of the conversation so far is kept between turns: for a new turn the whole
conversation is rendered and tokenized, the cache is cut to the longest prefix it shares with
those ids, and only the rest is prefilled — exact by construction, since whatever differs
(a reply re-tokenized, an edited message) is computed again. Weights that change (a training
step, reset, another checkpoint) make the cache stale: it is dropped. A conversation that
outgrows the context loses its oldest exchanges (the system prompt stays), with a notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from core.base.errors import UserError
from core.data.templates import Template, render, template_for
from core.inference.generation import GenerationDone, GenerationNotice, generate_stream
from core.inference.sampling import SamplingSettings


@dataclass
class ChatDone:
    turn: int                         # 1-based: which reply of the conversation
    text: str
    new_tokens: int
    prompt_tokens: int                # the rendered conversation fed for this reply
    reused_tokens: int                # …of which the cache of earlier turns held
    stop_reason: str
    tokens_per_s: float
    ttft_s: float | None = None
    seed: int | None = None
    dropped_messages: int = 0         # oldest messages left out to fit the context

    def as_json(self) -> dict:
        return {"done": True, "turn": self.turn, "text": self.text, "new_tokens": self.new_tokens,
                "prompt_tokens": self.prompt_tokens, "reused_tokens": self.reused_tokens,
                "stop_reason": self.stop_reason, "tokens_per_s": self.tokens_per_s,
                "ttft_s": self.ttft_s, "seed": self.seed}


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Chat:
    def __init__(self, session, template: str = "auto", system: str | None = None,
                 messages: list[dict] | None = None) -> None:
        self.session = session
        self.template: Template = template_for(session.tokenizer, template)
        self.system = system or None
        self.messages: list[dict] = list(messages or [])   # user and assistant turns
        self._ids: list[int] = []       # what the cache holds
        self._cache = None
        self._cache_of: tuple | None = None   # (model, weights version) the cache was made with

    # -- what the model sees ------------------------------------------------------------------

    def conversation(self, messages: list[dict] | None = None) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + (self.messages if messages is None else messages)

    def prompt_ids(self, messages: list[dict] | None = None) -> list[int]:
        """The ids fed for the next reply: the conversation as the template renders it, with
        the assistant's cue — exactly what `apply_chat_template(..., tokenize=True)` gives."""
        tokenizer = self.session.tokenizer
        text = render(tokenizer, self.conversation(messages), self.template)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def rendered(self) -> str:
        return render(self.session.tokenizer, self.conversation(), self.template)

    def fitted(self, max_new: int) -> tuple[list[dict], list[int]]:
        """The messages that fit the context with room for the reply, and their ids: the
        oldest exchanges go first; the last user message always stays."""
        messages = list(self.messages)
        ids = self.prompt_ids(messages)
        while len(ids) + max_new > self.session.max_positions and len(messages) > 1:
            messages = messages[2:] if len(messages) > 2 else messages[1:]
            while messages and messages[0]["role"] != "user":
                messages = messages[1:]
            ids = self.prompt_ids(messages)
        return messages, ids

    # -- turns ----------------------------------------------------------------------------------

    def send(self, text: str, settings: SamplingSettings | None = None,
             should_stop: Callable[[], bool] = lambda: False) -> Iterator:
        if self.messages and self.messages[-1]["role"] == "user":
            raise UserError("the last message has no reply yet")
        self.messages.append({"role": "user", "content": text})
        yield from self.answer(settings, should_stop)

    def regenerate(self, settings: SamplingSettings | None = None,
                   should_stop: Callable[[], bool] = lambda: False) -> Iterator:
        """The last reply again (another draw, or other settings)."""
        if self.messages and self.messages[-1]["role"] == "assistant":
            self.messages.pop()
        if not self.messages:
            raise UserError("nothing to answer yet")
        yield from self.answer(settings, should_stop)

    def edit_last(self, text: str, settings: SamplingSettings | None = None,
                  should_stop: Callable[[], bool] = lambda: False) -> Iterator:
        """The last user message replaced, and answered from there."""
        while self.messages and self.messages[-1]["role"] != "user":
            self.messages.pop()
        if not self.messages:
            raise UserError("no message to edit")
        self.messages[-1] = {"role": "user", "content": text}
        yield from self.answer(settings, should_stop)

    def answer(self, settings: SamplingSettings | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> Iterator:
        """A reply to the conversation as it is (its last message is the user's)."""
        s = (settings or SamplingSettings()).validate()
        kept, ids = self.fitted(s.max_new_tokens)
        dropped = len(self.messages) - len(kept)
        if dropped:
            yield GenerationNotice(f"the conversation outgrew the context ({self.session.max_positions} "
                         f"tokens): its oldest {dropped} messages are left out")
        reuse = self._reusable(ids)
        stops = tuple(s.stop) + tuple(x for x in self.template.stops if x not in s.stop)
        done = None
        for event in generate_stream(self.session, "", replace(s, stop=stops), should_stop,
                                     prompt_ids=ids, cache=self._cache, cached=reuse):
            if isinstance(event, GenerationDone):
                done = event
            else:
                yield event
        self._ids = done.cached_ids
        reply = _trim_reply(done.text, stops)
        self.messages.append({"role": "assistant", "content": reply})
        yield ChatDone(turn=sum(m["role"] == "assistant" for m in self.messages), text=reply,
                       new_tokens=done.new_tokens, prompt_tokens=len(ids),
                       reused_tokens=min(reuse, len(ids) - 1), stop_reason=done.stop_reason,
                       tokens_per_s=done.tokens_per_s, ttft_s=done.ttft_s, seed=done.seed,
                       dropped_messages=dropped)

    def _reusable(self, ids: list[int]) -> int:
        """How many of `ids` the cache holds; a cache from other weights is dropped."""
        from transformers import DynamicCache

        now = (id(self.session.model), self.session.weights_version)
        if self._cache is None or self._cache_of != now:
            self._cache, self._cache_of, self._ids = DynamicCache(), now, []
        return common_prefix(self._ids, ids)


def _trim_reply(text: str, stops: tuple[str, ...]) -> str:
    """The reply as it is kept: up to a stop string, without surrounding whitespace."""
    for stop in stops:
        at = text.find(stop)
        if at >= 0:
            text = text[:at]
    return text.strip()
