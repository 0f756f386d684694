"""Every screen at every size: 80×24 (the SSH default), 120×40 and 200×60 snapshots of each
pane and the help screen; nothing a user must read or type is cut at 80×24; resizing during a
run lays the app out again; the Train pane draws at a bounded rate."""

import pytest
from rich.cells import cell_len
from textual.widgets import Input, TextArea

from core.model.session import load_session
from tests.helpers import start_unsaved_run, wait_for
from tests.test_train_pane import Gate
from tui.panes.generate import GeneratePane
from tui.panes.tokenize.pane import TokenizePane
from tui.panes.train.pane import TrainPane
from tui.shell.app import RuGPTApp
from tui.widgets.stream import TokenStream

SIZES = [(80, 24), (120, 40), (200, 60)]
SIZE_IDS = [f"{w}x{h}" for w, h in SIZES]


async def tokenize_ready(pilot):
    pane = pilot.app.query_one(TokenizePane)
    await wait_for(pilot, lambda: pane.view is not None)
    await pilot.pause()


async def after_a_generation(pilot):
    app = pilot.app
    await pilot.press("f3")
    area = app.query_one("#gen-prompt", TextArea)
    area.focus()
    area.clear()
    await pilot.press(*"Жил-был")
    app.query_one("#gen-max-new-tokens", Input).value = "30"
    app.query_one("#gen-seed", Input).value = "7"
    pane = app.query_one(GeneratePane)
    await pilot.press("f5")
    await wait_for(pilot, lambda: pane.run is not None and pane.run.done is not None)
    await wait_for(pilot, lambda: "(1, " in str(app.query_one("#gen-inspector").render()))
    app.query_one(TokenStream).focus()
    await pilot.press("end", "left", "left")
    await pilot.pause()


def training_mid_run(gate):
    async def run_before(pilot):
        app = pilot.app
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-out", Input).value = ""
        await pilot.press("f8")
        pane = app.query_one(TrainPane)
        await wait_for(pilot, lambda: gate.reached.is_set(), timeout=60)
        await wait_for(pilot, lambda: len(pane.run.steps) == 12 and pane.run.events.caught_up()
                       and pane.hardware is not None)
        # what the bounded-rate painters show within a second or two, drawn now
        pane.paint_now()
        app.set_focus(None)
        await pilot.pause(0.5)
    return run_before


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_tokenize_snapshot(snap_compare, frozen_figures, demo_session, size):
    assert snap_compare(RuGPTApp(session=demo_session), terminal_size=size, run_before=tokenize_ready)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_generate_snapshot_after_a_generation(snap_compare, frozen_figures, demo_session, size):
    assert snap_compare(RuGPTApp(session=demo_session), terminal_size=size, run_before=after_a_generation)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_train_snapshot_mid_run(snap_compare, frozen_figures, demo_dir, size):
    session = load_session("demo", device="cpu")
    gate = Gate(session.model, after_steps=12)
    try:
        assert snap_compare(RuGPTApp(session=session), terminal_size=size,
                            run_before=training_mid_run(gate))
    finally:
        gate.open()


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_help_snapshot(snap_compare, frozen_figures, demo_session, size):
    async def open_help(pilot):
        await tokenize_ready(pilot)
        await pilot.press("f1")
        await pilot.pause()
    assert snap_compare(RuGPTApp(session=demo_session), terminal_size=size, run_before=open_help)


def test_side_panels_at_80x24_snapshot(snap_compare, frozen_figures, demo_session):
    """ctrl+g: the Generate pane's side panels (why this token, next token, history)."""
    async def panels(pilot):
        await after_a_generation(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()
    assert snap_compare(RuGPTApp(session=demo_session), terminal_size=(80, 24), run_before=panels)


def labels_cut(app, pane: str) -> list[str]:
    """Labels of the settings on the pane showing, narrower on screen than their text."""
    cut = []
    screen = app.screen.region
    for widget in app.query_one(f"#{pane}").query(
            "LabeledInput > Label, .train-switch > Static, .train-select > Static, #gen-greedy-box > Static"):
        if not all(getattr(node, "display", True) for node in widget.ancestors_with_self):
            continue   # folded away (the LoRA row with LoRA off)
        text = str(widget.render())
        region = widget.content_region
        for ancestor in widget.ancestors:   # what a grid cell or a pane clips off is cut too
            if hasattr(ancestor, "region") and ancestor is not app.screen:
                region = region.intersection(ancestor.region)
        if region.width < cell_len(text) or not screen.contains_region(region):
            cut.append(text)
    return cut


async def test_nothing_a_user_reads_or_types_is_cut_at_80x24(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await tokenize_ready(pilot)
        assert app.screen.has_class("-narrow") and app.screen.has_class("-short")
        # the main views get room: chips, output, chart
        assert app.query_one("#tok-chips").region.height >= 8
        await pilot.press("f3")
        await pilot.pause()
        assert labels_cut(app, "generate") == []
        assert app.query_one("#gen-output-box").region.height >= 8
        for field in app.query("#gen-settings Input"):
            assert field.region.width >= 6 and app.screen.region.contains_region(field.region)
        await pilot.press("f4")
        await pilot.pause()
        assert labels_cut(app, "train") == []
        status = app.query_one("#train-status")   # the idle hint, whole: every key it names
        assert len(str(status.render())) <= status.content_region.width, str(status.render())
        out = app.query_one("#train-out", Input)
        assert out.region.width >= 22   # with patience and keep-best beside it in the grid…
        assert out.cursor_position == len(out.value)   # …its end, the folder's name, in view
        chart = app.query_one("#train-chart").region.height
        assert chart >= 8 and all(chart >= w.region.height for w in app.query("#train-left > *"))
        app.query_one("#train-lora").value = True   # the adapter's row, whole too
        await pilot.pause()
        assert app.query_one("#train-lora-row").display and labels_cut(app, "train") == []
        assert app.query_one("#train-lora-targets", Input).region.width >= 20
        assert app.query_one("#train-chart").region.height >= 7
        # every key in the footer, the pane keys first
        keys = [k for k in app.query("FooterKey") if k.display]
        assert [k.key_display for k in keys][:5] == ["^q", "f1", "f2", "f3", "f4"]
        assert all(app.screen.region.contains_region(k.region) for k in keys)
        # the help table fits the width
        await pilot.press("f1")
        await pilot.pause()
        table = app.screen.query_one("#help-keys")
        assert table.region.right <= 80 and app.screen.query_one("#help-box").region.width <= 80


async def test_resizing_during_a_run_lays_the_app_out_again(fresh_session):
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await start_unsaved_run(pilot, "300", steps=2)
        right = app.query_one("#train-right")
        assert right.region.width > 0

        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: app.screen.has_class("-narrow") and app.screen.has_class("-short")
                       and right.region.width == 0)
        assert right.region.width == 0 and app.query_one("#train-chart").region.width >= 70
        steps = len(pane.run.steps)
        await wait_for(pilot, lambda: len(pane.run.steps) > steps + 2, timeout=60)
        await pilot.press("ctrl+g")            # the log and runs, in place of the settings
        await wait_for(pilot, lambda: right.region.width >= 70)
        assert right.region.width >= 70 and app.query_one("#train-left").region.width == 0

        await pilot.resize_terminal(200, 60)
        await wait_for(pilot, lambda: app.screen.has_class("-wide") and app.screen.has_class("-tall")
                       and app.query_one("#train-left").region.width > 100)
        assert right.region.width > 0 and app.query_one("#train-left").region.width > 100
        assert pane.training
        await pilot.press("f9")
        await wait_for(pilot, lambda: not pane.training, timeout=30)


async def test_the_train_pane_draws_at_a_bounded_rate(fresh_session, monkeypatch):
    """However many steps arrive, the chart is drawn about once a second and the status line
    about twice a second (what an SSH link has to carry), and the last state is drawn."""
    import time

    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TrainPane)
        drawn = {"chart": 0, "status": 0}
        chart, status = pane.draw_chart, pane._paint_status
        monkeypatch.setattr(pane, "draw_chart", lambda: (drawn.__setitem__("chart", drawn["chart"] + 1), chart()))
        monkeypatch.setattr(pane, "_paint_status", lambda: (drawn.__setitem__("status", drawn["status"] + 1), status()))
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-out", Input).value = ""
        app.query_one("#train-epochs", Input).value = "300"
        start = time.monotonic()
        await pilot.press("f8")
        await wait_for(pilot, lambda: pane.run is not None and len(pane.run.steps) >= 60, timeout=120)
        await pilot.press("f9")
        await wait_for(pilot, lambda: not pane.training, timeout=30)
        await pilot.pause(0.2)
        seconds = time.monotonic() - start
        steps = len(pane.run.steps)
        assert steps >= 60
        # paced draws plus a few one-offs (the run listed, the final state, the list refilled,
        # a resize): 9 draws in 5.7 s were seen on a fast run
        assert drawn["chart"] <= seconds / 1.0 + 5 < steps
        assert drawn["status"] <= seconds / 0.5 + 3 < steps
        shown = str(app.query_one("#train-status").render())
        assert f"{pane.run.result.steps} steps" in shown    # the final state, drawn


def test_a_paint_whose_timer_fires_after_it_was_cancelled_is_dropped():
    """paint_now() cancels the waiting paints; a stopped timer may still fire once."""
    from types import SimpleNamespace

    from tui.panes.train.run import PaintPacer

    fired = []

    class Owner:
        def set_timer(self, wait, callback):
            fired.append(callback)
            return SimpleNamespace(stop=lambda: None)

    painted = []
    pacer = PaintPacer(Owner())
    pacer.soon("chart", 1.0, lambda: painted.append("first"))    # never painted: at once
    pacer.soon("chart", 1.0, lambda: painted.append("second"))   # too soon: waits
    pacer.cancel()
    fired[0]()
    assert painted == ["first"]


SWEEP = [(80, 24), (90, 26), (100, 30), (110, 35), (120, 40), (160, 50), (250, 70)]


@pytest.mark.parametrize("size", SWEEP, ids=[f"{w}x{h}" for w, h in SWEEP])
async def test_no_label_is_cut_at_any_size(demo_session, size):
    """Between the breakpoints too: at 100×30 the Train pane used to cut five labels."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=size) as pilot:
        await tokenize_ready(pilot)
        for key, pane in (("f2", "tokenize"), ("f3", "generate"), ("f4", "train"), ("f10", "chat")):
            await pilot.press(key)
            await pilot.pause()
            assert labels_cut(app, pane) == [], (size, pane)
        app.query_one("#train-lora").value = True   # and the adapter's row
        await pilot.press("f4")
        await pilot.pause()
        assert labels_cut(app, "train") == [], (size, "train with LoRA")


def plot_rows(chart) -> int:
    """Rows of the loss chart that draw curves: its lines, less the x axis's tick labels
    (and the plot's own frame, drawn on tall charts)."""
    lines = str(chart.render()).splitlines()
    framed = bool(lines) and lines[0].strip().startswith("┌")
    return len(lines) - (3 if framed else 1)


@pytest.mark.parametrize("data", ["texts", "dialogues"])
async def test_the_loss_chart_keeps_six_rows_at_80x24(fresh_session, data, tmp_path, monkeypatch):
    """Before, during and after a run, on texts or dialogues, with the offline notice shown."""
    from tests.helpers import ROOT

    monkeypatch.chdir(tmp_path)
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(80, 24)) as pilot:
        app.windows.show_notice("ai-forever/rugpt3small_based_on_gpt2 is not cached and the hub cannot "
                         "be reached: running on the demo model")
        await pilot.press("f4")
        if data == "dialogues":
            app.query_one("#train-data", Input).value = str(ROOT / "core/resources/dialogues_ru.jsonl")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        if data == "dialogues":
            await wait_for(pilot, lambda: "dialogues" in str(app.query_one("#train-preview").render()))
        chart = app.query_one("#train-chart")
        app.query_one("#train-epochs", Input).value = "0.3"
        await wait_for(pilot, lambda: plot_rows(chart) >= 6)
        pane = app.query_one(TrainPane)
        await pilot.press("f8")
        await wait_for(pilot, lambda: pane.run is not None and len(pane.run.steps) >= 2, timeout=60)
        pane.paint_now()
        await wait_for(pilot, lambda: plot_rows(chart) >= 6)
        await wait_for(pilot, lambda: not pane.training, timeout=120)
        await wait_for(pilot, lambda: "finished" in str(app.query_one("#train-status").render()),
                       timeout=5)
        await wait_for(pilot, lambda: plot_rows(chart) >= 6)


async def test_the_notice_takes_one_row_and_can_be_hidden(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        text = ("ai-forever/rugpt3small_based_on_gpt2 is not cached and the hub cannot be "
                "reached: running on the demo model")
        app.windows.show_notice(text)
        await pilot.pause()
        notice = app.query_one("#notice")
        assert notice.display and notice.region.height == 1 and notice.tooltip == text
        assert any(n.message == text for n in app._notifications)   # said whole once
        await pilot.click("#notice")
        await pilot.pause()
        assert not notice.display
        app.windows.show_notice(text)   # the same notice again (a workspace problem re-said): stays hidden
        await pilot.pause()
        assert not notice.display
        app.windows.show_notice("another notice")
        await pilot.pause()
        assert notice.display
        await pilot.press("ctrl+p", *"Hide notice", "enter")
        await wait_for(pilot, lambda: not notice.display)


async def test_the_help_shows_quit_and_the_palette_on_its_first_screen_at_80x24(demo_session):
    """F1 at the SSH default size: the keys that matter most are readable without scrolling,
    each on one line (the key column never wraps); every other key is reached by scrolling."""
    from tests.helpers import screen_text
    from tui.widgets.help import KEYS

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        shown = screen_text(app)
        for keys, what in KEYS[0][1][:4]:   # quit, the palette, the panes, the help
            assert any(keys in row and what[:20] in row for row in shown.splitlines()), (keys, shown)
        box = app.screen.query_one("#help-box")
        assert box.max_scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y and "Palette (ctrl+p), by name" in screen_text(app)
