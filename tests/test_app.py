"""The app shell driven by Pilot: loading state, panes, keys, palette, quitting."""

import time

from textual.widgets import TabbedContent

from tests.helpers import wait_for
from tui.shell.app import RuGPTApp


async def test_app_loads_demo_and_switches_panes(demo_dir, monkeypatch):
    import threading

    import core.model.session

    loaded = threading.Event()   # the load waits until the test has seen the first frame
    real_load = core.model.session.load_session
    monkeypatch.setattr(core.model.session, "load_session",
                        lambda *a, **kw: (loaded.wait(30), real_load(*a, **kw))[1])
    app = RuGPTApp(model="demo", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        status = app.query_one("#model-status")
        assert "loading" in str(status.render())  # the UI is up while the model loads
        loaded.set()
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        await pilot.pause()
        assert "GPT2LMHeadModel" in str(status.render())
        assert f"{app.session.info.parameters:,}" in app.sub_title
        tabs = app.query_one("#tabs", TabbedContent)
        assert app.focused.id == "tok-input"   # type at once
        await pilot.press(*"Ёж")               # focus inside a pane must not pin its tab
        for key, tab in [("f3", "generate"), ("f4", "train"), ("f2", "tokenize"), ("f4", "train")]:
            await pilot.press(key)
            await wait_for(pilot, lambda t=tab: tabs.active == t)
            assert any(a.id == tab for a in app.focused.ancestors_with_self)


async def test_settled_heap_is_frozen_while_running_and_thawed_on_exit(demo_session):
    """The app settles its heap on its own and thaws it on exit; when, step by step, is
    tests/test_heap.py's."""
    import gc

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None)
        await wait_for(pilot, lambda: gc.get_freeze_count() > 0, timeout=30)
    assert gc.get_freeze_count() == 0


async def test_a_key_makes_the_app_unquiet_for_a_while(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None)
        pressed_at = time.monotonic()
        await pilot.press("я")
        assert app.last_key_at >= pressed_at       # the key the settling waits out
        assert not app.quiet_for(3600)


async def test_a_replaced_model_can_be_collected(demo_dir):
    """Loading another model thaws the frozen heap, so the old model goes away even if it
    sits in reference cycles."""
    import gc
    import weakref

    app = RuGPTApp(model="demo", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        await wait_for(pilot, lambda: gc.get_freeze_count() > 0, timeout=30)
        old = weakref.ref(app.session.model)
        app.load_model("demo")
        await wait_for(pilot, lambda: app.session.model is not old(), timeout=60)
        await wait_for(pilot, lambda: gc.get_freeze_count() > 0, timeout=30)  # settled again
        gc.collect()
        assert old() is None


async def test_bad_model_shows_error_and_keeps_running():
    app = RuGPTApp(model="no-such/model-anywhere", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.load_error is not None, timeout=30)
        await pilot.pause()
        assert "no-such/model-anywhere" in str(app.query_one("#model-status").render())
        await pilot.press("f3")
        assert app.query_one("#tabs", TabbedContent).active == "generate"


async def test_offline_default_model_says_demo_on_screen(tmp_path, monkeypatch, demo_dir):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty"))
    app = RuGPTApp(device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        # said as soon as it is decided, before the demo model has finished loading
        await wait_for(pilot, lambda: app.query_one("#notice").display, timeout=10)
        assert "demo model" in str(app.query_one("#notice").render())
        await wait_for(pilot, lambda: app.session is not None, timeout=10)
        await pilot.pause()
        notice = app.query_one("#notice")
        assert notice.display
        assert "demo model" in str(notice.render())


async def test_ctrl_q_quits_while_loading():
    app = RuGPTApp(model="demo", device="cpu")
    start = time.monotonic()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+q")
    assert time.monotonic() - start < 5
    assert app.return_code in (0, None)


async def test_palette_load_model(demo_dir):
    app = RuGPTApp(model="no-such/model-anywhere", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.load_error is not None, timeout=30)
        await pilot.press("ctrl+p")
        await pilot.press(*"Load model")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k")  # clear the field
        await pilot.press(*"demo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        assert app.session.info.model == "demo"


async def test_help_screen_lists_keys(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        from tui.widgets.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
