"""Tokenize once: the cache is reused when nothing changed, rebuilt when the data, the
tokenizer or the split changed, never used damaged, and its rows are exactly the rows a fresh
tokenization gives."""

import os

import numpy as np
import pytest

from core.base.cancel import Cancelled
from core.data.cache import TokenCache
from core.data.grammar import corpus_sentences
from core.data.texts import load_texts, split_mask
from core.training.batches import eval_sample, prepare_data
from core.training.config import TrainConfig
from core.training.loop import train


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(corpus_sentences(300, seed=3)) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture
def cache(tmp_path):
    return TokenCache(tmp_path / "tokens")


@pytest.fixture(scope="module")
def tok():
    from core.model.session import load_session

    return load_session("demo", device="cpu").tokenizer


def rows(data):
    return [row.tolist() for row in data.train_rows], [row.tolist() for row in data.test_rows]


def fresh_rows(tok, path, block, pack, split=0.1, seed=0):
    """The rows as the notebook would make them: split, `tokenizer(text)` each, EOS after."""
    texts = list(load_texts(str(path))["text"])
    held = split_mask(len(texts), split, seed)
    result = []
    for part in ([t for t, h in zip(texts, held) if not h], [t for t, h in zip(texts, held) if h]):
        texts = [tok(text)["input_ids"] + [tok.eos_token_id] for text in part]
        if pack:
            stream = [t for text in texts for t in text]
            n = len(stream) // block
            result.append([stream[i * block:(i + 1) * block] for i in range(n)])
        else:
            result.append([text[:block] for text in texts])
    return tuple(result)


def prepare(tok, path, cache, block=32, **settings):
    return prepare_data(tok, TrainConfig(train=str(path), **settings), block, cache=cache)


def test_rows_from_the_cache_are_the_freshly_tokenized_rows(tok, corpus, cache):
    first = prepare(tok, corpus, cache)
    assert not first.stats["cached"]
    assert rows(first) == fresh_rows(tok, corpus, 32, pack=True)
    again = prepare(tok, corpus, cache)
    assert again.stats["cached"] and rows(again) == rows(first)
    # another block size, or one text a row: the same cached tokens, no new tokenization
    for block, pack in ((48, True), (16, False), (64, False)):
        data = prepare(tok, corpus, cache, block=block, pack=pack)
        assert data.stats["cached"]
        assert rows(data) == fresh_rows(tok, corpus, block, pack), (block, pack)
    assert data.stats["train"]["samples"] == 270 and data.stats["test"]["samples"] == 30


def test_the_cache_is_rebuilt_when_the_data_the_tokenizer_or_the_split_changes(tok, corpus, cache):
    from core.model.session import load_session

    prepare(tok, corpus, cache)
    for settings in ({"seed": 1}, {"test_split": 0.2}):
        assert not prepare(tok, corpus, cache, **settings).stats["cached"], settings
        assert prepare(tok, corpus, cache, **settings).stats["cached"], settings
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("Ещё одна строка.\n")
    changed = prepare(tok, corpus, cache)
    assert not changed.stats["cached"] and changed.stats["train"]["samples"] == 271
    other = load_session("demo", device="cpu").tokenizer
    other.add_tokens(["строка"])   # another tokenizer: other ids
    assert not prepare(other, corpus, cache).stats["cached"]
    assert prepare(tok, corpus, cache).stats["cached"]   # the first one's entry is still there


def test_a_damaged_or_half_written_entry_is_never_used(tok, corpus, cache):
    expected = rows(prepare(tok, corpus, cache))
    (entry,) = [p for p in cache.root.iterdir() if not p.name.startswith(".")]
    ids = entry / "train.ids"
    with open(ids, "r+b") as f:   # truncated, as by a full disk
        f.truncate(ids.stat().st_size // 2)
    data = prepare(tok, corpus, cache)
    assert not data.stats["cached"] and rows(data) == expected
    raw = bytearray(ids.read_bytes())   # one byte changed, the size the same
    raw[len(raw) // 2] ^= 0xFF
    ids.write_bytes(bytes(raw))
    data = prepare(tok, corpus, cache)
    assert not data.stats["cached"] and rows(data) == expected
    (entry / "meta.json").unlink()   # a folder that was never completed
    data = prepare(tok, corpus, cache)
    assert not data.stats["cached"] and rows(data) == expected


def test_a_cancelled_tokenization_leaves_nothing(tok, corpus, cache):
    config = TrainConfig(train=str(corpus))
    with pytest.raises(Cancelled):
        prepare_data(tok, config, 32, cache=cache, cancelled=lambda: True)
    left = cache.root.iterdir() if cache.root.exists() else []   # stopped before it began
    assert [p.name for p in left if not p.name.endswith(".lock")] == []


def test_least_recently_used_entries_go_when_the_cache_is_full(tok, corpus, cache):
    for seed in (1, 2):
        prepare(tok, corpus, cache, seed=seed)
    sizes = [size for _, size, _ in cache.entries()]
    assert len(sizes) == 2
    cache.cap = int(sum(sizes) * 1.25)   # room for two entries, not three
    first = cache.entries()[0][2]
    os.utime(first / "meta.json", (1, 1))
    assert prepare(tok, corpus, cache, seed=1).stats["cached"]   # used again: recent now
    prepare(tok, corpus, cache, seed=3)
    left = {p.name for _, _, p in cache.entries()}
    assert len(left) == 2 and first.name in left


def test_evaluation_reads_a_fixed_seeded_sample_of_the_held_out_set(tok, corpus, cache):
    data = prepare(tok, corpus, cache, block=16, pack=False)
    tokens = data.test_rows.row_tokens()
    picked = eval_sample(data.test_rows, 100, seed=5)
    assert picked == eval_sample(data.test_rows, 100, seed=5) == sorted(picked)
    assert tokens[picked].sum() >= 100 > tokens[picked].sum() - tokens[picked].max()
    assert eval_sample(data.test_rows, 0, seed=5) == list(range(len(data.test_rows)))
    data = prepare(tok, corpus, cache, block=16, pack=False, eval_tokens=100)
    assert data.stats["eval_tokens"] == int(tokens[data.eval_rows].sum()) < data.stats["test"]["tokens"]


def test_a_second_run_on_the_same_data_does_not_tokenize(demo_dir, corpus, monkeypatch, tmp_path):
    from core.model.session import load_session
    from core.training.events import Stats, Tokenizing

    monkeypatch.setenv("RUGPT_TUI_CACHE", str(tmp_path / "cache"))
    session = load_session(str(demo_dir), device="cpu")
    runs = []
    for _ in range(2):
        events = []
        train(session, TrainConfig(train=str(corpus), max_steps=1, block_size=32), on_event=events.append)
        runs.append(events)
    first, second = runs
    assert any(isinstance(e, Tokenizing) for e in first)
    assert not any(isinstance(e, Tokenizing) for e in second)
    stats = [next(e for e in events if isinstance(e, Stats)) for events in runs]
    assert (stats[0].cached, stats[1].cached) == (False, True)
    assert np.array_equal(stats[0].train["tokens"], stats[1].train["tokens"])


def test_big_data_gets_an_estimate_from_its_first_megabyte(tok, tmp_path, cache, monkeypatch):
    """What the Train pane shows at once, before a big corpus is tokenized."""
    import core.data.tokenized as corpus_tokens

    path = tmp_path / "big.txt"
    path.write_text("\n".join(corpus_sentences(30_000, seed=4)) + "\n", encoding="utf-8")
    assert corpus_tokens.quick_estimate(tok, str(path)) is None   # small: tokenized whole at once
    monkeypatch.setattr(corpus_tokens, "ESTIMATE_FROM", 1 << 20)
    monkeypatch.setattr(corpus_tokens, "SAMPLE_BYTES", 200_000)   # a tenth of the file
    estimate = corpus_tokens.quick_estimate(tok, str(path))
    stats = prepare_data(tok, TrainConfig(train=str(path), test_split=0.5), 32, cache=cache).stats
    tokens = stats["train"]["tokens"] + stats["test"]["tokens"]
    assert estimate["bytes"] == path.stat().st_size
    assert abs(estimate["texts"] - 30_000) < 0.1 * 30_000
    assert abs(estimate["tokens"] - tokens) < 0.1 * tokens


def test_a_text_file_is_tokenized_line_by_line_as_datasets_reads_it(tmp_path):
    """A .txt file is read straight, a batch at a time (no Arrow copy): the same texts as
    `datasets`' text loader gives — universal newlines, blank lines dropped, nothing else split."""
    from core.data.source import resolve_source
    from core.data.texts import TextLines, texts_to_tokenize

    path = tmp_path / "mixed.txt"
    path.write_text("первая\r\nвторая\rтретья\n\n  \n\x85x\u2028y\n\tz\t\n\u3000\nпоследняя",
                    encoding="utf-8", newline="")
    lines = texts_to_tokenize(resolve_source(str(path)))   # its lines counted as it is resolved
    assert isinstance(lines, TextLines)
    read = [text for batch in lines.iter(batch_size=3) for text in batch["text"]]
    assert read == load_texts(str(path), str(tmp_path / "arrow"))["text"] and len(lines) == len(read)
    records = tmp_path / "texts.jsonl"
    records.write_text('{"text": "один"}\n{"text": "два"}\n', encoding="utf-8")
    assert not isinstance(texts_to_tokenize(resolve_source(str(records)), str(tmp_path / "arrow")),
                          TextLines)


def test_tokenizing_a_big_text_file_holds_a_few_bytes_a_token(tmp_path):
    """The first run on a 20 MB corpus: its peak memory above the same process before it, per
    token, stays under 16 bytes (the texts are never all in memory; the ids go to disk)."""
    import json
    import subprocess
    import sys

    corpus = tmp_path / "big.txt"
    pool = corpus_sentences(20_000, seed=3)
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(200_000):
            f.write(" ".join(pool[(i * 7 + k) % len(pool)] for k in range(1 + i % 5)) + "\n")
    probe = """
import json, sys
def peak():
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1]) * 1024
from pathlib import Path
from core.model.session import load_session
from core.data.cache import TokenCache
from core.training.batches import prepare_data
from core.training.config import TrainConfig
import accelerate, datasets, numpy, pyarrow
session = load_session("demo", device="cpu")
base = peak()
data = prepare_data(session.tokenizer, TrainConfig(train=sys.argv[1]), 256, cache=TokenCache(Path(sys.argv[2])))
print(json.dumps({"tokens": data.stats["train"]["tokens"] + data.stats["test"]["tokens"], "above": peak() - base}))
"""
    done = subprocess.run([sys.executable, "-c", probe, str(corpus), str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=300,
                          cwd=str(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["tokens"] > 2_000_000
    assert found["above"] / found["tokens"] < 16, found


def test_a_loaded_dataset_is_keyed_by_its_arrow_files_and_one_in_memory_is_not_cached(tmp_path):
    """A hub dataset has no file of ours to hash: its key comes from the Arrow files
    `datasets` keeps it in — the same for the same data loaded again, another for other
    data; a dataset held only in memory has nothing to key it and is never cached."""
    from datasets import Dataset, load_dataset

    from core.data.tokenized import Texts

    def loaded(text: str) -> Texts:
        path = tmp_path / f"{len(text)}.txt"
        if not path.exists():
            path.write_text(text, encoding="utf-8")
        return Texts(train=load_dataset("text", data_files=str(path), split="train",
                                        cache_dir=str(tmp_path / "cache")))

    first = loaded("один\nдва\n").fingerprints()
    assert first is not None and first[1] is None
    assert loaded("один\nдва\n").fingerprints() == first
    assert loaded("три\n").fingerprints() != first
    assert Texts(train=Dataset.from_dict({"text": ["один"]})).fingerprints() is None
