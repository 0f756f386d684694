"""Nothing inside the app ends it: the chart draws any losses, windows never stack twice or
close twice, and an error nobody foresaw is shown as one line while a run goes on."""

import math

import pytest
from textual.app import App
from textual.command import CommandList, CommandPalette
from textual.widgets import Input

from core.store.workspace import error_log_path
from tests.helpers import wait_for
from tests.monkey import burst
from tui.panes.train.pane import TrainPane
from tui.panes.train.run import Curve, LossChart
from tui.process.guard import ErrorGuard
from tui.shell.app import RuGPTApp
from tui.widgets.dialogs import AskScreen, BeforeAfterScreen
from tui.widgets.help import HelpScreen
from tui.widgets.windows import Palette

LOSSES = {
    "empty": [],
    "one point": [(0, 2.0)],
    "constant": [(0, 1.0), (1, 1.0), (2, 1.0)],
    "negative": [(0, -1.0), (1, -2.0)],
    "zero": [(0, 0.0), (1, 1.0)],
    "nan": [(0, math.nan), (1, 1.0)],
    "infinite": [(0, math.inf), (1, 1.0)],
    "only nan": [(0, math.nan)],
    "huge range": [(0, 1e300), (1, 1e-300)],
}


class ChartHost(App):
    def compose(self):
        yield LossChart()


@pytest.mark.parametrize("log_scale", [False, True], ids=["linear", "log"])
async def test_the_loss_chart_draws_any_losses(log_scale):
    """plotext itself fails on most of these (a log scale with no point or a point ≤ 0,
    an infinity): the chart draws what can be drawn."""
    app = ChartHost()
    async with app.run_test(size=(60, 20)):
        chart = app.query_one(LossChart)
        for name, points in LOSSES.items():
            chart.draw([Curve("#1", points, points), Curve("#2", points[:1], [])], log_scale)
            drawn = str(chart.render())
            assert "cannot draw" not in drawn, name


async def test_a_second_palette_never_opens_over_a_window(demo_session):
    """The palette open, ctrl+b answers later: its window waits for the palette to close,
    and ctrl+p meanwhile opens no second palette (it crashed with DuplicateIds)."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("ctrl+b")   # a priority key: it acts under the palette
        await wait_for(pilot, lambda: app.windows.waiting, timeout=30)
        assert isinstance(app.screen, CommandPalette)   # the answer did not cover it
        await pilot.press("ctrl+p")
        assert sum(isinstance(s, CommandPalette) for s in app.screen_stack) == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BeforeAfterScreen))
        await pilot.press("escape")
        assert len(app.screen_stack) == 1


async def test_a_window_closes_once(demo_session):
    """Enter (answered through a message) and Esc (a binding) pressed together both close
    the dialog they were meant for: the second close used to take the window under it, or
    fail on the spent result and leave the command palette stuck open."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        answers = []
        app.push_screen(AskScreen("Title?", "x"), answers.append)
        await pilot.pause()
        ask = app.screen
        ask.dismiss("x")
        ask.dismiss(None)
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and answers == ["x"]
        await pilot.press("escape", "ctrl+p")
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        palette.dismiss()
        palette.dismiss()   # raised InvalidStateError, the palette staying open
        await pilot.pause()
        assert len(app.screen_stack) == 1
        for answers in (["enter", "escape"], ["escape", "enter"]):   # as a terminal sends them
            await pilot.press("ctrl+p")
            await burst(app, *"Toggle raw", *answers)
            await pilot.pause(0.5)
            assert len(app.screen_stack) == 1


async def test_a_pane_key_under_a_window_leaves_the_window_its_keys(demo_session):
    """F10 pressed while the help is open switches the tab behind it, and Esc still closes
    the help (the chat's message box took the help's focus, and with it every key). A palette
    closed and opened again at once never meets the old one on its way out."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f10")
        assert app.query_one("#tabs").active == "chat"
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert app.focused is app.query_one("#chat-input")
        for _ in range(5):
            await burst(app, "ctrl+p", "escape", "ctrl+p")
            await pilot.pause()
            assert sum(isinstance(s, CommandPalette) for s in app.screen_stack) <= 1
            await pilot.press("escape")
            await pilot.pause()


async def test_an_error_inside_the_app_is_one_line_and_the_run_goes_on(fresh_session, monkeypatch,
                                                                       tmp_path):
    """A fault nobody foresaw — here the chart fails every time it draws, during a run — is
    shown once as a notification, its traceback kept in the error log; the run trains to its
    end, and the app still answers keys and quits."""
    monkeypatch.setattr(ErrorGuard, "strict", False)
    monkeypatch.chdir(tmp_path)
    draw = LossChart.draw

    def failing_draw(self, curves, log_scale=False, by_tokens=False):
        if curves and curves[0].steps:
            raise RuntimeError("the chart broke")
        draw(self, curves, log_scale, by_tokens)
    monkeypatch.setattr(LossChart, "draw", failing_draw)
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TrainPane)
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-epochs", Input).value = "0.5"
        await pilot.press("f8")
        await wait_for(pilot, lambda: pane.run is not None and pane.run.result is not None, timeout=90)
        await pilot.pause(0.5)
        assert app.is_running and pane.run.error is None and pane.run.result.stop_reason == "done"
        assert app.guard.caught and set(app.guard.caught) == {"RuntimeError: the chart broke"}
        toasts = [n.message for n in app._notifications if "the chart broke" in n.message]
        assert len(toasts) == 1   # said once, however often it happened
        assert "RuntimeError: the chart broke" in error_log_path().read_text(encoding="utf-8")
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "ctrl+q")
        await wait_for(pilot, lambda: not app.is_running)


async def test_a_worker_that_fails_is_one_line_too(demo_session, monkeypatch):
    monkeypatch.setattr(ErrorGuard, "strict", False)
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        def fails():
            raise ValueError("a worker broke")
        app.run_worker(fails, thread=True)   # exit_on_error: Textual would end the app
        await wait_for(pilot, lambda: app.guard.caught)
        assert app.guard.caught == ["ValueError: a worker broke"] and app.is_running


async def test_damaged_weights_are_one_line_not_a_crash(fresh_session):
    """A run with a learning rate of 1e9 leaves weights that are not numbers: generating from
    them says so in one line (it failed deep in sampling before), in every pane."""
    import torch

    from core.inference.generation import DAMAGED, generate_stream
    from core.inference.sampling import SamplingSettings

    with torch.no_grad():
        next(fresh_session.model.parameters()).fill_(float("inf"))
    with pytest.raises(Exception) as caught:
        list(generate_stream(fresh_session, "Кот", SamplingSettings(max_new_tokens=3)))
    assert str(caught.value) == DAMAGED
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3", "ctrl+b")
        await wait_for(pilot, lambda: any(n.message == DAMAGED for n in app._notifications))
        await pilot.press("f5")
        await wait_for(pilot, lambda: DAMAGED[:40] in str(app.query_one("#gen-stats").render()))


@pytest.mark.parametrize("kind", [Palette, CommandPalette], ids=["ours", "textual's"])
async def test_palette_keys_at_the_wrong_moment(kind):
    """PageDown/PageUp while the palette's list is hidden with a highlighted option and no
    lines laid out (Textual's OptionList fails with KeyError there: a monkey met it), and
    keys (↓, PgDn, Enter) that reach the palette once its list is gone, as when it is taken
    down: the app's palette ignores them; Textual's own raises, which this test also checks,
    so it fails when Textual fixes it upstream and the palette can go."""

    class Host(App):
        def action_command_palette(self) -> None:
            self.push_screen(kind(id="--command-palette"))

    errors = []
    for keys in (["pagedown", "pageup"], ["down", "pagedown", "enter"]):
        app = Host()
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.press("ctrl+p")
                commands = app.screen.query_one(CommandList)
                await wait_for(pilot, lambda c=commands: c.option_count > 0)
                if keys[0] == "pagedown":
                    commands.display = False   # no match yet: the list hidden
                    await pilot.pause()
                    commands.clear_options()
                    commands.add_options(["one", "two", "three"])
                    commands.highlighted = 1
                else:
                    await commands.remove()    # the palette is being taken down
                await pilot.press(*keys)
                assert isinstance(app.screen, kind)
        except Exception as error:   # noqa: BLE001 - what Textual's palette raises
            errors.append(type(error).__name__)
    assert errors == ([] if kind is Palette else ["KeyError", "NoMatches"])


FATAL = """
import sys
from tui.process.guard import ErrorGuard
from tui.shell.app import RuGPTApp
ErrorGuard.catches = lambda self, error: False     # an error nothing can survive
mount = RuGPTApp.on_mount
def on_mount(self):
    mount(self)
    self.set_timer(0.5, broken)
def broken():
    raise RuntimeError("the app broke")
RuGPTApp.on_mount = on_mount
app = RuGPTApp(model="demo")
app.run(headless=True)
sys.exit(app.return_code)
"""


def test_an_error_nothing_survives_ends_the_app_with_one_line(demo_dir):
    """What the guard cannot survive ends the app with exit code 1 and one line naming the
    error and the error log — never a traceback on screen."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    result = subprocess.run([sys.executable, "-c", FATAL], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    said = " ".join(result.stderr.split())   # the line as Rich wrapped it
    assert said.startswith("rugpt-tui: internal error: RuntimeError: the app broke (the traceback "
                           f"is in {error_log_path()})"), said
    assert "Traceback" not in result.stderr + result.stdout
    assert "RuntimeError: the app broke" in error_log_path().read_text(encoding="utf-8")
