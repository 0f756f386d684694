"""The Chat pane driven by keys as a user would: send, stop, regenerate, edit the last
message, switch conversations, export; snapshots at 80×24 and 120×40."""

import functools
import json
import threading

import pytest
from textual.widgets import Input

from core.model.session import load_session
from core.store.conversations import ChatStore
from tests.helpers import wait_for
from tui.panes.chat.pane import ChatPane
from tui.panes.chat.widgets import ChatInput, Transcript
from tui.shell.app import RuGPTApp


async def open_chat(pilot, max_new="8", seed="1"):
    app = pilot.app
    await wait_for(pilot, lambda: app.session is not None and app.chat_pane.chat is not None)
    await pilot.press("f10")
    app.query_one("#chat-max-new-tokens", Input).value = max_new
    app.query_one("#chat-seed", Input).value = seed
    app.query_one(ChatInput).focus()
    return app.query_one(ChatPane)


async def say(pilot, pane: ChatPane, text: str):
    for key in text:
        await pilot.press(key if key != " " else "space")
    await pilot.press("enter")
    await wait_for(pilot, lambda: pane.turn is not None and pane.turn.done is not None, timeout=30)
    await pilot.pause()


async def test_send_regenerate_edit_switch_and_export(demo_session, tmp_path):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot)
        await say(pilot, pane, "Привет")
        assert [m["role"] for m in pane.chat.messages] == ["user", "assistant"]
        assert pane.query_one(ChatInput).text == ""   # Enter sent it and cleared the box
        first = pane.chat.messages[1]["content"]
        await say(pilot, pane, "Как дела")
        assert pane.turn.done.turn == 2 and pane.turn.done.reused_tokens > 0
        assert "reused" not in str(app.query_one("#chat-stats").render())
        assert "from the cache" in str(app.query_one("#chat-stats").render())

        # F7: the last reply again, with another seed
        app.query_one("#chat-seed", Input).value = "2"
        turn = pane.turn
        await pilot.press("f7")
        await wait_for(pilot, lambda: pane.turn is not turn and pane.turn.done is not None)
        assert len(pane.chat.messages) == 4

        # ↑ in the empty box: the last message comes back to edit; Enter answers it again
        pane.query_one(ChatInput).focus()
        await pilot.press("up")
        assert pane.query_one(ChatInput).text == "Как дела" and pane.editing
        await pilot.press("ctrl+j", "Н", "у")   # a new line in the message
        turn = pane.turn
        await pilot.press("enter")
        await wait_for(pilot, lambda: pane.turn is not turn and pane.turn.done is not None)
        assert pane.chat.messages[2]["content"] == "Как дела\nНу" and len(pane.chat.messages) == 4

        # stored as it went; a new chat, then back to the first one
        chats = ChatStore(app.store)
        (stored,) = chats.list()
        assert stored["turns"] == 2 and chats.get(stored["id"])["messages"] == pane.chat.messages
        await pilot.press("ctrl+n")
        assert pane.chat.messages == [] and pane.conversation_id is None
        await say(pilot, pane, "Кот")
        assert len(chats.list()) == 2
        listing = app.query_one("#chat-list")
        listing.highlighted = [c["id"] for c in pane._conversations].index(stored["id"])
        listing.action_select()
        await pilot.pause()
        assert pane.conversation_id == stored["id"] and pane.chat.messages[0]["content"] == "Привет"
        assert first != "" and "Привет" in str(app.query_one(Transcript).render())

        # ctrl+b: the last message, in its conversation, answered by base and current weights
        from tui.widgets.dialogs import BeforeAfterScreen

        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, BeforeAfterScreen), timeout=30)
        result = app.screen.result
        assert result.prompt.startswith("Пользователь: Привет\n") and result.prompt.endswith(
            "Пользователь: Как дела\nНу\nАссистент:")
        assert result.before == result.after   # nothing trained: the same answer
        await pilot.press("escape")

        # export: a new file only, never over one of the user's
        pane.export_to(str(tmp_path / "chat.jsonl"))
        exported = json.loads((tmp_path / "chat.jsonl").read_text(encoding="utf-8"))
        assert [m["role"] for m in exported["messages"]] == ["user", "assistant", "user", "assistant"]
        mine = tmp_path / "mine.md"
        mine.write_text("my notes", encoding="utf-8")
        pane.export_to(str(mine))
        assert mine.read_text(encoding="utf-8") == "my notes"


async def test_stop_at_once_and_what_the_model_sees(demo_dir):
    """Esc while a reply streams: it ends at the next step. The model is held inside its
    fourth forward (the Generate pane's next-token look counts too) until Esc has been
    pressed, so the test does not race the machine."""
    session = load_session("demo", device="cpu")   # its own: its forward is wrapped
    held, release, calls = threading.Event(), threading.Event(), []
    original = session.model.forward

    @functools.wraps(original)   # keeps the signature the decode loop inspects
    def forward(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            held.set()
            release.wait(10)
        return original(*args, **kwargs)
    session.model.forward = forward
    app = RuGPTApp(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot, max_new="200")
        for key in "Привет":
            await pilot.press(key)
        await pilot.press("enter")
        await wait_for(pilot, held.is_set)   # tokens streaming, the next one on its way
        await pilot.press("escape")
        release.set()
        await wait_for(pilot, lambda: pane.turn.done is not None, timeout=30)
        assert pane.turn.done.stop_reason == "cancel" and pane.turn.done.new_tokens <= 4
        await pilot.press("ctrl+w")
        await wait_for(pilot, lambda: "Пользователь" in str(app.query_one("#chat-seen").render()))
        meter = app.query_one("#chat-log-box").border_subtitle
        assert "/ 256 tokens" in meter and "plain-ru" in meter


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_chat_snapshot(snap_compare, frozen_figures, demo_session, size):
    async def a_conversation(pilot):
        pane = await open_chat(pilot, max_new="12", seed="3")
        await say(pilot, pane, "Привет")
        await say(pilot, pane, "Кот спал")
        pilot.app.set_focus(None)
        await pilot.pause()
    assert snap_compare(RuGPTApp(session=demo_session), terminal_size=size, run_before=a_conversation)


async def test_a_reply_that_starts_with_blanks_has_one_space_after_its_label(demo_session):
    """A trained model often starts its reply with a token that is only a space: the label's
    own space is the one drawn (it showed `Модель:  Инженер`), while streaming and after;
    the kept message, and so an export, has none of its own."""
    from core.inference.generation import TokenEvent
    from core.store.conversations import export_markdown

    def token(text):
        return TokenEvent(step=0, id=0, text=text, prob=0.5, top=[])

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        transcript = app.query_one(Transcript)
        user = {"role": "user", "content": "Что делал инженер?"}
        transcript.show([user], [token(" "), token(" Инженер"), token(" чинил")])
        assert "Модель: Инженер чинил" in transcript.render().plain
        transcript.show([user], [token("\n"), token(" "), token(" ")])   # blanks only, so far
        assert transcript.render().plain.endswith("Модель: ")
    async with RuGPTApp(session=demo_session).run_test(size=(80, 24)) as pilot:
        pane = await open_chat(pilot)
        await say(pilot, pane, "Привет")
        reply = pane.chat.messages[-1]
        assert reply["role"] == "assistant" and reply["content"] == reply["content"].strip()
        text = pilot.app.query_one(Transcript).render().plain
        assert "Модель:  " not in text
        chat = {"title": "t", "model": "demo", "template": "plain-ru", "updated": "now",
                "messages": pane.chat.messages}
        assert f"**Assistant:** {reply['content']}" in export_markdown(chat)
