"""Dialogues as training data: `.jsonl` (or a `.json` array) of
`{"messages": [{"role": "system"|"user"|"assistant", "content": str}, …]}`.

Each conversation is rendered with the chat template the Chat pane uses (`core.data.templates`),
and only the assistant replies are learned — their content and the end-of-turn marker after
it, so the model learns to stop — in every assistant turn of a multi-turn chat
(`train_on_prompt` learns everything). A conversation longer than the block loses its
oldest turns (the system prompt stays); the statistics count them.
"""

from __future__ import annotations

from collections.abc import Iterator

from core.base.errors import UserError
from core.data.source import DataSource
from core.data.templates import Template, check_messages, render
from core.data.texts import json_records


class Conversations:
    """A dialogue file's conversations — each a list of messages — read and checked in one
    pass, and handed out a batch at a time (as `datasets` would, under `messages`)."""

    def __init__(self, items: list[list[dict]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def iter(self, batch_size: int) -> Iterator[dict[str, list[list[dict]]]]:
        for start in range(0, len(self.items), batch_size):
            yield {"messages": self.items[start: start + batch_size]}


def read_dialogues(source: DataSource) -> Conversations:
    """Every conversation of a resolved dialogue file, valid — or one line naming file:line
    and what is wrong."""
    items = []
    for number, item in json_records(source):
        messages = _checked_messages(item, f"{source.path}:{number}")
        items.append([{"role": m["role"], "content": m["content"]} for m in messages])
    if not items:
        raise UserError(f"{source.path}: no conversations")
    return Conversations(items)


def _checked_messages(item: object, where: str) -> list[dict]:
    """A conversation's messages, valid and with a reply to learn from."""
    if not isinstance(item, dict) or not isinstance(item.get("messages"), list):
        raise UserError(f"{where}: expected an object with a 'messages' list")
    messages = item["messages"]
    check_messages(messages, where)
    if not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: no assistant turn to learn from")
    return messages


def encode_dialogue(tokenizer, template: Template, messages: list[dict], block: int,
                    train_on_prompt: bool = False) -> tuple[list[int], list[int], int]:
    """(ids, mask, turns dropped): the conversation as the model reads it, mask 1 on the
    tokens it learns; the oldest turns go until it fits `block`."""
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    turns = messages[len(system):]
    dropped = 0
    while True:
        ids, mask = _render_masked(tokenizer, template, system + turns, train_on_prompt)
        later = next((i for i in range(1, len(turns)) if turns[i]["role"] == "user"), None)
        if len(ids) <= block or later is None:
            return ids[:block], mask[:block], dropped
        dropped += later
        turns = turns[later:]


def _render_masked(tokenizer, template: Template, messages: list[dict],
                   train_on_prompt: bool) -> tuple[list[int], list[int]]:
    text = render(tokenizer, messages, template, generation_prompt=False)
    spans = []   # character spans of the assistant replies, end-of-turn marker included
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], template, generation_prompt=True) if i else ""
        through = render(tokenizer, messages[: i + 1], template, generation_prompt=False)
        if not text.startswith(through) or not through.startswith(before):
            raise UserError(f"template {template.name}: renders turn {i + 1} differently once "
                            "later turns follow; it cannot be trained on turn by turn")
        spans.append((len(before), len(through)))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    if train_on_prompt:
        return ids, [1] * len(ids)
    mask = [int(any(a <= start < b for a, b in spans)) for start, _ in encoded["offset_mapping"]]
    return ids, mask
