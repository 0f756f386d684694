"""A training corpus as token streams, tokenized once and then read from the cache.

    corpus = resolve_corpus(tokenizer, config)          # the data resolved, once
    tokens = corpus_tokens(tokenizer, config, block, corpus, progress=lambda done, total: ...)

The first run on some data reads it (a .txt line by line, dialogues in one pass, the rest
through `datasets`), splits off the held-out part, and encodes both in batches with the fast
tokenizer's own parallelism (every core), one batch encoded while the last is written; the
ids go straight to disk (`core.data.cache`, which stores arrays and knows nothing of what
they encode). Later runs on the same bytes, with the same tokenizer and split, read the
streams back memory-mapped and start at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from core.base.cancel import Cancelled
from core.base.errors import UserError
from core.data.cache import FORMAT, Encoded, Progress, TokenCache, Tokens, token_dtype
from core.data.dialogues import encode_dialogue, read_dialogues
from core.data.source import DataSource, check_source, resolve_source, text_files
from core.data.templates import Template, template_for
from core.data.texts import split_mask, texts_to_tokenize

if TYPE_CHECKING:   # any object with the data settings of a run: train, test, test_split,
    from core.training.config import TrainConfig  # seed, template, train_on_prompt

BATCH_TEXTS = 4096


def tokenizer_fingerprint(tokenizer) -> str:
    """What makes two tokenizers give the same ids: their whole definition."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(f"eos={tokenizer.eos_token_id} bos={tokenizer.bos_token_id}".encode())
    return h.hexdigest()


def encoder(tokenizer) -> Callable[[list[str]], Encoded]:
    """Texts → ids, each text as `tokenizer(text)` encodes it on its own — with the BOS it
    puts in front, if it puts one (Llama's `<s>`; GPT-2 adds none) — and exactly one EOS
    after it (the stream's separator). A fast tokenizer encodes the batch in its own threads."""
    eos = tokenizer.eos_token_id
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    closes_with_eos = len(probe) > 1 and probe[-1] == eos   # it adds EOS to every text itself
    backend = getattr(tokenizer, "backend_tokenizer", None)

    def encode(texts: list[str]) -> Encoded:
        if backend is not None:
            rows = [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=True)]
        else:
            rows = tokenizer(texts, add_special_tokens=True)["input_ids"]
        if closes_with_eos:
            rows = [row[:-1] if row and row[-1] == eos else row for row in rows]
        return Encoded([row + [eos] for row in rows])
    return encode


def dialogue_encoder(tokenizer, template: Template, block: int, train_on_prompt: bool):
    """Conversations → ids and loss masks (core.data.dialogues), with what each one counts;
    each ends with its template's own end-of-turn marker, no EOS added."""
    def encode(conversations: list[list[dict]]) -> Encoded:
        rows, masks, counts = [], [], []
        for messages in conversations:
            ids, mask, dropped = encode_dialogue(tokenizer, template, messages, block, train_on_prompt)
            rows.append(ids)
            masks.append(mask)
            counts.append({"turns": sum(m["role"] == "assistant" for m in messages),
                           "dropped_turns": dropped, "trained_tokens": sum(mask)})
        return Encoded(rows, masks, counts)
    return encode


@contextmanager
def tokenizer_parallelism() -> Iterator[None]:
    """The fast tokenizer's threads on, for a batch job; the process's setting back after
    (off elsewhere: it must not be on when the process forks)."""
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        os.environ["TOKENIZERS_PARALLELISM"] = before if before is not None else "false"


class Items(Protocol):
    """What the texts of a split are read from: a `datasets.Dataset`, `TextLines`, or
    `Conversations` — a length, and batches of the split's column."""

    def __len__(self) -> int: ...

    def iter(self, batch_size: int) -> Iterator[dict[str, list]]: ...


@dataclass
class Texts:
    """The data as loaded: the train texts, and the held-out ones — a separate dataset, or a
    seeded mask over the train texts (read in file order, in one pass)."""
    train: Items
    test: Items | None = None
    test_mask: np.ndarray | None = None   # (N,) bool over `train`
    column: str = "text"                  # "messages" for dialogues

    @property
    def total(self) -> int:
        return len(self.train) + (len(self.test) if self.test is not None else 0)

    def fingerprints(self) -> list[str | None] | None:
        """What identifies a hub dataset's loaded splits: the Arrow files `datasets` keeps
        them in (named by the dataset, its revision and split), their sizes and times. None
        when a split is in memory only: it has nothing that identifies it, and is not cached."""
        found: list[str | None] = []
        for split in (self.train, self.test):
            if split is None:
                found.append(None)
                continue
            files = [f["filename"] for f in getattr(split, "cache_files", [])]   # a Dataset's
            if not files:
                return None
            stats = [(name, os.stat(name).st_size, os.stat(name).st_mtime_ns) for name in files]
            found.append(hashlib.sha256(json.dumps(stats).encode()).hexdigest())
        return found

    def batches(self) -> Iterator[tuple[list[str], list[str]]]:
        """(train texts, held-out texts), BATCH_TEXTS at a time."""
        start = 0
        for batch in self.train.iter(batch_size=BATCH_TEXTS):
            texts = batch[self.column]
            if self.test_mask is None:
                yield texts, []
            else:
                held = self.test_mask[start: start + len(texts)]
                yield ([t for t, h in zip(texts, held) if not h], [t for t, h in zip(texts, held) if h])
            start += len(texts)
        if self.test is not None:
            for batch in self.test.iter(batch_size=BATCH_TEXTS):
                yield [], batch[self.column]


@dataclass(frozen=True)
class Corpus:
    """A run's data, resolved once: its sources, and for dialogues the template that frames
    them (which the checkpoint then carries)."""
    train: DataSource
    test: DataSource | None
    template: Template | None   # dialogues only

    @property
    def dialogues(self) -> bool:
        return self.train.dialogues


def resolve_corpus(tokenizer, config: TrainConfig) -> Corpus:
    train = resolve_source(config.train)
    test = resolve_source(config.test) if config.test else None
    if test is not None and test.kind != train.kind:
        raise UserError(f"{config.test}: holds {test.kind}, but the training data holds {train.kind}")
    return Corpus(train, test, template_for(tokenizer, config.template) if train.dialogues else None)


def _read(source: DataSource, texts_dir: str):
    return read_dialogues(source) if source.dialogues else texts_to_tokenize(source, texts_dir)


def _load(config: TrainConfig, corpus: Corpus, texts_dir: str) -> Texts:
    column = "messages" if corpus.dialogues else "text"
    train = _read(corpus.train, texts_dir)
    if corpus.test is not None:
        return Texts(train, test=_read(corpus.test, texts_dir), column=column)
    return Texts(train, test_mask=split_mask(len(train), config.test_split, config.seed), column=column)


@contextmanager
def _texts_dir(root: Path | None) -> Iterator[str]:
    """Where `datasets` keeps the texts' Arrow files while they are tokenized: removed
    after, since only the tokens are read again (a corpus is not kept twice on disk)."""
    folder = tempfile.mkdtemp(prefix=".texts-", dir=root)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _key(tokenizer, config: TrainConfig, block: int, corpus: Corpus, loaded=None) -> str | None:
    """The cache key: the data's content, the tokenizer, the split. A hub dataset has no
    file to hash: its key comes from the loaded dataset's own fingerprint (`loaded`)."""
    parts: dict = {"format": FORMAT, "tokenizer": tokenizer_fingerprint(tokenizer)}
    if loaded is not None:
        parts["data"] = loaded.fingerprints()
        if parts["data"] is None:
            return None
    else:
        parts["data"] = [corpus.train.fingerprint, corpus.test.fingerprint if corpus.test else None]
        if any(str(p).startswith("hub:") for p in parts["data"]):
            return None
    if not config.test:
        parts["split"] = [config.test_split, config.seed]
    if corpus.template is not None:   # dialogues: the template, the mask, the block cut them
        parts["dialogue"] = [corpus.template.source, config.train_on_prompt, block]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def corpus_tokens(tokenizer, config: TrainConfig, block: int, corpus: Corpus | None = None,
                  progress: Progress | None = None, cancelled: Callable[[], bool] = lambda: False,
                  cache: TokenCache | None = None) -> Tokens:
    """The train and held-out token streams of `config`'s data, from the cache when they are
    there, else tokenized now (and kept). `cancelled()` abandons a tokenization."""
    if tokenizer.eos_token_id is None:
        raise UserError("the tokenizer has no end-of-text token to separate samples")
    corpus = corpus or resolve_corpus(tokenizer, config)
    cache = cache or TokenCache()
    key = _key(tokenizer, config, block, corpus)
    writable = cache.writable()   # asked once: it writes a probe file
    if key is not None and writable:
        found = cache.load(key)   # the usual second run: no `datasets`, no tokenizer
        if found is not None:
            return found
    with _texts_dir(cache.root if writable else None) as texts_dir:
        loaded = None
        if key is None:   # a hub dataset: its key comes from loading it
            loaded = _load(config, corpus, texts_dir)
            key = _key(tokenizer, config, block, corpus, loaded)
        texts = loaded or _load(config, corpus, texts_dir)
        if key is None or not writable:   # nothing to key it by, or no cache folder: a passing one
            with tempfile.TemporaryDirectory() as tmp:   # the memory maps outlive the names
                return _build(TokenCache(Path(tmp)), key or "passing", tokenizer, config, block,
                              corpus, texts, progress, cancelled)
        with cache.building(key):
            found = cache.load(key)   # built by another run while this one waited
            return found or _build(cache, key, tokenizer, config, block, corpus, texts, progress,
                                   cancelled)


def _build(cache: TokenCache, key: str, tokenizer, config: TrainConfig, block: int,
           corpus: Corpus, texts: Texts, progress, cancelled) -> Tokens:
    if corpus.template is not None:
        encode = dialogue_encoder(tokenizer, corpus.template, block, config.train_on_prompt)
    else:
        encode = encoder(tokenizer)
    with tokenizer_parallelism():
        return cache.build(key, token_dtype(len(tokenizer)),
                           _encoded(encode, texts.batches(), cancelled), total=texts.total,
                           progress=progress)


def _encoded(encode: Callable[[list], Encoded], batches: Iterator[tuple[list, list]],
             cancelled: Callable[[], bool]) -> Iterator[tuple[Encoded, int]]:
    """(the batch encoded, how many of it are training items), each batch encoded while the
    one before is written: the tokenizer works in its own threads (no GIL) meanwhile."""
    with ThreadPoolExecutor(1, thread_name_prefix="tokenize") as pool:
        pending = None
        for train_items, test_items in batches:
            if cancelled():
                raise Cancelled()
            running = (pool.submit(encode, train_items + test_items), len(train_items))
            if pending is not None:
                yield pending[0].result(), pending[1]
            pending = running
        if pending is not None:
            yield pending[0].result(), pending[1]


SAMPLE_BYTES = 1 << 20
ESTIMATE_FROM = 8 << 20   # smaller data is tokenized whole in a moment


def quick_estimate(tokenizer, spec: str) -> dict | None:
    """For big local data, a first answer before tokenizing it all: bytes, and texts and
    tokens extrapolated from the first megabyte. None for small data and hub datasets."""
    check_source(spec)
    path = Path(spec).expanduser()
    files = text_files(path) if path.is_dir() else [path] if path.is_file() else []
    size = sum(f.stat().st_size for f in files)
    if size < ESTIMATE_FROM:
        return None
    with open(files[0], "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    sample = sample[: sample.rfind(b"\n") + 1] or sample   # whole lines
    lines = [line for line in sample.decode("utf-8", errors="ignore").splitlines() if line.strip()]
    tokens = sum(len(row) for row in encoder(tokenizer)(lines).rows) if lines else 0   # EOS included
    per_file = path.is_dir()
    return {"bytes": size,
            "texts": len(files) if per_file else round(len(lines) * size / len(sample)),
            "tokens": round(tokens * size / len(sample))}
