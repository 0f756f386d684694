"""Copy reaches the user's own clipboard through SSH: the OSC 52 sequence carries exactly the
base64 of what each pane copies. A run that ends while the terminal is not focused rings the
bell and sends a desktop notification (OSC 9 and OSC 777) — not when focused, not when
switched off; `train --notify` rings at the end."""

import base64

import pytest
from textual import events
from textual.widgets import Input, TextArea

from tests.helpers import cli, wait_for
from tui.panes.train.pane import TrainPane
from tui.render.notify import BELL, notification
from tui.shell.app import RuGPTApp
from tui.widgets.stream import TokenStream


def record_writes(app, monkeypatch) -> list[str]:
    """Everything the app writes to its terminal from now on."""
    written: list[str] = []
    write = app._driver.write
    monkeypatch.setattr(app._driver, "write", lambda data: (written.append(data), write(data)))
    return written


def osc52(text: str) -> str:
    return "\x1b]52;c;" + base64.b64encode(text.encode("utf-8")).decode() + "\a"


async def test_each_pane_copies_its_text_as_osc_52(demo_session, monkeypatch):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        written = record_writes(app, monkeypatch)
        # Tokenize: the token at the cursor
        editor = app.query_one("#tok-input", TextArea)
        editor.load_text("Привет, мир")
        editor.focus()
        await wait_for(pilot, lambda: app.tokenize_pane.view is not None
                       and app.tokenize_pane.view.text == "Привет, мир")
        editor.move_cursor((0, 2))
        await pilot.press("ctrl+c")
        what, token = app.tokenize_pane.copy_text()
        assert token and token in "Привет, мир" and written[-1] == osc52(token)
        # Generate: the prompt and what was generated; with the output focused, its token
        await pilot.press("f3")
        app.query_one("#gen-max-new-tokens", Input).value = "12"
        app.query_one("#gen-seed", Input).value = "3"
        await pilot.press("f5")
        pane = app.generate_pane
        await wait_for(pilot, lambda: pane.run is not None and pane.run.done is not None)
        app.query_one("#gen-prompt", TextArea).focus()
        await pilot.press("ctrl+c")
        assert written[-1] == osc52(pane.run.prompt + pane.run.done.text)
        stream = app.query_one(TokenStream)
        stream.focus()
        await pilot.press("home", "right")
        await pilot.press("ctrl+c")
        assert written[-1] == osc52(stream.tokens[1].text)
        assert any("Copied" in (n.title or "") for n in app._notifications)


async def test_chat_copies_the_last_reply_and_the_conversation(demo_session, monkeypatch):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        written = record_writes(app, monkeypatch)
        await wait_for(pilot, lambda: app.chat_pane.chat is not None)
        await pilot.press("f10")
        app.query_one("#chat-max-new-tokens", Input).value = "8"
        await pilot.press(*"Привет", "enter")
        chat = app.chat_pane
        await wait_for(pilot, lambda: chat.turn is not None and chat.turn.done is not None, timeout=30)
        await pilot.press("ctrl+c")
        reply = chat.chat.messages[-1]["content"]
        assert written[-1] == osc52(reply)
        app.action_copy_conversation()
        markdown = base64.b64decode(written[-1][len("\x1b]52;c;"):-1]).decode()
        assert "**User:** Привет" in markdown and f"**Assistant:** {reply}" in markdown
        assert markdown.splitlines()[0] == "# Привет"   # the Chat pane's Markdown export


async def run_to_the_end(pilot, focused: bool):
    app = pilot.app
    await pilot.press("f4")
    await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
    app.query_one("#train-out", Input).value = ""
    app.query_one("#train-epochs", Input).value = "0.05"
    if not focused:   # the user looks elsewhere (a key would focus the app again: F8's action)
        app.post_message(events.AppBlur())
        await wait_for(pilot, lambda: not app.app_focus)
    app.action_start_training()
    pane = app.query_one(TrainPane)
    await wait_for(pilot, lambda: pane.run is not None and not pane.run.running, timeout=90)
    await pilot.pause(0.3)
    return pane.run


@pytest.mark.parametrize("focused, switched_on, rings", [(False, True, True), (True, True, False),
                                                         (False, False, False)],
                         ids=["blurred", "focused", "switched-off"])
async def test_a_run_that_ends_while_you_look_elsewhere_rings(fresh_session, monkeypatch, focused,
                                                              switched_on, rings):
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        app.saved.notify = switched_on
        written = record_writes(app, monkeypatch)
        run = await run_to_the_end(pilot, focused)
        expected = notification(f"rugpt-tui: run #{run.number} ended", run.end_line().plain)
        assert (expected in written) is rings
        assert any(BELL in w for w in written) is rings
        assert any(f"Run #{run.number} ended" in (n.title or "") for n in app._notifications)
    if rings:
        assert expected.startswith(BELL + "\x1b]9;") and "\x1b]777;notify;" in expected


def test_train_notify_rings_at_the_end(demo_dir, tmp_path):
    from core.base.paths import corpus_path

    done = cli("train", "--model", "demo", "--train", str(corpus_path()), "--max-steps", "2", "--notify")
    assert done.returncode == 0, done.stderr
    assert "\a\x1b]9;rugpt-tui: training ended: 2 steps · stop: " in done.stderr
    quiet = cli("train", "--model", "demo", "--train", str(corpus_path()), "--max-steps", "1")
    assert "\a" not in quiet.stderr
