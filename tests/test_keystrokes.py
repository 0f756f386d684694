"""No keystroke is lost: keys sent in one burst, as a terminal sends them, land in typing
order — right after switching panes, at start while the model loads, and while a preview
or the runs list refreshes."""

from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from tests.helpers import screen_text, wait_for
from tests.monkey import burst, key_event, settled
from tui.panes.train.pane import TrainPane
from tui.shell.app import RuGPTApp

PATH = "/root/.cache/какой-то/corpus.txt"


async def test_a_path_typed_right_after_switching_panes_is_whole(demo_session, tmp_path):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(3):   # also while the previous path's preview refreshes
            await burst(app, "f2", "f4", "ctrl+a", "ctrl+k", *PATH)
            await settled(app)   # every key handled
            assert app.query_one("#train-data", Input).value == PATH
        # the output folder too, while the runs list and the folder check refresh
        field = app.query_one("#train-out", Input)
        field.focus()
        await pilot.pause()
        assert app.focused is field, app.focused
        await burst(app, "end", *["backspace"] * len(field.value), *str(tmp_path / "мой-запуск"))
        await settled(app)   # every key handled
        assert field.value == str(tmp_path / "мой-запуск")


async def test_an_editor_applies_backspace_in_typing_order(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        await burst(app, "f3")
        await wait_for(pilot, app.panes_ready)
        prompt = app.query_one("#gen-prompt", TextArea)
        prompt.focus()
        prompt.load_text("")
        await pilot.pause()
        await burst(app, *"кот", "backspace", "backspace", *"ит", "left", "left", "delete", *"ру")
        await settled(app)   # every key handled
        assert prompt.text == "крут"   # к|ит → к|т → крут


async def test_settings_typed_while_the_model_loads_are_kept(demo_dir, tmp_path, monkeypatch):
    """At start the model loads in the background; what the user types meanwhile — the
    data path, a setting — is still there when its defaults arrive."""
    import threading

    import core.model.session

    typed = threading.Event()
    load = core.model.session.load_session

    def slow_load(*args, **kwargs):   # a big model takes a while: it arrives after the keys
        typed.wait(30)
        return load(*args, **kwargs)
    monkeypatch.setattr(core.model.session, "load_session", slow_load)
    mine = tmp_path / "my.txt"
    mine.write_text("Кот спал.\nПёс гулял.\n", encoding="utf-8")
    app = RuGPTApp(model="demo")
    async with app.run_test(size=(100, 30)) as pilot:
        await burst(app, "f4", "ctrl+a", "ctrl+k", *str(mine))
        epochs = app.query_one("#train-epochs", Input)
        epochs.focus()
        await pilot.pause()
        await burst(app, "end", *["backspace"] * 6, "7")
        await pilot.pause(0.3)
        assert app.session is None
        typed.set()
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        await pilot.pause(0.5)
        assert app.query_one("#train-data", Input).value == str(mine)
        assert epochs.value == "7"
        # the other settings took the demo's defaults
        assert app.query_one("#train-lr", Input).value == "3e-3"
        assert Path(app.query_one(TrainPane).form.data_paths()["train"]) == mine


@pytest.mark.first_moments
async def test_keys_typed_at_the_first_frame_are_kept_in_order(demo_session):
    """The panes behind the first tab mount just after the first frame; a user who starts
    typing at once (F3, a prompt) loses nothing and gets it in the order typed."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        early = not app.panes_ready()
        await burst(app, "f3", "ctrl+a", "ctrl+k", *"жили-были")
        await wait_for(pilot, app.panes_ready)
        await pilot.pause(0.3)
        prompt = app.query_one("#gen-prompt", TextArea)
        assert app.focused is prompt
        assert prompt.text.endswith("жили-были"), prompt.text
    assert early, "the panes were already mounted at the first frame: nothing was tested"


@pytest.mark.first_moments
async def test_typing_goes_into_the_editor_at_once_while_a_pane_key_waits_for_the_panes(
        demo_session, monkeypatch):
    """Before the other panes are mounted, text typed goes straight into the Tokenize editor;
    F3 waits for the Generate pane, and what is typed after it waits behind it, in order."""
    from tui.shell.startup import Startup

    held = []   # the start-up's step that mounts the panes, held back by the test
    mount = Startup._mount_panes

    async def hold(startup):
        held.append(startup)

    monkeypatch.setattr(Startup, "_mount_panes", hold)
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.focused is app.query_one("#tok-input"))
        await burst(app, *"кот")
        editor = app.query_one("#tok-input", TextArea)
        await wait_for(pilot, lambda: editor.text.startswith("кот"))
        await burst(app, "f3", "ctrl+a", "ctrl+k", *"жили")
        await wait_for(pilot, lambda: held)   # the panes are built, not mounted
        await settled(app)   # everything the app was given is handled: the keys wait
        assert app.query_one("#tabs").active == "tokenize" and editor.text.startswith("кот")
        assert "жили" not in editor.text and not app.panes_ready()
        await mount(held[0])
        await wait_for(pilot, lambda: app.query_one("#tabs").active == "generate")
        await wait_for(pilot, lambda: app.query_one("#gen-prompt", TextArea).text.endswith("жили"))
        assert editor.text.startswith("кот") and "жили" not in editor.text


@pytest.mark.first_moments
async def test_quitting_before_the_panes_are_built_never_builds_them(monkeypatch):
    """Whether a run trains is asked without building the Train pane (a signal handler or
    the driver's thread may ask): no run can have started before it exists."""
    from tui.shell.startup import Startup

    monkeypatch.setattr(Startup, "_build_panes_and_load", lambda startup: None)   # held back
    app = RuGPTApp(model="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.training_run() is None and not app.training()
        await pilot.press("ctrl+q")
    assert app.panes is None and app.return_code == 0


def test_a_burst_of_characters_in_one_read_is_one_paste_in_its_place():
    """The terminal parser: 16 or more plain characters in one read arrive as one Paste,
    between the keys around them; fewer (a fast typist, key repeat) stay keys."""
    from textual import events

    from tui.process.textual_fixes import BURST, BurstParser

    burst = "Привет, мир! " * 4                     # 52 characters, Cyrillic and punctuation
    got = list(BurstParser().feed("ab\x01" + burst + "\r" + "x" * (BURST - 1)))
    kinds = [(type(e).__name__, getattr(e, "key", None) or getattr(e, "text", None)) for e in got]
    assert kinds[:3] == [("Key", "a"), ("Key", "b"), ("Key", "ctrl+a")]
    assert isinstance(got[3], events.Paste) and got[3].text == burst
    assert kinds[4] == ("Key", "enter")
    assert [e.key for e in got[5:]] == ["x"] * (BURST - 1) and len(got) == 5 + BURST - 1


def test_a_long_paste_sent_as_keys_lands_whole_and_in_order(demo_dir):
    """A real pty: 4,000 characters written at once (as tmux send-keys or a terminal without
    bracketed paste does) reach the Tokenize editor whole, in order, before a key sent after them."""
    import os
    import select
    import time

    from tests.test_hangup import spawn, wait_exit, wait_loaded
    from tui.panes.tokenize.pane import SAMPLE_TEXT

    pid, fd = spawn("--model", "demo")
    try:
        wait_loaded(fd)
        time.sleep(1.0)
        text = "".join(f"слово{i} " for i in range(500))          # 4,000 characters
        os.write(fd, b"\x1b[1;5F")                                    # ctrl+end: after the sample text
        for start in range(0, len(text), 1024):
            os.write(fd, text[start:start + 1024].encode())
        os.write(fd, "Ы".encode())                                    # a key typed after the paste
        wanted = f"{len(SAMPLE_TEXT) + len(text) + 1} characters".encode()
        seen, end = b"", time.monotonic() + 60
        while time.monotonic() < end and wanted not in seen:
            if select.select([fd], [], [], 0.2)[0]:
                seen = (seen + os.read(fd, 1 << 16))[-200_000:]
        assert wanted in seen, seen[-3000:].decode(errors="replace")
        os.write(fd, b"\x11")                                         # ctrl+q
        assert wait_exit(pid, timeout=30) == 0
    finally:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
        os.close(fd)


async def test_f8_in_the_same_burst_as_an_edit_reads_the_edited_field(demo_session):
    """Over a slow link the last characters and F8 arrive together. F8 has priority, so it is
    handled as it arrives, while the characters still wait in the field's queue: it read the
    old learning rate and trained with it. It now waits behind them."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-out", Input).value = ""
        lr = app.query_one("#train-lr", Input)
        lr.focus()
        await pilot.pause()
        for key in ("end", *["backspace"] * len(lr.value), *"nan", "f8"):   # one read's keys
            app.post_message(key_event(key))
        await settled(app)
        pane = app.query_one(TrainPane)
        assert lr.value == "nan" and pane.run is None and not pane.training
        await wait_for(pilot, lambda: "lr nan: must be a finite number" in screen_text(app))
