"""Text as the model sees it: tokens with ids, vocabulary pieces, exact slices and bytes.

Slices follow one rule: a character belongs to the token that completes its UTF-8 bytes, so
the slices of all tokens, joined, give the text back exactly (tokens holding only part of a
character get an empty slice and show their bytes instead).
"""

from __future__ import annotations

import bisect
import re
import weakref
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache

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
    """Columns, not objects: a keystroke in the Tokenize pane rebuilds this view, and a long
    text has hundreds of tokens. `tokens` materialises the per-token records on first use."""
    text: str
    ids: list[int]
    starts: list[int]          # character span of each token: text[starts[i]:ends[i]]
    ends: list[int]
    table: _PieceTable = field(repr=False, compare=False)

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


METASPACE = "\u2581"   # ▁: a space, in SentencePiece-style vocabularies


def _rust_backend(tokenizer):
    return getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)


def _is_byte_level(tokenizer) -> bool:
    backend = _rust_backend(tokenizer)
    pre = backend.pre_tokenizer if backend is not None else None
    return pre is not None and "ByteLevel" in repr(pre)


def _uses_metaspace(tokenizer) -> bool:
    """SentencePiece style: spaces are `▁` in the vocabulary (Llama, Mistral, Gemma)."""
    backend = _rust_backend(tokenizer)
    if backend is None:
        return False
    parts = (backend.normalizer, backend.pre_tokenizer, backend.decoder)
    return any(part is not None and METASPACE in repr(part) for part in parts)


_HEX_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _piece_bytes(tokenizer, raw: str, special: bool, byte_level: bool, metaspace: bool) -> bytes:
    if special:
        return raw.encode("utf-8")
    if byte_level:
        decoder = _byte_decoder()
        if all(ch in decoder for ch in raw):
            return bytes(decoder[ch] for ch in raw)
    hex_byte = _HEX_BYTE.match(raw)  # SentencePiece byte fallback
    if hex_byte:
        return bytes([int(hex_byte.group(1), 16)])
    if metaspace:   # the piece itself: the decoder would drop a leading space
        return raw.replace(METASPACE, " ").encode("utf-8")
    return tokenizer.convert_tokens_to_string([raw]).encode("utf-8")


class _PieceTable:
    """What the views keep per tokenizer: the memo of id → (vocabulary string, bytes,
    special), which is the per-token work that dominates a long text; a private Rust
    tokenizer; whether edits can be spliced; and per-line token counts."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = weakref.proxy(tokenizer)
        self.byte_level = _is_byte_level(tokenizer)
        self.metaspace = not self.byte_level and _uses_metaspace(tokenizer)
        self.special_ids = set(tokenizer.all_special_ids)
        self.pieces: dict[int, tuple[str, bytes, bool]] = {}
        self.backend = _private_backend(tokenizer)
        self.splice = _Splice(tokenizer, self.backend)
        self.line_counts: dict[str, int] = {}  # line → tokens, for the padded batch view

    def get(self, token_id: int, raw: str | None = None) -> tuple[str, bytes, bool]:
        piece = self.pieces.get(token_id)
        if piece is None:
            if raw is None:
                raw = self.tokenizer.convert_ids_to_tokens(token_id)
            special = token_id in self.special_ids
            data = _piece_bytes(self.tokenizer, raw, special, self.byte_level, self.metaspace)
            piece = (raw, data, special)
            self.pieces[token_id] = piece
        return piece


_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _private_backend(tokenizer):
    """A copy of the Rust tokenizer with no padding or truncation. A call like
    `tokenizer(lines, padding=True, truncation=True)` leaves those settings on the shared
    backend (a training run tokenizes its data on another thread), and they must never
    reach the view. None for tokenizers without a Rust backend."""
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        return None
    try:
        copy = type(backend).from_str(backend.to_str())
    except Exception:  # an exotic backend: tokenize through the wrapper instead
        return None
    copy.no_padding()
    copy.no_truncation()
    return copy


def _piece_table(tokenizer) -> _PieceTable:
    table = _tables.get(tokenizer)
    if table is None or len(table.special_ids) != len(tokenizer.all_special_ids):
        table = _tables[tokenizer] = _PieceTable(tokenizer)
    return table


def _encode(tokenizer, text: str):
    """(ids, a function giving the tokenizer's own character offsets when they are needed)."""
    backend = _piece_table(tokenizer).backend
    if backend is not None:
        # The Rust tokenizer directly: what `tokenizer(text)` runs, without the wrapping.
        # Offsets are rarely needed and cost as much as the ids, so they come on demand.
        if hasattr(backend, "encode_batch_fast"):
            ids = backend.encode_batch_fast([text], add_special_tokens=True)[0].ids
        else:
            ids = backend.encode(text, add_special_tokens=True).ids
        return ids, lambda: backend.encode(text, add_special_tokens=True).offsets
    encoding = tokenizer(text, return_offsets_mapping=True)
    return list(encoding["input_ids"]), lambda: encoding["offset_mapping"]


def tokenize_view(tokenizer, text: str) -> TokenView:
    """The view of `text`; `ids` are exactly what `tokenizer(text)` gives."""
    ids, offsets = _encode(tokenizer, text)
    return _view_of(tokenizer, text, ids, offsets)


def tokenize_edit(tokenizer, old: TokenView | None, text: str) -> TokenView:
    """The same view as `tokenize_view(tokenizer, text)`, when `old` is the view of a text
    that differs from `text` by an edit: only the words around the edit are tokenized again.
    (For tokenizers where that is not provably exact, the whole text is tokenized.)"""
    ids = _spliced_ids(tokenizer, old, text) if old is not None else None
    if ids is None:
        return tokenize_view(tokenizer, text)
    return _view_of(tokenizer, text, ids, lambda: _encode(tokenizer, text)[1]())


def _view_of(tokenizer, text: str, ids: list[int], offsets) -> TokenView:
    table = _piece_table(tokenizer)
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


class _Splice:
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


def _spliced_ids(tokenizer, old: TokenView, text: str) -> list[int] | None:
    table = _piece_table(tokenizer)
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


_WORD = re.compile(r"\w+(?:[-’']\w+)*")


def word_counts(view: TokenView) -> tuple[list[str], list[int], list[int]]:
    """(words, their start offsets, how many tokens each takes) — the notebook's Task 0.
    Words inside special tokens (`</s>`) are skipped; a token holding part of a character
    counts for the word it is in."""
    found = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(view.text)]
    if not found or not view.ids:
        return [], [], []
    words, w_starts, w_ends = zip(*found)
    # A token with an empty slice holds part of the character at its position: treat it as
    # covering that character. Both bounds then never decrease along the tokens.
    lo = np.asarray(view.starts)
    hi = np.maximum(np.asarray(view.ends), lo + 1)
    first = np.searchsorted(hi, w_starts, side="right")   # first token reaching past the word start
    last = np.searchsorted(lo, w_ends, side="left")       # first token starting at/after the word end
    counts = last - first
    if not view.table.special_ids.isdisjoint(view.ids):
        special = np.fromiter((t in view.table.special_ids for t in view.ids), dtype=bool,
                              count=view.count)
        specials_before = np.concatenate(([0], np.cumsum(special)))
        keep = (specials_before[last] - specials_before[first]) == 0
        idx = np.flatnonzero(keep).tolist()
        return [words[i] for i in idx], [w_starts[i] for i in idx], counts[keep].tolist()
    return list(words), list(w_starts), counts.tolist()


def word_stats(view: TokenView) -> list[WordStat]:
    return [WordStat(w, s, n) for w, s, n in zip(*word_counts(view))]


def word_spread(view: TokenView) -> dict[str, tuple[int, int]]:
    """Each distinct word, in order of first appearance, with the fewest and the most tokens
    it takes: the same word splits differently at the start of a line and after a space."""
    words, _, counts = word_counts(view)
    spread: dict[str, tuple[int, int]] = {}
    for word, n in zip(words, counts):
        seen = spread.get(word)
        if seen is None:
            spread[word] = (n, n)
        elif n < seen[0] or n > seen[1]:
            spread[word] = (min(n, seen[0]), max(n, seen[1]))
    return spread


def most_split(spread: dict[str, tuple[int, int]], n: int = 10) -> list[tuple[str, int]]:
    """(word, tokens) for the words that split the most, where they split the most."""
    top = sorted(spread.items(), key=lambda item: -item[1][1])[:n]  # stable: ties by position
    return [(word, most) for word, (_, most) in top]


def single_token_words(spread: dict[str, tuple[int, int]]) -> list[str]:
    """Words that are a single token somewhere in the text (often only after a space)."""
    return [word for word, (fewest, _) in spread.items() if fewest == 1]


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


def line_token_counts(tokenizer, lines: list[str]) -> list[int]:
    """How many tokens `tokenizer(line)` gives for each line — the rows of the padded batch
    `tensor_view` builds. Remembered per line, so while one line of a long text is being
    edited only that line is tokenized again."""
    table = _piece_table(tokenizer)
    if len(table.line_counts) > 20_000:
        table.line_counts = {}
    memo = table.line_counts
    missing = [line for line in dict.fromkeys(lines) if line not in memo]
    if missing:
        backend = table.backend
        if backend is not None:
            rows = [enc.ids for enc in backend.encode_batch(missing, add_special_tokens=True)]
        else:
            rows = tokenizer(missing)["input_ids"]
        for line, ids in zip(missing, rows):
            memo[line] = len(ids)
    return [memo[line] for line in lines]


def pad_mask(length: int, width: int, left: bool) -> list[int]:
    """One row of the attention mask of a batch padded to `width`."""
    real, pad = [1] * length, [0] * (width - length)
    return pad + real if left else real + pad
