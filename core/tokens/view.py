"""Text as the model sees it: tokens with ids, vocabulary pieces, exact slices and bytes.

Slices follow one rule: a character belongs to the token that completes its UTF-8 bytes, so
the slices of all tokens, joined, give the text back exactly (tokens holding only part of a
character get an empty slice and show their bytes instead).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

from core.tokens.pieces import PieceTable, encode, piece_table
from core.tokens.splice import spliced_ids


@dataclass(slots=True)
class TokenPiece:
    id: int
    raw: str      # the vocabulary string, e.g. "ÐºÐ»Ð°"
    text: str     # exactly text[start:end]
    bytes: str    # hex of the bytes the token holds
    start: int
    end: int
    special: bool = False

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("special")
        return d


@dataclass
class TokenView:
    """Columns, not objects: a keystroke in the Tokenize pane rebuilds this view, and a long
    text has hundreds of tokens. `tokens` materialises the per-token records on first use."""
    text: str
    ids: list[int]
    starts: list[int]          # character span of each token: text[starts[i]:ends[i]]
    ends: list[int]
    table: PieceTable = field(repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def chars_per_token(self) -> float:
        return len(self.text) / self.count if self.count else 0.0

    def piece(self, i: int) -> tuple[str, bytes, bool]:
        """(vocabulary string, bytes, special) of token i."""
        return self.table.get(self.ids[i])

    @cached_property
    def tokens(self) -> list[TokenPiece]:
        text, get = self.text, self.table.get
        out = []
        for tid, s, e in zip(self.ids, self.starts, self.ends):
            raw, data, special = get(tid)
            out.append(TokenPiece(id=tid, raw=raw, text=text[s:e], bytes=data.hex(),
                                  start=s, end=e, special=special))
        return out

    def as_json(self) -> dict:
        return {"ids": self.ids, "count": self.count,
                "chars_per_token": round(self.chars_per_token, 3),
                "tokens": [t.as_dict() for t in self.tokens]}


def tokenize_view(tokenizer, text: str) -> TokenView:
    """The view of `text`; `ids` are exactly what `tokenizer(text)` gives."""
    ids, offsets = encode(tokenizer, text)
    return _view_of(tokenizer, text, ids, offsets)


def tokenize_edit(tokenizer, old: TokenView | None, text: str) -> TokenView:
    """The same view as `tokenize_view(tokenizer, text)`, when `old` is the view of a text
    that differs from `text` by an edit: only the words around the edit are tokenized again.
    (For tokenizers where that is not provably exact, the whole text is tokenized.)"""
    ids = spliced_ids(piece_table(tokenizer), old, text) if old is not None else None
    if ids is None:
        return tokenize_view(tokenizer, text)
    return _view_of(tokenizer, text, ids, lambda: encode(tokenizer, text)[1]())


def _view_of(tokenizer, text: str, ids: list[int], offsets) -> TokenView:
    table = piece_table(tokenizer)
    get = table.get
    pieces_bytes = [get(tid)[1] for tid in ids]
    if b"".join(pieces_bytes) == text.encode("utf-8"):
        starts, ends = _spans_from_bytes(text, pieces_bytes)
    else:  # normalising tokenizers: fall back to the tokenizer's own offsets, made contiguous
        starts, ends = _spans_from_offsets(text, offsets())
    return TokenView(text=text, ids=ids, starts=starts, ends=ends, table=table)


def _spans_from_bytes(text: str, pieces: list[bytes]) -> tuple[list[int], list[int]]:
    """Character span of each token: a character goes to the token whose bytes complete it."""
    if not pieces:
        return [], []
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    utf8_len = 1 + (codepoints >= 0x80) + (codepoints >= 0x800) + (codepoints >= 0x10000)
    char_ends = np.cumsum(utf8_len)                      # byte offset where each character ends
    token_ends = np.cumsum([len(p) for p in pieces])     # byte offset where each token ends
    # characters fully inside the first b bytes = how many character ends are ≤ b
    done = np.searchsorted(char_ends, token_ends, side="right")
    return [0] + done[:-1].tolist(), done.tolist()


def _spans_from_offsets(text: str, offsets) -> tuple[list[int], list[int]]:
    """Character spans from the tokenizer's own offsets, for tokenizers whose pieces do not
    spell the text (a normalizer adds `▁` or changes characters).

    A character belongs to the last token whose offsets cover it: a `▁` the normalizer put
    before a word shares that word's first character and so owns nothing; the byte-fallback
    pieces of one character all cover it, and the last one completes it. A character no
    token covers goes to the token after it (at the end, to the last token that covers
    something), and ownership never goes back, so the slices join to the text."""
    n, count = len(text), len(offsets)
    if count == 0:
        return [], []
    owner = np.full(n, -1, dtype=np.int64)
    for i, (start, end) in enumerate(offsets):
        start, end = min(max(start, 0), n), min(max(end, 0), n)
        if end > start:
            owner[start:end] = i
    covered = np.flatnonzero(owner >= 0)
    if covered.size == 0:
        return [0] * count, [0] * (count - 1) + [n]
    # uncovered characters: the owner of the next covered one (past the last: the last owner)
    nxt = np.searchsorted(covered, np.arange(n), side="left")
    filled = np.where(nxt < covered.size, owner[covered[np.minimum(nxt, covered.size - 1)]],
                      owner[covered[-1]])
    owner = np.maximum.accumulate(filled)
    ends = np.searchsorted(owner, np.arange(count), side="right")
    ends[-1] = n
    return [0] + ends[:-1].tolist(), ends.tolist()
