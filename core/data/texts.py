"""Training texts in, through `datasets`: .txt (a sample per line), .jsonl/.json (an object per
line with `input` or `text`, the notebook's format), .csv (a `text` or `input` column), a folder
of .txt files (a sample per file), or a hub dataset name.

Every local file is checked before loading, and the first problem is reported as
`file:line: what is wrong` — empty files, bad JSON, missing fields, non-UTF-8 bytes, binaries.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.base.cancel import check_cancelled
from core.base.errors import UserError, first_line
from core.base.paths import looks_like_hub_id

if TYPE_CHECKING:   # numpy loads when data does: the app's first frame never waits for it
    import numpy as np

TEXT_FIELDS = ("text", "input")
SUFFIXES = (".txt", ".jsonl", ".json", ".csv")


@dataclass
class DataStats:
    samples: int
    tokens: int
    longest: int           # tokens in the longest sample
    truncated: int         # samples longer than the block size (cut in --pad mode)
    block_size: int

    def as_dict(self) -> dict:
        return asdict(self)


CHUNK = 1 << 24


def check_text_file(path: Path) -> None:
    """A UTF-8 text file with something besides whitespace, read in chunks (a corpus may be
    gigabytes)."""
    decode = codecs.getincrementaldecoder("utf-8")().decode
    lines_before, nonblank, first = 0, False, True
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            check_cancelled()
            if first:
                if b"\x00" in chunk[:65536]:
                    raise UserError(f"{path}: looks like a binary file (NUL bytes), not text")
                first = False
            try:
                decode(chunk)
            except UnicodeDecodeError as exc:
                seen = exc.object   # the chunk, after any bytes held from the one before
                line = lines_before + seen[: exc.start].count(b"\n") + 1
                raise UserError(f"{path}:{line}: not valid UTF-8 (byte 0x{seen[exc.start]:02x}); "
                                "save the file as UTF-8") from None
            lines_before += chunk.count(b"\n")
            nonblank = nonblank or bool(chunk.strip())
    if not nonblank:
        raise UserError(f"{path}: the file is empty")
    try:
        decode(b"", final=True)
    except UnicodeDecodeError:
        raise UserError(f"{path}:{lines_before + 1}: not valid UTF-8 (the file ends inside a "
                        "character); save the file as UTF-8") from None


def open_text(path: Path):
    """Lines of a file `check_text_file` passed (a BOM dropped)."""
    return open(path, encoding="utf-8-sig", newline="")


def _field_of(obj, path: Path, line: int) -> str:
    if not isinstance(obj, dict):
        raise UserError(f"{path}:{line}: expected a JSON object with an 'input' or 'text' field")
    for name in TEXT_FIELDS:
        if name in obj:
            if not isinstance(obj[name], str):
                raise UserError(f"{path}:{line}: field '{name}' must be a string")
            return name
    raise UserError(f"{path}:{line}: no 'input' or 'text' field (keys: {', '.join(map(str, obj)) or 'none'})")


def json_records(path: Path) -> Iterator[tuple[int, object]]:
    """The records of a JSON-lines file, or of a JSON array (a file whose first character is
    `[`), with the line each starts on (an array's items: line 1); bad JSON is one line
    naming file:line. The file must have passed `check_text_file`."""
    with open_text(path) as f:
        array = f.read(4096).lstrip().startswith("[")
    with open_text(path) as f:
        if array:
            try:
                items = json.load(f)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{exc.lineno}: bad JSON: {exc.msg}") from None
            if not isinstance(items, list):
                raise UserError(f"{path}: expected a JSON array or one object per line")
            for item in items:
                yield 1, item
            return
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: bad JSON: {exc.msg} (column {exc.colno})") from None


def _check_json(path: Path) -> str:
    """Validate a JSON-lines file (or a JSON array); returns the text field name."""
    check_text_file(path)
    field = None
    for number, obj in json_records(path):
        name = _field_of(obj, path, number)
        if field is None:
            field = name
        elif name != field and field not in obj:
            where = f"{path}:{number}" if number > 1 else str(path)
            raise UserError(f"{where}: field '{name}' but earlier records use '{field}'")
    if field is None:
        raise UserError(f"{path}: no JSON records")
    return field


def _check_csv(path: Path) -> str:
    check_text_file(path)
    with open_text(path) as f:
        return _check_csv_rows(path, csv.reader(f))


def _check_csv_rows(path: Path, reader) -> str:
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"{path}: the file is empty") from None
    field = next((name for name in TEXT_FIELDS if name in header), None)
    if field is None:
        raise UserError(f"{path}:1: no 'text' or 'input' column (columns: {', '.join(header)})")
    rows = 0
    for number, row in enumerate(reader, 2):
        if not row:
            continue
        if len(row) != len(header):
            raise UserError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}")
        rows += 1
    if not rows:
        raise UserError(f"{path}: a header but no rows")
    return field


def _is_hub_name(spec: str) -> bool:
    return looks_like_hub_id(spec) and not spec.endswith(SUFFIXES)


# What a path that is neither a file nor a folder is, for the message that refuses it.
SPECIAL_FILES = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


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
    kind = next((name for test, name in SPECIAL_FILES if test(mode)), "not a regular file")
    raise UserError(f"{spec}: {kind}, not a file or a folder of texts")


def text_files(folder: Path) -> list[Path]:
    """The folder's .txt files that are regular files (a FIFO named a.txt is not), by name."""
    found = []
    for i, entry in enumerate(os.scandir(folder)):
        if i % 1000 == 0:
            check_cancelled()   # a huge folder can be abandoned while it is listed
        if entry.name.endswith(".txt") and entry.is_file():
            found.append(Path(entry.path))
    return sorted(found)


def load_texts(spec: str, cache_dir: str | None = None):
    """A `datasets.Dataset` with one column, `text`, from any supported source. Its Arrow
    files go to `cache_dir` (default: datasets' own cache)."""
    import datasets

    check_source(spec)
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    path = Path(spec).expanduser()
    if path.is_dir():
        files = text_files(path)
        if not files:
            raise UserError(f"{path}: no .txt files in this folder")
        for f in files:
            check_text_file(f)
        ds = datasets.load_dataset("text", data_files=[str(f) for f in files],
                                   sample_by="document", split="train", cache_dir=cache_dir)
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".txt":
            check_text_file(path)
            ds = datasets.load_dataset("text", data_files=str(path), split="train", cache_dir=cache_dir)
        elif suffix in (".jsonl", ".json"):
            field = _check_json(path)
            ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache_dir)
            ds = ds.select_columns([field]).rename_column(field, "text") if field != "text" \
                else ds.select_columns(["text"])
        elif suffix == ".csv":
            field = _check_csv(path)
            ds = datasets.load_dataset("csv", data_files=str(path), split="train",
                                       keep_default_na=False, cache_dir=cache_dir)
            ds = ds.select_columns([field])
            if field != "text":
                ds = ds.rename_column(field, "text")
        else:
            raise UserError(f"{path}: unsupported file type '{suffix}' "
                            "(use .txt, .jsonl, .json, .csv or a folder of .txt)")
    elif _is_hub_name(spec):
        try:
            ds = datasets.load_dataset(spec, split="train", cache_dir=cache_dir)
        except Exception as exc:
            raise UserError(f"dataset {spec!r}: cannot load it ({first_line(exc, 200)})") from None
        column = "text" if "text" in ds.column_names else next(
            (c for c in ds.column_names if ds.features[c].dtype == "string"), None)
        if column is None:
            raise UserError(f"dataset {spec!r}: no text column (columns: {', '.join(ds.column_names)})")
        ds = ds.select_columns([column])
        if column != "text":
            ds = ds.rename_column(column, "text")
    else:
        raise UserError(f"{spec}: no such file or folder")

    kept = _nonblank(ds)
    if not kept.all():   # most corpora have no blank lines: then no index mapping at all
        import numpy as np

        ds = ds.select(np.flatnonzero(kept))
    if len(ds) == 0:
        raise UserError(f"{spec}: no non-empty samples")
    return ds


class TextLines:
    """A .txt file's texts — its non-blank lines, the rows `load_texts` gives for it — read
    straight from the file a batch at a time when tokenizing: no Arrow copy of the corpus,
    and memory bounded by a batch however big the file."""

    def __init__(self, path: Path) -> None:
        self.path, self._count = path, None

    def _texts(self):
        # text mode: "\r\n" and "\r" end lines too, as in `datasets`' text loader
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f):
                if n % 65536 == 0:
                    check_cancelled()
                text = line.rstrip("\n")
                if text.strip():
                    yield text

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self._texts())
        return self._count

    def iter(self, batch_size: int):
        batch = []
        for text in self._texts():
            batch.append(text)
            if len(batch) == batch_size:
                yield {"text": batch}
                batch = []
        if batch:
            yield {"text": batch}


def texts_to_tokenize(spec: str, cache_dir: str | None = None):
    """The texts of `spec` for tokenizing: a .txt file line by line (`TextLines`); anything
    else through `datasets` (`load_texts`)."""
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".txt":
        check_source(spec)
        check_text_file(path)
        return TextLines(path)
    return load_texts(spec, cache_dir)


def _nonblank(ds) -> np.ndarray:
    """(N,) bool: which texts have something besides whitespace — computed in Arrow, in C++."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = ds.data.column("text")
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())   # a csv column of numbers
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.fill_null(pc.not_equal(trimmed, ""), False).to_numpy(zero_copy_only=False)


def split_mask(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """(N,) bool, True for the held-out samples: a seeded share, at least one on each side."""
    if not 0 < test_fraction < 1:
        raise UserError(f"--test-split {test_fraction}: must be between 0 and 1")
    if n < 2:
        raise UserError("need at least 2 samples to hold some out for testing (or pass --test)")
    n_test = min(n - 1, max(1, round(n * test_fraction)))
    import numpy as np

    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    return mask


_FINGERPRINTS: dict[tuple, str] = {}


def fingerprint(spec: str) -> str:
    """A hash of the data a run read — the file, or every .txt of a folder, names and bytes —
    so a run can be matched with its data later, and its tokens found in the cache. A hub
    dataset is named, not hashed. Remembered for the process while the files are unchanged."""
    check_source(spec)   # never opens a device or a FIFO
    path = Path(spec).expanduser()
    if not path.exists():
        return f"hub:{spec}"
    files = text_files(path) if path.is_dir() else [path]
    key = tuple((str(f.resolve()), s.st_size, s.st_mtime_ns, s.st_ino) for f in files
                for s in [f.stat()])
    if key not in _FINGERPRINTS:
        h = hashlib.sha256()
        for file in files:
            h.update(file.name.encode() + b"\0")
            with open(file, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    check_cancelled()
                    h.update(chunk)
        _FINGERPRINTS[key] = "sha256:" + h.hexdigest()[:16]
    return _FINGERPRINTS[key]


def dialogue_line(d: dict) -> str:
    """What training on dialogues learns, in one line."""
    line = (f"dialogues: {d['conversations']:,} conversations, {d['turns']:,} replies; "
            f"{d['trained_tokens']:,} trained tokens ({100 * d['trained_share']:.0f} % of all)")
    return line + (f"; {d['dropped_turns']:,} oldest turns left out to fit the block"
                   if d["dropped_turns"] else "")


def source_name(spec: str) -> str:
    """A short name for a data source in messages."""
    return os.path.basename(spec.rstrip("/")) or spec
