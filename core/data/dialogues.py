"""Dialogues as training data: `.jsonl` (or a `.json` array) of
`{"messages": [{"role": "system"|"user"|"assistant", "content": str}, …]}`.

Each conversation is rendered with the chat template the Chat pane uses (`core.data.templates`),
and only the assistant replies are learned — their content and the end-of-turn marker after
it, so the model learns to stop — in every assistant turn of a multi-turn chat
(`train_on_prompt` learns everything). A conversation longer than the block loses its
oldest turns (the system prompt stays); the statistics count them.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.base.errors import UserError
from core.data.templates import Template, check_messages, render
from core.data.texts import check_text_file, json_records


def is_chat_file(spec: str) -> bool:
    """A .jsonl/.json file whose first object has `messages`."""
    path = Path(spec).expanduser()
    try:   # a name too long, a folder we may not read: not dialogues (loading says why)
        if not path.is_file() or path.suffix.lower() not in (".jsonl", ".json"):
            return False
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            head = f.read(1 << 16).lstrip()
    except (OSError, ValueError):
        return False
    if head.startswith("["):
        return '"messages"' in head[:4096]
    try:
        first = json.loads(head.split("\n", 1)[0])
    except json.JSONDecodeError:
        return False
    return isinstance(first, dict) and "messages" in first


def check_chat_file(path: Path) -> int:
    """Every conversation valid, or one line naming file:line and what is wrong; the count.
    The file is read line by line, after the same UTF-8 check as any text data."""
    check_text_file(path)
    count = 0
    for number, item in json_records(path):
        _check_conversation(item, f"{path}:{number}")
        count += 1
    if not count:
        raise UserError(f"{path}: no conversations")
    return count


def _check_conversation(item, where: str) -> None:
    if not isinstance(item, dict) or not isinstance(item.get("messages"), list):
        raise UserError(f"{where}: expected an object with a 'messages' list")
    check_messages(item["messages"], where)
    if not any(m["role"] == "assistant" for m in item["messages"]):
        raise UserError(f"{where}: no assistant turn to learn from")


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


def load_dialogues(spec: str, cache_dir: str | None = None):
    """A `datasets.Dataset` with one column, `messages`, after every conversation passed
    `check_chat_file`."""
    import datasets

    path = Path(spec).expanduser()
    check_chat_file(path)
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache_dir)
    return ds.select_columns(["messages"])
