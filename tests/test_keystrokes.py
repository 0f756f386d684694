"""No keystroke is lost: keys sent in one burst, as a terminal sends them, land in typing
order — right after switching panes, at start while the model loads, and while a preview
or the runs list refreshes."""

from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from tests.helpers import wait_for
from tests.monkey import Monkey
from tui.panes.train.pane import TrainPane
from tui.shell.app import RuGPTApp

PATH = "/root/.cache/какой-то/corpus.txt"


async def test_a_path_typed_right_after_switching_panes_is_whole(demo_session, tmp_path):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        monkey = Monkey(pilot, 0)
        for _ in range(3):   # also while the previous path's preview refreshes
            await monkey.keys("f2", "f4", "ctrl+a", "ctrl+k", *PATH)
            await pilot.pause(0.5)
            assert app.query_one("#train-data", Input).value == PATH
        # the output folder too, while the runs list and the folder check refresh
        field = app.query_one("#train-out", Input)
        field.focus()
        await pilot.pause()
        assert app.focused is field, app.focused
        await monkey.keys("end", *["backspace"] * len(field.value), *str(tmp_path / "мой-запуск"))
        await pilot.pause(0.5)
        assert field.value == str(tmp_path / "мой-запуск")


async def test_an_editor_applies_backspace_in_typing_order(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        monkey = Monkey(pilot, 0)
        await monkey.keys("f3")
        await wait_for(pilot, app.panes_ready)
        prompt = app.query_one("#gen-prompt", TextArea)
        prompt.focus()
        prompt.load_text("")
        await pilot.pause()
        await monkey.keys(*"кот", "backspace", "backspace", *"ит", "left", "left", "delete", *"ру")
        await pilot.pause(0.3)
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
        monkey = Monkey(pilot, 0)
        await monkey.keys("f4", "ctrl+a", "ctrl+k", *str(mine))
        epochs = app.query_one("#train-epochs", Input)
        epochs.focus()
        await pilot.pause()
        await monkey.keys("end", *["backspace"] * 6, "7")
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
        monkey = Monkey(pilot, 0)
        early = not app.panes_ready()
        await monkey.keys("f3", "ctrl+a", "ctrl+k", *"жили-были")
        await wait_for(pilot, app.panes_ready)
        await pilot.pause(0.3)
        prompt = app.query_one("#gen-prompt", TextArea)
        assert app.focused is prompt
        assert prompt.text.endswith("жили-были"), prompt.text
    assert early, "the panes were already mounted at the first frame: nothing was tested"
