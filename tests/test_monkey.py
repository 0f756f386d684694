"""Random use never ends the app: a seeded monkey (tests/monkey.py) over every pane while a
run trains and a reply streams — keys, palette commands, pastes, resizes, a fixed number of
them, each handled before the next, so a seed replays the same actions. Afterwards nothing
went wrong (not even an error the app survived), the app still answers a key, its memory
stayed bounded, and it quits. Random seeds, for as long as you like: scripts/monkey.py."""

import os

import pytest
from textual.widgets import Input

from core.base.host_memory import resident_bytes
from core.model.session import load_session
from core.store.workspace import error_log_path
from tests.helpers import wait_for
from tests.monkey import Monkey
from tui.panes.train.pane import TrainPane
from tui.process.guard import ErrorGuard
from tui.shell.app import RuGPTApp
from tui.widgets.dialogs import QuitWhileTrainingScreen
from tui.widgets.help import HelpScreen

# RUGPT_TUI_MONKEY_SEEDS=7,8 RUGPT_TUI_MONKEY_ACTIONS=1000 replays or extends it
SEEDS = [int(s) for s in os.environ.get("RUGPT_TUI_MONKEY_SEEDS", "1,2,3,4").split(",")]
ACTIONS = int(os.environ.get("RUGPT_TUI_MONKEY_ACTIONS", "150"))
MEMORY_GROWTH_LIMIT = 600 << 20


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_monkey_never_ends_the_app(seed, demo_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # whatever it saves or exports lands here
    monkeypatch.setattr(ErrorGuard, "strict", False)   # survived errors are counted below
    app = RuGPTApp(session=load_session("demo", device="cpu"))
    monkey = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            monkey = Monkey(pilot, seed)
            pane = app.query_one(TrainPane)
            await monkey.keys("f4")
            await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
            app.query_one("#train-epochs", Input).value = "50"   # trains all along
            await monkey.keys("f8")
            await wait_for(pilot, lambda: pane.training and len(pane.run.steps) >= 1, timeout=60)
            await monkey.keys("f10", *"Привет", "enter")   # and a reply streams
            memory_before = resident_bytes()

            await monkey.play(ACTIONS)

            assert app.is_running, "the app ended"
            assert app.guard.caught == [], "errors inside the app"
            assert resident_bytes() - memory_before < MEMORY_GROWTH_LIMIT
            # it still answers keys: Esc closes whatever windows are open, F1 opens the help
            for _ in range(10):
                if len(app.screen_stack) == 1:
                    break
                await monkey.keys("escape")
                await pilot.pause(0.3)
            assert len(app.screen_stack) == 1
            await monkey.keys("f1")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), timeout=20)
            # and quits (without saving, when a run still trains)
            await monkey.keys("ctrl+q")
            await wait_for(pilot, lambda: not app.is_running
                           or isinstance(app.screen, QuitWhileTrainingScreen), timeout=20)
            if app.is_running:
                await monkey.keys("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=30)
    except BaseException:
        print(f"monkey seed {seed} (replay: RUGPT_TUI_MONKEY_SEEDS={seed} "
              f"RUGPT_TUI_MONKEY_ACTIONS={ACTIONS} pytest tests/test_monkey.py); "
              f"errors {app.guard.caught}; its {len(monkey.log) if monkey else 0} actions:")
        for number, action in enumerate(monkey.log if monkey else [], 1):
            print(f"  {number:4d} {action}")
        if error_log_path().exists():
            print("the error log's last entry:", error_log_path().read_text().split("--- ")[-1])
        raise
