"""A data path is resolved once (core.data.source): what it is, what identifies it and how
many texts a .txt holds come from one read, which is remembered while the file is unchanged;
a corpus is read at most twice before the first step — once to resolve it, once to tokenize
it — and not at all once its tokens are cached. The reads are counted with Python's own
audit hook on `open`."""

import json
import os
import sys

import pytest
from textual.widgets import Input

from core.base.errors import UserError
from core.data.source import resolve_source
from core.data.texts import TextLines, load_texts
from core.model.session import load_session
from core.training.config import TrainConfig
from core.training.events import Step
from core.training.loop import train
from tests.helpers import wait_for
from tui.shell.app import RuGPTApp

_COUNTED: dict[str, int] = {}


def _count_opens(event: str, args: tuple) -> None:
    if event == "open" and _COUNTED and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if path in _COUNTED:
            _COUNTED[path] += 1


sys.addaudithook(_count_opens)   # inert while nothing is counted


class Opens:
    """How often `path` is opened inside the `with`."""

    def __init__(self, path) -> None:
        self.path, self.count = str(path), 0

    def __enter__(self):
        _COUNTED[self.path] = 0
        return self

    def __exit__(self, *exc) -> None:
        self.count = _COUNTED.pop(self.path)


class FirstStep(Exception):
    pass


def until_first_step(event) -> None:
    if isinstance(event, Step):
        raise FirstStep()


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"Кот номер {i} спал на печи, а пёс сторожил двор." for i in range(300))
                    + "\n\n   \n", encoding="utf-8")
    return path


@pytest.fixture
def dialogues(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps({"messages": [
        {"role": "user", "content": f"Как дела, номер {i}?"},
        {"role": "assistant", "content": "Хорошо, спасибо!"}]}, ensure_ascii=False)
        for i in range(40)), encoding="utf-8")
    return path


def test_a_source_says_what_it_is_from_one_read(corpus, dialogues, tmp_path):
    with Opens(corpus) as opens:
        source = resolve_source(str(corpus))
    assert opens.count == 1
    assert (source.kind, source.format, source.texts) == ("texts", "txt", 300)
    assert source.fingerprint.startswith("sha256:") and source.name == "corpus.txt"
    assert source.texts == len(load_texts(str(corpus), str(tmp_path / "arrow")))
    with Opens(corpus) as opens:
        assert resolve_source(str(corpus)) == source   # remembered: nothing read again
    assert opens.count == 0
    chats = resolve_source(str(dialogues))
    assert (chats.kind, chats.format, chats.dialogues) == ("dialogues", "jsonl", True)
    array = tmp_path / "chats.json"
    array.write_text(json.dumps([json.loads(line) for line in dialogues.read_text("utf-8").splitlines()]),
                     encoding="utf-8")
    assert (resolve_source(str(array)).kind, resolve_source(str(array)).format) == ("dialogues", "json")


def test_a_changed_file_is_resolved_again(corpus):
    before = resolve_source(str(corpus))
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("Ещё одна строка.\n")
    after = resolve_source(str(corpus))
    assert after.texts == before.texts + 1 and after.fingerprint != before.fingerprint


def test_bad_bytes_are_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("первая\nвторая\n".encode() + b"\xff\xfe\n")
    with pytest.raises(UserError, match=rf"^{path}:3: not valid UTF-8"):
        resolve_source(str(path))
    (tmp_path / "empty.txt").write_text(" \n\n", encoding="utf-8")
    with pytest.raises(UserError, match="the file is empty"):
        resolve_source(str(tmp_path / "empty.txt"))


def test_a_txt_corpus_is_read_twice_before_the_first_step_and_not_again_once_cached(corpus):
    session = load_session("demo", device="cpu")
    config = TrainConfig(train=str(corpus), max_steps=1, batch_size=4, block_size=32, sample_tokens=1)
    with Opens(corpus) as first, pytest.raises(FirstStep):
        train(session, config, on_event=until_first_step)
    with Opens(corpus) as cached, pytest.raises(FirstStep):
        train(session, config, on_event=until_first_step)
    assert (first.count, cached.count) == (2, 0)


def test_a_dialogue_file_is_read_twice_before_the_first_step(dialogues):
    session = load_session("demo", device="cpu")
    config = TrainConfig(train=str(dialogues), max_steps=1, batch_size=4, block_size=64, sample_tokens=1)
    with Opens(dialogues) as first, pytest.raises(FirstStep):
        train(session, config, on_event=until_first_step)
    assert first.count == 2


async def test_from_f8_to_the_first_step_the_previewed_corpus_is_not_read_again(corpus):
    """The Train pane's preview resolved the data and tokenized it into the cache: F8's run
    opens the file not once — what it is was remembered, its tokens come from the cache."""
    from tui.panes.train.pane import TrainPane

    app = RuGPTApp(session=load_session("demo", device="cpu"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        app.query_one("#train-data", Input).value = str(corpus)
        app.query_one("#train-out", Input).value = ""
        pane = app.query_one(TrainPane)
        await wait_for(pilot, lambda: pane.form.prepared is not None
                       and pane.form.prepared[0].corpus.train.spec == str(corpus))
        with Opens(corpus) as opens:
            await pilot.press("f8")
            await wait_for(pilot, lambda: pane.run is not None and len(pane.run.steps) >= 1, timeout=60)
        assert opens.count == 0
        pane.stop()
        await wait_for(pilot, lambda: not app.training(), timeout=60)


def test_a_txt_is_tokenized_from_its_lines_counted_once(corpus):
    lines = TextLines(corpus, resolve_source(str(corpus)).texts)
    assert len(lines) == sum(len(batch["text"]) for batch in lines.iter(batch_size=64)) == 300
