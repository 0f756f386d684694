"""Training texts in: .txt (a sample per line, read straight from the file), .jsonl/.json (an
object per line with `input` or `text`, the notebook's format), .csv (a `text` or `input`
column), a folder of .txt files (a sample per file), or a hub dataset name — the last four
through `datasets`.

Every source comes resolved (core.data.source: one read checks each file is UTF-8 text, not
empty, not binary); records and columns are checked as they are read, and the first problem
is reported as `file:line: what is wrong` — bad JSON, missing fields, ragged rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.base.cancel import check_cancelled
from core.base.errors import UserError, first_line
from core.data.source import DataSource, resolve_source, text_files

if TYPE_CHECKING:   # numpy loads when data does: the app's first frame never waits for it
    import numpy as np

TEXT_FIELDS = ("text", "input")


@dataclass
class DataStats:
    samples: int
    tokens: int
    longest: int           # tokens in the longest sample
    truncated: int         # samples longer than the block size (cut in --pad mode)
    block_size: int

    def as_dict(self) -> dict:
        return asdict(self)


def open_text(path: Path):
    """Lines of a resolved file (a BOM dropped)."""
    return open(path, encoding="utf-8-sig", newline="")


def _field_of(obj: object, path: Path, line: int) -> str:
    if not isinstance(obj, dict):
        raise UserError(f"{path}:{line}: expected a JSON object with an 'input' or 'text' field")
    for name in TEXT_FIELDS:
        if name in obj:
            if not isinstance(obj[name], str):
                raise UserError(f"{path}:{line}: field '{name}' must be a string")
            return name
    raise UserError(f"{path}:{line}: no 'input' or 'text' field (keys: {', '.join(map(str, obj)) or 'none'})")


def json_records(source: DataSource) -> Iterator[tuple[int, object]]:
    """The records of a JSON-lines file, or of a JSON array (format "json"), with the line
    each starts on (an array's items: line 1); bad JSON is one line naming file:line."""
    path, array = source.path, source.format == "json"
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


def _check_json(source: DataSource) -> str:
    """Validate a JSON-lines file (or a JSON array); returns the text field name."""
    path, field = source.path, None
    for number, obj in json_records(source):
        name = _field_of(obj, path, number)
        if field is None:
            field = name
        elif name != field and isinstance(obj, dict) and field not in obj:
            where = f"{path}:{number}" if number > 1 else str(path)
            raise UserError(f"{where}: field '{name}' but earlier records use '{field}'")
    if field is None:
        raise UserError(f"{path}: no JSON records")
    return field


def _check_csv(path: Path) -> str:
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


def load_texts(source: DataSource | str, cache_dir: str | None = None):
    """A `datasets.Dataset` with one column, `text`, from any supported source. Its Arrow
    files go to `cache_dir` (default: datasets' own cache)."""
    import datasets

    source = source if isinstance(source, DataSource) else resolve_source(source)
    spec, path = source.spec, source.path
    if source.dialogues:
        raise UserError(f"{path}: holds dialogues (a 'messages' list), not texts")
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    if source.format == "folder":
        ds = datasets.load_dataset("text", data_files=[str(f) for f in text_files(path)],
                                   sample_by="document", split="train", cache_dir=cache_dir)
    elif source.format == "txt":
        ds = datasets.load_dataset("text", data_files=str(path), split="train", cache_dir=cache_dir)
    elif source.format in ("jsonl", "json"):
        field = _check_json(source)
        ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache_dir)
        ds = ds.select_columns([field]).rename_column(field, "text") if field != "text" \
            else ds.select_columns(["text"])
    elif source.format == "csv":
        field = _check_csv(path)
        ds = datasets.load_dataset("csv", data_files=str(path), split="train",
                                   keep_default_na=False, cache_dir=cache_dir)
        ds = ds.select_columns([field])
        if field != "text":
            ds = ds.rename_column(field, "text")
    else:   # a hub dataset
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

    def __init__(self, path: Path, count: int) -> None:
        self.path, self.count = path, count   # the non-blank lines, counted when it was resolved

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
        return self.count

    def iter(self, batch_size: int):
        batch = []
        for text in self._texts():
            batch.append(text)
            if len(batch) == batch_size:
                yield {"text": batch}
                batch = []
        if batch:
            yield {"text": batch}


def texts_to_tokenize(source: DataSource, cache_dir: str | None = None):
    """The texts of `source` for tokenizing: a .txt file line by line (`TextLines`), anything
    else through `datasets` (`load_texts`)."""
    if source.format == "txt" and source.texts is not None:
        return TextLines(source.path, source.texts)
    return load_texts(source, cache_dir)


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
