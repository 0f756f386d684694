"""Tokenizing again only around an edit, where that gives exactly the full tokenizer's ids."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.tokens.pieces import PieceTable
    from core.tokens.view import TokenView


class Splice:
    """Whether a tokenizer can be re-tokenized around an edit, exactly.

    GPT-2's byte-level pre-tokenizer splits text with a regex whose every alternative is
    either all whitespace or an optional space followed by non-space characters. So wherever
    a non-space character is followed by a space, a pre-token ends, whatever comes before or
    after; BPE never merges across pre-tokens. Between two such places, the tokens depend
    only on the text between them. That holds with no normalizer, no BPE dropout, no prefix
    space added, and no added token that holds whitespace or strips it."""

    def __init__(self, tokenizer, backend) -> None:
        self.ok = False
        if backend is None:
            return
        pre = backend.pre_tokenizer
        if (backend.normalizer is not None or type(pre).__name__ != "ByteLevel"
                or pre.add_prefix_space or not pre.use_regex
                or getattr(backend.model, "dropout", None)):
            return
        for added in getattr(tokenizer, "added_tokens_decoder", {}).values():
            if (added.lstrip or added.rstrip or added.single_word
                    or any(ch.isspace() for ch in added.content)):
                return
        # What the post-processor puts around the body (e.g. <s> … </s>).
        full = backend.encode("a", add_special_tokens=True).ids
        body = backend.encode("a", add_special_tokens=False).ids
        at = next((i for i in range(len(full) - len(body) + 1)
                   if full[i:i + len(body)] == body), None)
        if not body or at is None:
            return
        self.backend, self.front, self.back = backend, at, len(full) - at - len(body)
        self.ok = True

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slice comparisons: C speed, no per-character loop
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cut_before(text: str, end: int) -> int:
    """The last place before `end` where a non-space character is followed by a space
    (0 when there is none): a pre-token ends there whatever the rest of the text is."""
    p = text.rfind(" ", 0, end)
    while p > 0 and text[p - 1].isspace():
        p = text.rfind(" ", 0, p)
    return max(p, 0)


def _cut_after(text: str, start: int) -> int:
    """The first such place at or after `start` (the text's end when there is none)."""
    q = text.find(" ", max(start, 1))
    while q != -1 and text[q - 1].isspace():
        q = text.find(" ", q + 1)
    return len(text) if q == -1 else q


def spliced_ids(table: PieceTable, old: TokenView, text: str) -> list[int] | None:
    """The ids of `text` from those of `old` (a view of the text before an edit), or None
    when the tokenizer cannot be spliced exactly."""
    splice = table.splice
    if not splice.ok or not old.text or not text or old.table is not table:
        return None
    prefix = _common_prefix(old.text, text)
    suffix = _common_suffix(old.text, text, min(len(old.text), len(text)) - prefix)
    shift = len(text) - len(old.text)
    start = _cut_before(text, prefix)                  # text[:start] is unchanged
    end = _cut_after(text, len(text) - suffix + 1)     # so is text[end:]
    body_end = len(old.ids) - splice.back
    if start == 0:
        first = splice.front
    else:
        first = bisect.bisect_left(old.starts, start, splice.front, body_end)
        if first >= body_end or old.starts[first] != start:
            return None
    if end == len(text):
        last = body_end
    else:
        last = bisect.bisect_left(old.starts, end - shift, first, body_end)
        if last >= body_end or old.starts[last] != end - shift:
            return None
    return old.ids[:first] + splice.encode(text[start:end]) + old.ids[last:]
