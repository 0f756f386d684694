"""Training texts in, through `datasets`: .txt (a sample per line), .jsonl/.json (an object per
line with `input` or `text`, the notebook's format), .csv (a `text` or `input` column), a folder
of .txt files (a sample per file), or a hub dataset name.

Every local file is checked before loading, and the first problem is reported as
`file:line: what is wrong` — empty files, bad JSON, missing fields, non-UTF-8 bytes, binaries.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from core.demo import corpus_path
from core.errors import UserError, first_line

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


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise UserError(f"{path}: the file is empty")
    if b"\x00" in data[:65536]:
        raise UserError(f"{path}: looks like a binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
                        "save the file as UTF-8") from None


def _check_txt(path: Path) -> None:
    text = _read_text_file(path)
    if not any(line.strip() for line in text.splitlines()):
        raise UserError(f"{path}: no non-blank lines")


def _field_of(obj, path: Path, line: int) -> str:
    if not isinstance(obj, dict):
        raise UserError(f"{path}:{line}: expected a JSON object with an 'input' or 'text' field")
    for name in TEXT_FIELDS:
        if name in obj:
            if not isinstance(obj[name], str):
                raise UserError(f"{path}:{line}: field '{name}' must be a string")
            return name
    raise UserError(f"{path}:{line}: no 'input' or 'text' field (keys: {', '.join(map(str, obj)) or 'none'})")


def _check_json(path: Path) -> str:
    """Validate a JSON-lines file (or a JSON array); returns the text field name."""
    text = _read_text_file(path)
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}: bad JSON: {exc.msg}") from None
        if not items:
            raise UserError(f"{path}: the JSON array is empty")
        fields = {_field_of(obj, path, 1) for obj in items}
        if len(fields) > 1:
            raise UserError(f"{path}: mixes 'input' and 'text' fields; use one of them")
        return fields.pop()
    field = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: bad JSON: {exc.msg} (column {exc.colno})") from None
        name = _field_of(obj, path, number)
        if field is None:
            field = name
        elif name != field and field not in obj:
            raise UserError(f"{path}:{number}: field '{name}' but earlier lines use '{field}'")
    if field is None:
        raise UserError(f"{path}: no JSON lines")
    return field


def _check_csv(path: Path) -> str:
    text = _read_text_file(path)
    reader = csv.reader(io.StringIO(text))
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
    return not spec.startswith((".", "/", "~")) and spec.count("/") <= 1 and not spec.endswith(SUFFIXES)


def load_texts(spec: str):
    """A `datasets.Dataset` with one column, `text`, from any supported source."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".txt" and p.is_file())
        if not files:
            raise UserError(f"{path}: no .txt files in this folder")
        for f in files:
            _read_text_file(f)
        ds = datasets.load_dataset("text", data_files=[str(f) for f in files],
                                   sample_by="document", split="train")
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".txt":
            _check_txt(path)
            ds = datasets.load_dataset("text", data_files=str(path), split="train")
        elif suffix in (".jsonl", ".json"):
            field = _check_json(path)
            ds = datasets.load_dataset("json", data_files=str(path), split="train")
            ds = ds.select_columns([field]).rename_column(field, "text") if field != "text" \
                else ds.select_columns(["text"])
        elif suffix == ".csv":
            field = _check_csv(path)
            ds = datasets.load_dataset("csv", data_files=str(path), split="train",
                                       keep_default_na=False)
            ds = ds.select_columns([field])
            if field != "text":
                ds = ds.rename_column(field, "text")
        else:
            raise UserError(f"{path}: unsupported file type '{suffix}' "
                            "(use .txt, .jsonl, .json, .csv or a folder of .txt)")
    elif _is_hub_name(spec):
        try:
            ds = datasets.load_dataset(spec, split="train")
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

    ds = ds.filter(lambda row: isinstance(row["text"], str) and row["text"].strip() != "")
    if len(ds) == 0:
        raise UserError(f"{spec}: no non-empty samples")
    return ds


def split_train_test(ds, test_fraction: float, seed: int):
    """A seeded held-out split; at least one sample on each side."""
    if not 0 < test_fraction < 1:
        raise UserError(f"--test-split {test_fraction}: must be between 0 and 1")
    if len(ds) < 2:
        raise UserError("need at least 2 samples to hold some out for testing (or pass --test)")
    n_test = max(1, round(len(ds) * test_fraction))
    parts = ds.train_test_split(test_size=n_test, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def sample_corpus_path() -> Path:
    """The Russian corpus that ships with the demo model: a dataset that works offline."""
    return corpus_path()


def token_lists(tokenizer, texts: list[str]) -> list[list[int]]:
    """Each text as the tokenizer encodes it on its own — with the BOS it puts in front, if
    it puts one (Llama's `<s>`; GPT-2 adds none) — but without a closing EOS: the batching
    adds exactly one after every text."""
    if not texts:
        return []
    rows = tokenizer(texts, add_special_tokens=True)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None and rows and all(row and row[-1] == eos for row in rows):
        rows = [row[:-1] for row in rows]   # a tokenizer that closes every text with EOS itself
    return rows


def stats_of(ids: list[list[int]], block_size: int, eos: bool = True) -> DataStats:
    lengths = [len(x) + (1 if eos else 0) for x in ids]
    return DataStats(samples=len(ids), tokens=sum(lengths), longest=max(lengths, default=0),
                     truncated=sum(n > block_size for n in lengths), block_size=block_size)


def fingerprint(spec: str) -> str:
    """A hash of the data a run read — the file, or every .txt of a folder, names and bytes —
    so a run can be matched with its data later. A hub dataset is named, not hashed."""
    path = Path(spec).expanduser()
    if not path.exists():
        return f"hub:{spec}"
    h = hashlib.sha256()
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    for file in files:
        h.update(file.name.encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()[:16]


def describe(spec: str) -> str:
    """A short name for a data source in messages."""
    return os.path.basename(spec.rstrip("/")) or spec
