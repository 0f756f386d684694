"""A data path resolved once: what it is (texts or dialogues, which format), what identifies
its bytes, and how many texts a .txt holds — learned in one read of the file, which also
checks it (a regular file, UTF-8, not empty). Everything downstream takes the `DataSource`:
the Train pane's preview, the CLI, the token cache's key, tokenization, evaluation and the
run; none of them opens the file again to ask what it is.

    source = resolve_source("corpus.txt")   # DataSource(kind="texts", format="txt", …)

A source is remembered for the process while its files are unchanged (size, time, inode),
so asking again — the pane on each change of the field, then the run — reads nothing.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from core.base.cancel import check_cancelled
from core.base.errors import UserError, first_line
from core.base.paths import kind_of, looks_like_hub_id

KINDS = ("texts", "dialogues")
SUFFIXES = (".txt", ".jsonl", ".json", ".csv")
READ_BYTES = 1 << 20   # read at a time: the decoded text and its lines stay a few MB
# text mode's line ends, as `open(…, encoding=…)` reads a .txt (and `datasets`' text loader)
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class DataSource:
    spec: str            # as given: a file, a folder of .txt, or a hub dataset's name
    kind: str            # "texts" | "dialogues"
    format: str          # "txt" | "jsonl" (an object per line) | "json" (one array) | "csv" |
                         # "folder" | "hub"
    fingerprint: str     # "sha256:…" of the bytes (a folder's file names too) | "hub:NAME"
    texts: int | None = None   # a .txt's non-blank lines, counted in the same read

    @property
    def path(self) -> Path:
        return Path(self.spec).expanduser()

    @property
    def dialogues(self) -> bool:
        return self.kind == "dialogues"

    @property
    def name(self) -> str:
        """A short name for messages: the file's or folder's own."""
        return source_name(self.spec)


def source_name(spec: str) -> str:
    """A short name for a data source in messages."""
    return os.path.basename(spec.rstrip("/")) or spec


_RESOLVED: dict[tuple, DataSource] = {}


def resolve_source(spec: str) -> DataSource:
    """The source `spec` names, read once (and remembered while its files are unchanged);
    a problem is one line naming the file and line. A device, FIFO or socket is refused
    without being opened."""
    check_source(spec)
    path = Path(spec).expanduser()
    if not path.exists():   # check_source let it through: a hub dataset's name
        return DataSource(spec, "texts", "hub", f"hub:{spec}")
    if path.is_dir():
        files = text_files(path)
        if not files:
            raise UserError(f"{path}: no .txt files in this folder")
    else:
        files = [path]
    key = (spec, tuple((str(f.resolve()), s.st_size, s.st_mtime_ns, s.st_ino)
                       for f in files for s in [f.stat()]))
    if key not in _RESOLVED:
        _RESOLVED[key] = _read(spec, path, files)
    return _RESOLVED[key]


def _read(spec: str, path: Path, files: list[Path]) -> DataSource:
    digest = hashlib.sha256()
    texts, head = 0, ""
    for file in files:
        digest.update(file.name.encode() + b"\0")
        lines, first = _read_file(file, digest)
        texts += lines
        head = head or first
    fingerprint = "sha256:" + digest.hexdigest()[:16]
    if path.is_dir():
        return DataSource(spec, "texts", "folder", fingerprint, len(files))
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "txt":
        return DataSource(spec, "texts", "txt", fingerprint, texts)
    if suffix in ("jsonl", "json"):   # by what it holds: one JSON array, or an object per line
        form = "json" if head.lstrip("\ufeff").lstrip().startswith("[") else "jsonl"
        return DataSource(spec, "dialogues" if _holds_messages(head) else "texts", form, fingerprint)
    if suffix == "csv":
        return DataSource(spec, "texts", "csv", fingerprint)
    raise UserError(f"{path}: unsupported file type '{path.suffix}' "
                    "(use .txt, .jsonl, .json, .csv or a folder of .txt)")


def _read_file(path: Path, digest) -> tuple[int, str]:
    """One read: the bytes hashed, checked as UTF-8 text that is not all whitespace; the
    non-blank lines counted (as text mode splits them) and the first 64 kB kept."""
    decode = codecs.getincrementaldecoder("utf-8")().decode
    lines_before, nonblank, carry, head = 0, 0, "", ""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(READ_BYTES), b""):
            check_cancelled()
            digest.update(chunk)
            if not head and b"\x00" in chunk[:65536]:
                raise UserError(f"{path}: looks like a binary file (NUL bytes), not text")
            try:
                text = decode(chunk)
            except UnicodeDecodeError as exc:
                seen = exc.object   # the chunk, after any bytes held from the one before
                line = lines_before + seen[: exc.start].count(b"\n") + 1
                raise UserError(f"{path}:{line}: not valid UTF-8 (byte 0x{seen[exc.start]:02x}); "
                                "save the file as UTF-8") from None
            lines_before += chunk.count(b"\n")
            head = head or text[:65536]
            # the last piece may go on in the next chunk (a "\r\n" cut in two only adds a
            # blank line, which is not counted)
            pieces = _LINE_END.split(carry + text)
            carry = pieces.pop()
            nonblank += sum(1 for piece in pieces if piece.strip())
    try:
        decode(b"", final=True)
    except UnicodeDecodeError:
        raise UserError(f"{path}:{lines_before + 1}: not valid UTF-8 (the file ends inside a "
                        "character); save the file as UTF-8") from None
    nonblank += 1 if carry.strip() else 0
    if not nonblank:
        raise UserError(f"{path}: the file is empty")
    return nonblank, head


def _holds_messages(head: str) -> bool:
    """A JSON array or JSON-lines file whose first object has `messages`."""
    head = head.lstrip("\ufeff").lstrip()
    if head.startswith("["):
        return '"messages"' in head[:4096]
    try:
        first = json.loads(head.split("\n", 1)[0])
    except json.JSONDecodeError:
        return False
    return isinstance(first, dict) and "messages" in first


def _is_hub_name(spec: str) -> bool:
    return looks_like_hub_id(spec) and not spec.endswith(SUFFIXES)


def check_source(spec: str) -> None:
    """A data source that can be read to its end: a regular file or a folder, or a hub name.
    A device, a FIFO or a socket is refused without opening it: its data might never end
    (/dev/zero) or never come (a FIFO nobody writes to)."""
    path = Path(spec).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if _is_hub_name(spec):
            return
        raise UserError(f"{spec}: no such file or folder") from None
    except OSError as exc:
        raise UserError(f"{spec}: cannot read it ({first_line(exc)})") from None
    except ValueError:   # a NUL character: no file system takes one
        raise UserError(f"{spec!r}: a path cannot hold a NUL character") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    raise UserError(f"{spec}: {kind_of(mode)}, not a file or a folder of texts")


def text_files(folder: Path) -> list[Path]:
    """The folder's .txt files that are regular files (a FIFO named a.txt is not), by name."""
    found = []
    for i, entry in enumerate(os.scandir(folder)):
        if i % 1000 == 0:
            check_cancelled()   # a huge folder can be abandoned while it is listed
        if entry.name.endswith(".txt") and entry.is_file():
            found.append(Path(entry.path))
    return sorted(found)
