"""Text as the model sees it: tokens with ids, vocabulary pieces, exact slices and bytes.

Slices follow one rule: a character belongs to the token that completes its UTF-8 bytes, so
the slices of all tokens, joined, give the text back exactly (tokens holding only part of a
character get an empty slice and show their bytes instead).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache


@dataclass(frozen=True)
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


def _piece_bytes(tokenizer, raw: str, special: bool) -> bytes:
    if special:
        return raw.encode("utf-8")
    if _is_byte_level(tokenizer):
        decoder = _byte_decoder()
        if all(ch in decoder for ch in raw):
            return bytes(decoder[ch] for ch in raw)
    hex_byte = _HEX_BYTE.match(raw)  # SentencePiece byte fallback
    if hex_byte:
        return bytes([int(hex_byte.group(1), 16)])
    return tokenizer.convert_tokens_to_string([raw]).encode("utf-8")


def tokenize_view(tokenizer, text: str) -> TokenView:
    """The view of `text`; `ids` are exactly what `tokenizer(text)` gives."""
    encoding = tokenizer(text, return_offsets_mapping=True)
    ids: list[int] = list(encoding["input_ids"])
    offsets = encoding["offset_mapping"]
    raws = tokenizer.convert_ids_to_tokens(ids)
    special_ids = set(tokenizer.all_special_ids)
    pieces_bytes = [_piece_bytes(tokenizer, raw, tid in special_ids) for tid, raw in zip(ids, raws)]

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
    # completed[b] = how many characters end at or before byte offset b
    ends = []
    pos = 0
    for ch in text:
        pos += len(ch.encode("utf-8"))
        ends.append(pos)
    spans = []
    char_i = 0
    byte_pos = 0
    for piece in pieces:
        start = char_i
        byte_pos += len(piece)
        while char_i < len(ends) and ends[char_i] <= byte_pos:
            char_i += 1
        spans.append((start, char_i))
    return spans


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
    stats = []
    tokens = view.tokens
    first = 0  # tokens before this one end before the current word
    for match in _WORD.finditer(view.text):
        start, end = match.span()
        while first < len(tokens) and max(tokens[first].end, tokens[first].start + 1) <= start:
            first += 1
        touching = []
        j = first
        while j < len(tokens) and tokens[j].start < end:
            tok = tokens[j]
            if tok.end > start or (tok.start == tok.end and tok.start >= start):
                touching.append(tok)
            j += 1
        if any(tok.special for tok in touching):
            continue
        stats.append(WordStat(match.group(), start, len(touching)))
    return stats


def most_split(view: TokenView, n: int = 10) -> list[WordStat]:
    unique: dict[str, WordStat] = {}
    for w in view.words():
        unique.setdefault(w.word, w)
    return sorted(unique.values(), key=lambda w: (-w.tokens, w.start))[:n]


def single_token_words(view: TokenView) -> list[str]:
    seen = []
    for w in view.words():
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
