"""Tokenize once: a corpus's token ids, kept on disk and read back memory-mapped.

An entry holds, per split, every text's ids followed by one EOS, end to end (`*.ids`:
uint16 when the vocabulary fits, else uint32), and where each text starts (`*.starts`:
int64). Packed blocks of any size and padded rows both come from these as views, so a new
block size or pack/pad needs no new tokenization. An entry is keyed by what changes its
content: the data's bytes, the tokenizer, and the train/test split.

    <user cache>/tokens/<key>/   meta.json  train.ids  train.starts  test.ids  test.starts

An entry is built in a temporary folder and renamed into place when complete; `meta.json`
records every file's size and CRC-32, checked on load, so a half-written or damaged entry is
never used — it is deleted and built again. The least recently used entries go when the
cache outgrows its cap (`RUGPT_TUI_DATA_CACHE_GB`, default 20).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core.base.modes import follow_umask
from core.base.paths import cache_dir

FORMAT = 2
SPLITS = ("train", "test")
DEFAULT_CAP_GB = 20.0


@dataclass
class TokenizedSplit:
    """One split, tokenized: text i is `ids[starts[i]:starts[i + 1]]`, its closing EOS included."""
    ids: np.ndarray        # (N,) uint16 | uint32
    starts: np.ndarray     # (S + 1,) int64
    mask: np.ndarray | None = None   # (N,) uint8: 1 where the loss is taken (dialogues only)

    @property
    def texts(self) -> int:
        return len(self.starts) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)   # (S,) tokens per text, EOS included


@dataclass
class Tokens:
    train: TokenizedSplit
    test: TokenizedSplit
    key: str
    built: bool            # tokenized now (False: read from the cache)
    info: dict | None = None   # what the encoder counted (dialogues: turns, dropped turns)


Progress = Callable[[int, int], None]     # (texts done, texts in all)


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def cap_bytes() -> int:
    try:
        gb = float(os.environ.get("RUGPT_TUI_DATA_CACHE_GB", DEFAULT_CAP_GB))
    except ValueError:
        gb = DEFAULT_CAP_GB
    return int(gb * 1e9)


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            crc = zlib.crc32(chunk, crc)
    return crc


class TokenCache:
    def __init__(self, root: Path | None = None, cap: int | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "tokens"
        self.cap = cap_bytes() if cap is None else cap

    def writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                return True
        except OSError:
            return False

    def load(self, key: str) -> Tokens | None:
        """The entry for `key`, checked whole; None when there is none or it is damaged (then
        it is removed, to be built again)."""
        folder = self.root / key
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise ValueError("another format")
            for name, (size, crc) in meta["files"].items():
                path = folder / name
                if path.stat().st_size != size or _crc(path) != crc:
                    raise ValueError(f"{name} is damaged")
            streams = {split: _open_stream(folder, split, np.dtype(meta["dtype"])) for split in SPLITS}
            info = meta.get("info")
        except FileNotFoundError:
            if folder.exists():   # meta.json missing: never completed
                shutil.rmtree(folder, ignore_errors=True)
            return None
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(folder, ignore_errors=True)
            return None
        os.utime(folder / "meta.json")   # recently used
        return Tokens(streams["train"], streams["test"], key, built=False, info=info)

    @contextmanager
    def building(self, key: str) -> Iterator[None]:
        """Held while `key` is built: another thread or process building the same entry
        waits, then finds it done."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def build(self, key: str, dtype: np.dtype, batches: Iterable[tuple[Encoded, int]], total: int,
              progress: Progress | None = None) -> Tokens:
        """A new entry from `batches`: (encoded items, how many of them are training items —
        the rest are held out). Each item's ids are stored as given, its mask with them when
        the batch has masks, and the batches' counts added up per split."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=self.root))
        info: dict = {}
        try:
            writers = {split: StreamWriter(tmp, split, dtype) for split in SPLITS}
            done = 0
            try:
                for encoded, n_train in batches:
                    for split, part in (("train", slice(None, n_train)), ("test", slice(n_train, None))):
                        writers[split].add(encoded.rows[part],
                                           encoded.masks[part] if encoded.masks is not None else None)
                        for counts in encoded.counts[part] if encoded.counts else ():
                            totals = info.setdefault(split, {})
                            for name, count in counts.items():
                                totals[name] = totals.get(name, 0) + count
                    done += len(encoded.rows)
                    if progress is not None:
                        progress(done, total)
            finally:
                for writer in writers.values():
                    writer.close()
            files = {p.name: [p.stat().st_size, _crc(p)] for p in sorted(tmp.iterdir())}
            meta = {"format": FORMAT, "dtype": dtype.name, "files": files, "created": time.time(),
                    "info": info or None}
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            follow_umask(tmp)
            final = self.root / key
            if final.exists():   # left damaged by someone else, or built meanwhile
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.evict(keep=key)
        streams = {split: _open_stream(final, split, dtype) for split in SPLITS}
        return Tokens(streams["train"], streams["test"], key, built=True, info=info or None)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, bytes, folder) of every complete entry, least recently used first."""
        found = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            meta = folder / "meta.json"
            if folder.name.startswith(".") or not meta.is_file():
                continue
            size = sum(p.stat().st_size for p in folder.iterdir())
            found.append((meta.stat().st_mtime, size, folder))
        return sorted(found)

    def evict(self, keep: str) -> None:
        """Remove the least recently used entries until the cache fits its cap (never `keep`)."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        for _, size, folder in entries:
            if total <= self.cap:
                break
            if folder.name != keep:
                shutil.rmtree(folder, ignore_errors=True)
                total -= size


@dataclass
class Encoded:
    """A batch of items as ids, each complete (its separator or end marker included), with
    a loss mask per item where only some tokens are learned, and per item what to add up
    per split (the entry's `info`)."""
    rows: list[list[int]]
    masks: list[list[int]] | None = None
    counts: list[dict] | None = None


class StreamWriter:
    """One split's `.ids` (and `.mask`) written as batches come, and `.starts` at the end."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype) -> None:
        self.folder, self.split, self.dtype = folder, split, dtype
        self.out = open(folder / f"{split}.ids", "wb")
        self.mask_out: BinaryIO | None = None   # opened by the first batch with masks
        self.starts, self.end = array("q", [0]), 0

    def add(self, rows: list[list[int]], masks: list[list[int]] | None = None) -> None:
        ids = array("I")
        for row in rows:
            ids.extend(row)
            self.end += len(row)
            self.starts.append(self.end)
        if masks is not None:
            if self.mask_out is None:
                self.mask_out = open(self.folder / f"{self.split}.mask", "wb")
            flat = array("B")
            for mask in masks:
                flat.extend(mask)
            self.mask_out.write(flat.tobytes())
        wide = np.frombuffer(ids, np.uint32)
        if self.dtype.itemsize < 4 and len(wide) and int(wide.max()) > np.iinfo(self.dtype).max:
            raise ValueError(f"token id {int(wide.max())} does not fit {self.dtype.name}")
        self.out.write(wide.astype(self.dtype).tobytes())

    def close(self) -> None:
        self.out.close()
        if self.mask_out is not None:
            self.mask_out.close()
        (self.folder / f"{self.split}.starts").write_bytes(np.frombuffer(self.starts, np.int64).tobytes())


def _open_stream(folder: Path, split: str, dtype: np.dtype) -> TokenizedSplit:
    starts = np.fromfile(folder / f"{split}.starts", dtype=np.int64)
    n = int(starts[-1]) if len(starts) else 0
    if len(starts) == 0 or (folder / f"{split}.ids").stat().st_size != n * dtype.itemsize:
        raise ValueError(f"{split}: sizes disagree")
    ids = np.memmap(folder / f"{split}.ids", dtype=dtype, mode="r", shape=(n,)) if n \
        else np.zeros(0, dtype)
    mask_file = folder / f"{split}.mask"
    mask = None
    if mask_file.exists():
        if mask_file.stat().st_size != n:
            raise ValueError(f"{split}: mask and ids disagree")
        mask = np.memmap(mask_file, dtype=np.uint8, mode="r", shape=(n,)) if n else np.zeros(0, np.uint8)
    return TokenizedSplit(ids, starts, mask)


