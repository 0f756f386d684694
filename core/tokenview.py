"""Text as the model sees it: tokens with ids, vocabulary pieces, exact slices and bytes.

Slices follow one rule: a character belongs to the token that completes its UTF-8 bytes, so
the slices of all tokens, joined, give the text back exactly (tokens holding only part of a
character get an empty slice and show their bytes instead).
"""

from __future__ import annotations

import bisect
import re
import weakref
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np


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


@dataclass(frozen=True)
class WordStat:
    word: str
    start: int
    tokens: int


@dataclass
class TokenView:
    text: str
    ids: list[int]
    tokens: list[TokenPiece]

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def chars_per_token(self) -> float:
        return len(self.text) / self.count if self.count else 0.0

    def words(self) -> list[WordStat]:
        return word_stats(self)

    def as_json(self) -> dict:
        return {"ids": self.ids, "count": self.count,
                "chars_per_token": round(self.chars_per_token, 3),
                "tokens": [t.as_dict() for t in self.tokens]}


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Byte-level BPE's printable alphabet, inverted: vocabulary character → byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        return False
    pre = backend.pre_tokenizer
    return pre is not None and "ByteLevel" in repr(pre)


_HEX_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _piece_bytes(tokenizer, raw: str, special: bool, byte_level: bool) -> bytes:
    if special:
        return raw.encode("utf-8")
    if byte_level:
        decoder = _byte_decoder()
        if all(ch in decoder for ch in raw):
            return bytes(decoder[ch] for ch in raw)
    hex_byte = _HEX_BYTE.match(raw)  # SentencePiece byte fallback
    if hex_byte:
        return bytes([int(hex_byte.group(1), 16)])
    return tokenizer.convert_tokens_to_string([raw]).encode("utf-8")


class _PieceTable:
    """Per-tokenizer memo of id → (vocabulary string, bytes, special): the vocabulary never
    changes under a view, and this is the per-token work that dominates a long text."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = weakref.proxy(tokenizer)
        self.byte_level = _is_byte_level(tokenizer)
        self.special_ids = set(tokenizer.all_special_ids)
        self.pieces: dict[int, tuple[str, bytes, bool]] = {}

    def get(self, token_id: int, raw: str | None = None) -> tuple[str, bytes, bool]:
        piece = self.pieces.get(token_id)
        if piece is None:
            if raw is None:
                raw = self.tokenizer.convert_ids_to_tokens(token_id)
            special = token_id in self.special_ids
            piece = (raw, _piece_bytes(self.tokenizer, raw, special, self.byte_level), special)
            self.pieces[token_id] = piece
        return piece


_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _piece_table(tokenizer) -> _PieceTable:
    table = _tables.get(tokenizer)
    if table is None or len(table.special_ids) != len(tokenizer.all_special_ids):
        table = _tables[tokenizer] = _PieceTable(tokenizer)
    return table


def _encode(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "encode"):
        # The Rust tokenizer directly: what `tokenizer(text)` runs, without the wrapping.
        enc = backend.encode(text, add_special_tokens=True)
        return list(enc.ids), list(enc.offsets)
    encoding = tokenizer(text, return_offsets_mapping=True)
    return list(encoding["input_ids"]), list(encoding["offset_mapping"])


def tokenize_view(tokenizer, text: str) -> TokenView:
    """The view of `text`; `ids` are exactly what `tokenizer(text)` gives."""
    ids, offsets = _encode(tokenizer, text)
    table = _piece_table(tokenizer)
    pieces = [table.get(tid) for tid in ids]
    raws = [p[0] for p in pieces]
    pieces_bytes = [p[1] for p in pieces]
    special_ids = table.special_ids

    if b"".join(pieces_bytes) == text.encode("utf-8"):
        spans = _spans_from_bytes(text, pieces_bytes)
    else:  # normalising tokenizers: fall back to the tokenizer's own offsets, made contiguous
        spans = _spans_from_offsets(text, offsets)

    tokens = [
        TokenPiece(id=tid, raw=raw, text=text[s:e], bytes=b.hex(), start=s, end=e,
                   special=tid in special_ids)
        for tid, raw, b, (s, e) in zip(ids, raws, pieces_bytes, spans)
    ]
    return TokenView(text=text, ids=ids, tokens=tokens)


def _spans_from_bytes(text: str, pieces: list[bytes]) -> list[tuple[int, int]]:
    """Character span of each token: a character goes to the token whose bytes complete it."""
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    utf8_len = 1 + (codepoints >= 0x80) + (codepoints >= 0x800) + (codepoints >= 0x10000)
    char_ends = np.cumsum(utf8_len)                      # byte offset where each character ends
    token_ends = np.cumsum([len(p) for p in pieces])     # byte offset where each token ends
    # characters fully inside the first b bytes = how many character ends are ≤ b
    done = np.searchsorted(char_ends, token_ends, side="right").tolist()
    starts = [0] + done[:-1]
    return list(zip(starts, done))


def _spans_from_offsets(text: str, offsets) -> list[tuple[int, int]]:
    spans = []
    prev = 0
    for i, (_, end) in enumerate(offsets):
        end = max(prev, min(end, len(text)))
        if i == len(offsets) - 1:
            end = len(text)
        spans.append((prev, end))
        prev = end
    return spans


_WORD = re.compile(r"\w+(?:[-’']\w+)*")


def word_stats(view: TokenView) -> list[WordStat]:
    """How many tokens each word takes (the notebook's Task 0). Words inside special tokens
    (`</s>`) are skipped; a token holding part of a character counts for the word it is in."""
    tokens = view.tokens
    # A token with an empty slice holds part of the character at its position: treat it as
    # covering that character. Both bounds then never decrease along the tokens.
    lo_bounds = [t.start for t in tokens]
    hi_bounds = [max(t.end, t.start + 1) for t in tokens]
    specials_before = [0]
    for t in tokens:
        specials_before.append(specials_before[-1] + t.special)
    stats = []
    for match in _WORD.finditer(view.text):
        start, end = match.span()
        first = bisect.bisect_right(hi_bounds, start)   # first token reaching past the word start
        last = bisect.bisect_left(lo_bounds, end)       # first token starting at/after the word end
        if specials_before[last] - specials_before[first]:
            continue
        stats.append(WordStat(match.group(), start, last - first))
    return stats


def most_split(words: list[WordStat], n: int = 10) -> list[WordStat]:
    """The words that take the most tokens, each word once."""
    unique: dict[str, WordStat] = {}
    for w in words:
        unique.setdefault(w.word, w)
    return sorted(unique.values(), key=lambda w: (-w.tokens, w.start))[:n]


def single_token_words(words: list[WordStat]) -> list[str]:
    seen = []
    for w in words:
        if w.tokens == 1 and w.word not in seen:
            seen.append(w.word)
    return seen


@dataclass
class TensorView:
    """What `tokenizer(..., return_tensors="pt")` hands the model."""
    input_ids: list[list[int]]
    attention_mask: list[list[int]]

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.input_ids), len(self.input_ids[0]) if self.input_ids else 0)


def tensor_view(tokenizer, lines: list[str]) -> TensorView:
    """One line → (1, T); several lines of different lengths → a padded (B, T) batch + mask."""
    batch = tokenizer(lines, return_tensors="pt", padding=True)
    return TensorView(batch["input_ids"].tolist(), batch["attention_mask"].tolist())
