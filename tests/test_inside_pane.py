"""The Inside pane (ctrl+f) shows the logit lens core computes: a grid of layers × the
prompt's positions, each cell the layer's top next token, the chosen cell's top tokens and
ranks under it; it reads the prompt again as it is edited, and works at 80×24."""

import pytest
from textual.widgets import DataTable, Static, TextArea

from core.inference.inside import logit_lens, prompt_ids
from tests.helpers import wait_for
from tests.test_layout import SIZE_IDS, SIZES
from tui.panes.inside.lens import token_name
from tui.panes.inside.pane import InsidePane
from tui.render.chips import printable
from tui.shell.app import RuGPTApp


async def inside_ready(pilot, prompt: str | None = None) -> InsidePane:
    app = pilot.app
    await pilot.press("ctrl+f")
    pane = app.query_one(InsidePane)
    if prompt is not None:
        pane.query_one("#inside-prompt", TextArea).load_text(prompt)
    wanted = prompt if prompt is not None else pane.query_one("#inside-prompt", TextArea).text
    await wait_for(pilot, lambda: pane.result is not None and pane.result.prompt == wanted)
    await wait_for(pilot, pane.settled)
    return pane


async def test_the_grid_and_the_cell_show_what_core_computes(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await inside_ready(pilot, "Кот спал на печи")
        ids = prompt_ids(demo_session, "Кот спал на печи")
        lens = logit_lens(demo_session, ids, 5)
        assert [[c.top for c in row] for row in pane.result.lens] == [[c.top for c in row] for row in lens]
        grid = pane.query_one("#inside-grid", DataTable)
        assert grid.row_count == len(lens) and len(grid.columns) == len(ids) + 1
        for layer, row in enumerate(lens):
            for position, cell in enumerate(row):
                shown = grid.get_cell_at((layer, position + 1)).plain
                assert shown == printable(token_name(demo_session.tokenizer, cell.top[0][0]))[:9]
        await pilot.press("up", "left")   # from the last position's top row
        layer, column = grid.cursor_coordinate
        cell = lens[layer][column - 1]
        details = str(pane.query_one("#inside-cell", Static).render())
        token, prob = cell.top[0]
        assert f"{printable(token_name(demo_session.tokenizer, token))!r} {prob:.1%}" in details
        assert f"rank {cell.final[0]:,}" in details and f"rank {cell.actual[0]:,}" in details
        await pilot.press("ctrl+c")   # the cell's details, to the clipboard
        await wait_for(pilot, lambda: any(n.title == "Copied to your clipboard"
                                          and n.message.startswith("the chosen cell")
                                          for n in app._notifications))


async def test_a_long_prompt_is_read_where_the_grid_shows_it_and_more_as_it_scrolls(demo_session):
    prompt = " ".join(["Однажды в студёную зимнюю пору я из лесу вышел; был сильный мороз."] * 5)
    ids = prompt_ids(demo_session, prompt)
    lens = logit_lens(demo_session, ids, 5)
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await inside_ready(pilot, prompt)
        grid = pane.query_one("#inside-grid", DataTable)

        def read() -> list[int]:
            return [p for p, cell in enumerate(pane.result.lens[0]) if cell is not None]

        at_first = read()
        assert len(ids) - 1 in at_first and 0 not in at_first   # a new prompt opens at its end
        assert len(at_first) < len(ids) // 2
        await pilot.press("home")   # to the prompt's start at once: the middle is never on screen
        await wait_for(pilot, pane.settled)
        assert 0 in read() and len(ids) // 2 not in read()
        for layer, row in enumerate(lens):
            for position in read():
                assert pane.result.lens[layer][position].top == row[position].top
                shown = grid.get_cell_at((layer, position + 1)).plain
                assert shown == printable(token_name(demo_session.tokenizer, row[position].top[0][0]))[:9]
            unread = next(p for p, cell in enumerate(pane.result.lens[0]) if cell is None)
            assert grid.get_cell_at((0, unread + 1)).plain == "·"


async def test_editing_the_prompt_reads_it_again_and_a_bad_prompt_is_one_line(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await inside_ready(pilot)
        await pilot.click("#inside-prompt")
        editor = pane.query_one("#inside-prompt", TextArea)
        editor.load_text("Жили-были")
        await wait_for(pilot, lambda: pane.result.prompt == "Жили-были")
        assert len(pane.result.tokens) == len(prompt_ids(demo_session, "Жили-были"))
        editor.load_text("")
        await wait_for(pilot, lambda: "the prompt has no tokens" in
                       str(pane.query_one("#inside-cell", Static).render()))
        assert app.is_running


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_inside_snapshot(snap_compare, frozen_figures, demo_session, size):
    async def lens_shown(pilot):
        pane = await inside_ready(pilot, "Однажды в студёную зимнюю пору")
        await pilot.press("up", "left", "left")
        await wait_for(pilot, pane.settled)
        pilot.app.set_focus(None)
        await pilot.pause()
    assert snap_compare(RuGPTApp(session=demo_session), terminal_size=size, run_before=lens_shown)


async def test_ctrl_f_opens_the_inside_pane_but_in_the_lesson_unfolds_its_text(demo_session):
    from tui.panes.lesson.panel import LessonPanel

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f12")
        panel = app.query_one(LessonPanel)
        await wait_for(pilot, lambda: app.focused is panel.query_one("#lesson-answer"))
        folded = panel.is_folded()
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: panel.is_folded() != folded)
        assert app.active_tab() == "tokenize"
        await pilot.press("f2", "ctrl+f")
        await wait_for(pilot, lambda: app.active_tab() == "inside")


async def test_heads_knocked_out_from_the_palette_are_on_the_model_line_until_put_back(fresh_session):
    from tui.widgets.dialogs import AskScreen

    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await inside_ready(pilot)
        before = pane.result.lens
        await pilot.press("ctrl+p", *"Knock out heads", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"1.1 1.2", "enter")
        status = app.query_one("#model-status", Static)
        await wait_for(pilot, lambda: "heads out: 1.1 1.2" in str(status.render()))
        assert fresh_session.knocked_out == {0: (0, 1)} and "heads out: 1.1 1.2" in app.sub_title
        await wait_for(pilot, lambda: pane.result.lens != before)   # read again, without them
        await pilot.press("ctrl+p", *"Knock out heads", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"9.9", "enter")   # no such head: one line, nothing changed
        await wait_for(pilot, lambda: any("blocks of" in n.message for n in app._notifications))
        assert fresh_session.knocked_out == {0: (0, 1)}
        await pilot.press("ctrl+p", *"Put back knocked-out heads", "enter")
        await wait_for(pilot, lambda: "heads out" not in str(status.render()))
        assert fresh_session.knocked_out == {} and not fresh_session.knockout_hooks


async def test_a_shows_where_each_head_looks_and_the_chosen_heads_pattern(demo_session):
    from core.inference.inside import attention_glance

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await inside_ready(pilot, "Кот спал на печи")
        ids = prompt_ids(demo_session, "Кот спал на печи")
        await pilot.press("left", "a")   # from the next-to-last position
        await wait_for(pilot, lambda: pane.glance is not None)
        position = len(ids) - 2
        looks, _ = attention_glance(demo_session, ids, position)
        assert pane.glance.position == position and pane.glance.looks == looks
        grid = pane.query_one("#inside-grid", DataTable)
        assert grid.row_count == len(looks) and len(grid.columns) == len(looks[0]) + 1
        look = looks[1][2]
        assert grid.get_cell_at((1, 3)).plain == \
            f"{printable(pane.result.tokens[look.most])[:6]} {look.weight:.0%}"
        await pilot.press("down", "right")   # block 2, head 2
        await wait_for(pilot, lambda: pane.glance.chosen == (1, 1))
        _, pattern = attention_glance(demo_session, ids, position, chosen=(1, 1))
        assert pane.glance.pattern == pattern.tolist()
        assert "block 2 head 2" in str(pane.query_one("#inside-cell", Static).render())
        await pilot.press("a")   # the lens again
        await wait_for(pilot, lambda: grid.row_count == len(pane.result.lens))
        assert not pane.has_class("-map")


async def test_brackets_move_the_position_the_heads_look_from_and_the_heat_map_follows(demo_session):
    from core.inference.inside import attention_glance

    prompt = " ".join(["Однажды в студёную зимнюю пору я из лесу вышел; был сильный мороз."] * 3)
    ids = prompt_ids(demo_session, prompt)
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await inside_ready(pilot, prompt)
        await pilot.press("home", "right", "right", "right", "a")   # from position 2
        await wait_for(pilot, lambda: pane.glance is not None and pane.glance.position == 2)
        await pilot.press("right_square_bracket", "right_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: pane.glance.position == 3)
        looks, pattern = attention_glance(demo_session, ids, 3, chosen=pane.glance.chosen)
        assert pane.glance.looks == looks and pane.glance.pattern == pattern.tolist()
        grid = pane.query_one("#inside-grid", DataTable)
        assert "from position 3" in grid.border_title
        hint = str(pane.query_one("#inside-hint", Static).render())
        assert "[ ]: position" in hint and len(hint) <= 78   # whole at 80 columns
        shown = str(pane.query_one("#inside-cell", Static).render())
        assert "queries 0–" in shown and f"of {len(ids)}" in shown   # its start, where position 3 is
        for _ in range(len(ids)):   # never past the prompt's end
            await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: pane.glance.position == len(ids) - 1)
        assert f"–{len(ids) - 1} × keys" in str(pane.query_one("#inside-cell", Static).render())
        assert app.is_running


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_inside_attention_snapshot(snap_compare, frozen_figures, demo_session, size):
    async def heads_shown(pilot):
        pane = await inside_ready(pilot, "Однажды в студёную зимнюю пору")
        await pilot.press("a")
        await wait_for(pilot, lambda: pane.glance is not None)
        await pilot.press("down", "right")
        await wait_for(pilot, lambda: pane.glance.chosen == (1, 1))
        pilot.app.set_focus(None)
        await pilot.pause()
    assert snap_compare(RuGPTApp(session=demo_session), terminal_size=size, run_before=heads_shown)


async def test_b_marks_the_cells_where_training_changed_the_prediction(fresh_session, corpus_files):
    from core.model.session import load_session
    from core.model.weights import remember_base
    from core.training.config import TrainConfig
    from core.training.loop import train

    remember_base(fresh_session)   # as the Train pane does before a run
    train_file, test_file = corpus_files
    train(fresh_session, TrainConfig(train=str(train_file), test=str(test_file), max_steps=40,
                                     lr=3e-3, batch_size=8, block_size=32, sample_tokens=1))
    prompt = "Кот спал на печи, а пёс"
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await inside_ready(pilot, prompt)
        await pilot.press("b")
        await wait_for(pilot, lambda: pane.result.base is not None)
        ids = prompt_ids(fresh_session, prompt)
        loaded = logit_lens(load_session("demo", device="cpu"), ids, 5)
        assert [[[i for i, _ in c.top] for c in row] for row in pane.result.base] == \
            [[[i for i, _ in c.top] for c in row] for row in loaded]
        grid = pane.query_one("#inside-grid", DataTable)
        marked = {(layer, position) for layer in range(grid.row_count) for position in range(len(ids))
                  if grid.get_cell_at((layer, position + 1)).plain.startswith("•")}
        changed = {(layer, position) for layer, row in enumerate(pane.result.lens)
                   for position, cell in enumerate(row)
                   if cell.top[0][0] != loaded[layer][position].top[0][0]}
        assert marked == changed and changed   # training moved some predictions
        await pilot.press("b")
        await wait_for(pilot, lambda: pane.result.base is None)
        assert not any(grid.get_cell_at((0, p + 1)).plain.startswith("•") for p in range(len(ids)))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
async def test_b_compares_a_runs_saved_weights_with_the_model_they_were_trained_from(demo_dir, tmp_path, lora):
    """A finished run picked in the model picker (its weights on top of the model as loaded):
    the lens is of the run's weights, and b marks where the model it started from predicted
    otherwise."""
    from pathlib import Path

    from core.model.session import load_session
    from core.model.weights import load_with_weights
    from core.training.config import TrainConfig
    from core.training.loop import train

    corpus = str(Path(__file__).resolve().parents[1] / "core/resources/corpus_ru.txt")
    out = tmp_path / "run"
    train(load_session("demo", device="cpu"), TrainConfig(train=corpus, out=str(out), max_steps=30, lr=1e-2,
                                                            batch_size=8, block_size=32, lora=lora, seed=0))
    session = load_with_weights("demo", str(out), device="cpu")   # as the model picker loads a run
    prompt = "Кот спал на печи, а пёс"
    ids = prompt_ids(session, prompt)
    run_lens = logit_lens(load_with_weights("demo", str(out), device="cpu"), ids, 5)
    loaded = logit_lens(load_session("demo", device="cpu"), ids, 5)
    app = RuGPTApp(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await inside_ready(pilot, prompt)
        await pilot.press("b")
        await wait_for(pilot, lambda: pane.result.base is not None)
        await wait_for(pilot, pane.settled)
        tops = lambda rows: [[c.top[0][0] if c is not None else None for c in row] for row in rows]  # noqa: E731
        assert tops(pane.result.lens) == tops(run_lens) and tops(pane.result.base) == tops(loaded)
        grid = pane.query_one("#inside-grid", DataTable)
        marked = {(layer, position) for layer in range(grid.row_count) for position in range(len(ids))
                  if grid.get_cell_at((layer, position + 1)).plain.startswith("•")}
        changed = {(layer, position) for layer, row in enumerate(run_lens) for position, cell in enumerate(row)
                   if cell.top[0][0] != loaded[layer][position].top[0][0]}
        assert marked == changed and changed   # the run moved some predictions


async def test_k_among_the_heads_shows_each_heads_knock_out_effect(demo_session):
    from core.inference.inside import head_knockouts

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await inside_ready(pilot, "Кот спал на печи")
        await pilot.press("a")
        await wait_for(pilot, lambda: pane.glance is not None)
        await pilot.press("k")
        await wait_for(pilot, lambda: pane.glance.delta is not None)
        ids = prompt_ids(demo_session, "Кот спал на печи")
        _, delta = head_knockouts(demo_session, ids, pane.result.lens[-1][-1].top[0][0])
        assert pane.glance.delta == delta
        grid = pane.query_one("#inside-grid", DataTable)
        assert grid.get_cell_at((1, 2)).plain == f"{delta[1][1]:+.3f}"
        await pilot.press("k")
        await wait_for(pilot, lambda: pane.glance.delta is None)
        assert "%" in grid.get_cell_at((1, 2)).plain
