"""The Generate pane driven by Pilot, as a user would: type, F5, stop, walk over tokens."""

import functools
import threading

from textual.widgets import Input, OptionList, Switch, TextArea

from tests.helpers import wait_for
from tui.panes.generate import GeneratePane
from tui.render.chips import printable
from tui.shell.app import RuGPTApp
from tui.widgets.stream import ChoiceInfo, TokenStream


async def set_prompt(pilot, text):
    area = pilot.app.query_one("#gen-prompt", TextArea)
    area.focus()
    area.clear()
    await pilot.press(*text)


def set_field(app, field_id, value):
    app.query_one(f"#{field_id}", Input).value = value


async def test_generate_stop_inspect_and_history(fresh_family_session):
    demo_session = fresh_family_session
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(130, 42)) as pilot:
        await pilot.press("f3")
        pane = app.query_one(GeneratePane)
        await set_prompt(pilot, "Жил-был")
        set_field(app, "gen-max-new-tokens", "24")
        app.query_one("#gen-greedy", Switch).value = True
        await pilot.press("f5")
        await wait_for(pilot, lambda: pane.run is not None and pane.run.done is not None)
        await pilot.pause()
        done = pane.run.done
        assert done.new_tokens == 24 and done.stop_reason == "length"
        # same ids as the core loop gives for the same prompt and settings
        from core.inference.generation import generate_stream
        from core.inference.sampling import SamplingSettings

        *_, ref = generate_stream(demo_session, "Жил-был", SamplingSettings(greedy=True, max_new_tokens=24))
        assert done.ids == ref.ids
        stream = app.query_one(TokenStream)
        assert len(stream.tokens) == 24
        assert printable(done.text) in str(stream.render())   # control characters shown, not sent
        assert "24 tokens" in str(app.query_one("#gen-stats").render())

        # walk over the tokens: the probability and alternatives of the chosen one
        stream.focus()
        await pilot.press("end")
        await pilot.press("left")
        info = str(app.query_one(ChoiceInfo).render())
        chosen = stream.tokens[22]
        assert f"id {chosen.id}" in info and f"p = {chosen.prob:.4f}" in info

        # a long sampled run, stopped with F6 mid-way: the model is held inside its 6th
        # forward until the key has been handled, so the stop lands at a known point
        set_field(app, "gen-max-new-tokens", "200")
        app.query_one("#gen-greedy", Switch).value = False
        model = demo_session.model
        original, calls, held = model.forward, [], threading.Event()

        @functools.wraps(original)
        def slow_forward(*args, **kwargs):
            calls.append(1)
            if len(calls) == 6:
                held.wait(30)
            return original(*args, **kwargs)

        model.forward = slow_forward
        try:
            await pilot.press("f5")
            await wait_for(pilot, lambda: len(calls) >= 6)
            await pilot.press("f6")
            held.set()
            await wait_for(pilot, lambda: pane.run.done is not None)
        finally:
            held.set()
            model.forward = original
        assert pane.run.done.stop_reason == "cancel"
        assert pane.run.done.new_tokens == 6

        # F7 repeats the last run with its seed; history keeps every run
        seed = pane.run.done.seed
        set_field(app, "gen-max-new-tokens", "10")
        await pilot.press("f7")
        await wait_for(pilot, lambda: pane.run.done is not None)
        first_again = pane.run.done
        await pilot.press("f7")
        await wait_for(pilot, lambda: pane.run.done is not None and pane.run.done is not first_again)
        assert pane.run.done.seed == first_again.seed == seed
        assert pane.run.done.ids == first_again.ids
        assert app.query_one("#gen-history", OptionList).option_count == 4


async def test_bad_setting_is_one_line_error(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(130, 42)) as pilot:
        await pilot.press("f3")
        set_field(app, "gen-top-p", "abc")
        await pilot.press("f5")
        await pilot.pause()
        pane = app.query_one(GeneratePane)
        assert pane.run is None
        assert any("top-p" in n.message for n in app._notifications)


async def test_inspector_shows_logits_shape(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(130, 42)) as pilot:
        await pilot.press("f3")
        await set_prompt(pilot, "Модель")
        n = len(demo_session.tokenizer("Модель")["input_ids"])
        expected = f"(1, {n}, {demo_session.model.config.vocab_size})"
        await wait_for(pilot, lambda: expected in str(app.query_one("#gen-inspector").render()))
