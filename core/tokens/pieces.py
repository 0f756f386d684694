"""What each vocabulary entry is made of: its string, the bytes of text it stands for, and
whether it is special — remembered per tokenizer, with a private copy of its Rust backend."""

from __future__ import annotations

import re
import weakref
from functools import lru_cache

from core.tokens.splice import Splice


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
    return getattr(tokenizer, "backend_tokenizer", None)   # None: a tokenizer without one


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


class PieceTable:
    """What the views keep per tokenizer: the memo of id → (vocabulary string, bytes,
    special), which is the per-token work that dominates a long text; a private Rust
    tokenizer; whether edits can be spliced; and per-line token counts."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = weakref.proxy(tokenizer)
        self.byte_level = _is_byte_level(tokenizer)
        self.metaspace = not self.byte_level and _uses_metaspace(tokenizer)
        self.special_ids = set(tokenizer.all_special_ids)
        self.pieces: dict[int, tuple[str, bytes, bool]] = {}
        self.backend = private_backend(tokenizer)
        self.splice = Splice(tokenizer, self.backend)
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


def private_backend(tokenizer):
    """A copy of the Rust tokenizer with no padding or truncation. A call like
    `tokenizer(lines, padding=True, truncation=True)` leaves those settings on the shared
    backend (a training run tokenizes its data on another thread), and they must never
    reach the view. None for tokenizers without a Rust backend."""
    backend = _rust_backend(tokenizer)
    if backend is None or not hasattr(backend, "to_str"):
        return None
    try:
        copy = type(backend).from_str(backend.to_str())
    except Exception:  # an exotic backend: tokenize through the wrapper instead
        return None
    copy.no_padding()
    copy.no_truncation()
    return copy


def piece_table(tokenizer) -> PieceTable:
    table = _tables.get(tokenizer)
    if table is None or len(table.special_ids) != len(tokenizer.all_special_ids):
        table = _tables[tokenizer] = PieceTable(tokenizer)
    return table


def encode(tokenizer, text: str):
    """(ids, a function giving the tokenizer's own character offsets when they are needed)."""
    backend = piece_table(tokenizer).backend
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
