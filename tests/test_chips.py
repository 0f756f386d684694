"""Chip labels and how chips flow into lines (no Textual needed), and the ChipView widget."""

import pytest
from rich.cells import cell_len

from tests.helpers import tokenize_pane, wait_for
from tui.render.chips import ChipMaker, flow_chips, label_for, make_chip


def test_labels_make_invisible_characters_visible():
    assert label_for("Ġa", " a", b" a", False, False) == "·a"
    assert label_for("ĉ", "\t", b"\t", False, False) == "⇥"
    assert label_for("č", "\r", b"\r", False, False) == "␍"
    assert label_for("Ċ", "\n", b"\n", False, False) == "↵\n"
    assert label_for("x", "\x07", b"\x07", False, False) == "␇"
    assert label_for("x", "\u0301", "\u0301".encode(), False, False) == "◌\u0301"
    assert label_for("ð", "", b"\xf0", False, False) == "‹f0›"
    assert label_for("</s>", "</s>", b"</s>", True, False) == "</s>"
    assert label_for("ÐŁ", "П", "П".encode(), False, True) == "ÐŁ"   # raw pieces on demand


def test_sentencepiece_chips_show_markers_and_bytes():
    """`▁` a tokenizer added before a word shows as ▁ (it stands for no character), a typed
    space as ·, byte-fallback pieces as their bytes until the one that completes the character."""
    from core.tokens.view import tokenize_view
    from tests.families import llama_tokenizer

    view = tokenize_view(llama_tokenizer(), "ъ 😀")
    labels = [label for label, *_ in ChipMaker(raw=False, show_ids=False).chips(view)]
    assert labels == ["<s>", "▁", "ъ", "·", "‹f0›", "‹9f›", "‹98›", "😀"]
    raw = [label for label, *_ in ChipMaker(raw=True, show_ids=False).chips(view)]
    assert raw == ["<s>", "▁", "ъ", "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]


def chip(label, tag=""):
    return make_chip(label, 0, tag)


def test_flow_wraps_at_chip_boundaries():
    chips = [chip("abcd")] * 5
    lines, owners = flow_chips(chips, 10)
    assert [len(line) for line in lines] == [2, 2, 1]
    assert owners == [[0, 1], [2, 3], [4]]
    assert all(sum(c[3] for c in line) <= 10 for line in lines)


def test_flow_breaks_after_newline_tokens_and_cuts_long_chips():
    lines, owners = flow_chips([chip("a"), chip("↵\n"), chip("b"), chip("x" * 25)], 10)
    texts = ["".join(c[0] for c in line) for line in lines]
    assert texts == ["a↵", "b", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxx"]
    assert owners[0] == [0, 1] and owners[2:] == [[3], [3], [3]]


def test_flow_counts_wide_characters_and_ids():
    chips = [chip("日本", "12"), chip("日本", "13"), chip("日本", "14")]
    lines, _ = flow_chips(chips, 13)
    assert all(sum(cell_len(c[0]) + len(c[2]) for c in line) <= 13 for line in lines)
    assert [len(line) for line in lines] == [2, 1]


@pytest.mark.parametrize("width", [1, 2, 3, 7, 40])
def test_flow_keeps_every_character(width):
    chips = [chip(s) for s in ["привет", "·мир", "↵\n", "↵\n↵\n", "😀", "a" * 50, "b"]]
    lines, owners = flow_chips(chips, width)
    shown = "".join(c[0] for line in lines for c in line)
    assert shown == "".join(c[0].replace("\n", "") for c in chips)
    assert all(sum(c[3] for c in line) <= max(width, 2) for line in lines)
    flat = [o for line in owners for o in line]
    assert flat == sorted(flat)


def test_chip_maker_reuses_chips(demo_session):
    from core.tokens.view import tokenize_view

    maker = ChipMaker(raw=False, show_ids=True)
    view = tokenize_view(demo_session.tokenizer, "мир и мир и мир")
    first = maker.chips(view)
    again = maker.chips(tokenize_view(demo_session.tokenizer, "мир и мир и мир"))
    assert all(a is b for a, b in zip(first, again))
    assert first[0][2] == str(view.ids[0])


async def test_typing_at_the_end_redraws_only_the_last_line(demo_session):
    from tui.panes.tokenize.chipview import ChipView

    text = " ".join(["нейронная сеть"] * 60)
    async with tokenize_pane(demo_session) as (app, pilot, pane, area):
        chips = app.query_one(ChipView)
        area.load_text(text)
        area.move_cursor(area.document.end)
        await wait_for(pilot, lambda: pane.view.text == text)
        await pilot.pause()
        assert len(chips.text().splitlines()) > 5
        before = chips.lines_drawn
        await pilot.press("я")
        await wait_for(pilot, lambda: pane.view.text == text + "я")
        await pilot.pause()
        assert 1 <= chips.lines_drawn - before <= 2   # the last line (and maybe its neighbour)
        # the token under the cursor is the one just typed into, and it is in view
        assert chips._cursor == len(pane.view.ids) - 1
        assert chips.lines_of(chips._cursor)[-1] in range(round(chips.scroll_y),
                                                         round(chips.scroll_y) + chips.size.height)


async def test_text_and_tokens_are_drawn_in_one_frame(demo_session):
    async with tokenize_pane(demo_session) as (app, pilot, _, area):
        area.move_cursor(area.document.end)
        await pilot.pause(0.2)
        screen, frames = app.screen, []
        refresh = screen._compositor_refresh

        def recording_refresh():
            frames.append({w.id for w in screen._dirty_widgets})
            refresh()

        screen._compositor_refresh = recording_refresh
        for key in "абв":
            frames.clear()
            await pilot.press(key)
            await pilot.pause(0.1)
            with_text = [f for f in frames if "tok-input" in f]
            assert with_text and {"tok-chips", "tok-stats"} <= with_text[0]


async def test_costly_views_are_built_on_a_worker_and_end_exact(demo_session, monkeypatch):
    """Past the inline budget (very long texts) views are built on a worker thread; keys
    typed meanwhile are folded into the next build, and the last view is exact."""
    import threading

    from tui.panes.tokenize import pane as pane_module

    threads = []
    real = pane_module.build_state

    def recording_build(*args):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(*args)

    monkeypatch.setattr(pane_module, "build_state", recording_build)
    monkeypatch.setattr(pane_module.TokenizePane, "INLINE_BUDGET_S", 0.0)
    async with tokenize_pane(demo_session) as (app, pilot, pane, area):
        area.move_cursor(area.document.end)
        threads.clear()
        await pilot.press(*"мир сети", "backspace")
        await wait_for(pilot, lambda: pane.view.text == area.text and not pane._building)
        assert area.text.endswith("мир сет")
        assert pane.view.ids == demo_session.tokenizer(area.text)["input_ids"]
        assert threads and not any(threads)   # every build ran off the UI thread
        assert app.query_one("#tok-chips").text().replace("\n", "").endswith("·сет")


@pytest.mark.parametrize("budget", [1.0, 0.0])  # inline, then on the worker
async def test_a_failing_tokenizer_is_reported_in_one_line(demo_session, monkeypatch, budget):
    from tui.panes.tokenize import pane as pane_module

    async with tokenize_pane(demo_session) as (app, pilot, pane, area):
        monkeypatch.setattr(pane_module.TokenizePane, "INLINE_BUDGET_S", budget)

        def broken(*args):
            raise RuntimeError("vocabulary file is gone\nsecond line")

        monkeypatch.setattr(pane_module, "build_state", broken)
        area.focus()
        await pilot.press("я")
        stats = app.query_one("#tok-stats")
        await wait_for(pilot, lambda: "cannot tokenize" in str(stats.render()))
        assert "RuntimeError: vocabulary file is gone" in str(stats.render())
        assert "second line" not in str(stats.render())
        assert app.is_running and not pane._building


def test_control_characters_a_model_writes_are_shown_not_sent():
    """Generated text can hold any byte-level token, ESC included: it is drawn as a symbol,
    never sent to the terminal as an escape sequence."""
    from tui.render.chips import printable

    assert printable("a\x1b[2Jb\x07\n\tc\x9b\x7f") == "a␛[2Jb␇\n\tc\ufffd␡"
