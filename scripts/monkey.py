"""The exploratory monkey: random seeds, for as long as you like, outside the test suite.

    .venv/bin/python scripts/monkey.py                  # 3 random seeds, 60 s each
    .venv/bin/python scripts/monkey.py --seeds 7 --seconds 300 --bursts

The app runs under Pilot on the demo model in a throwaway workspace, a run training and a
reply streaming, while tests/monkey.py's monkey presses keys, pastes, opens palette commands
and resizes. With `--bursts` keys go without waiting for the app, as a terminal sends them,
so races between keys are tried too (a seed then does not replay exactly). The suite's own
monkey (tests/test_monkey.py) plays fixed seeds for a fixed number of actions instead.
Exit 0 when every seed left the app running with no error caught, 1 otherwise; a failing
seed prints its actions and the error log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["RUGPT_TUI_HOME"] = tempfile.mkdtemp(prefix="rugpt-tui-monkey-home-")


async def play(seed: int, seconds: float, bursts: bool) -> bool:
    from textual.widgets import Input

    from core.model.session import load_session
    from core.store.workspace import error_log_path
    from tests import monkey as monkeys
    from tui.panes.train.pane import TrainPane
    from tui.shell.app import RuGPTApp

    app = RuGPTApp(session=load_session("demo", device="cpu"))
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.panes_ready():
            await pilot.pause(0.05)
        monkey = monkeys.Monkey(pilot, seed)
        if bursts:   # keys as a terminal sends them: the app is not waited for
            monkey.keys = lambda *keys: monkeys.burst(app, *keys)
        await monkey.keys("f4")
        await pilot.pause(1)
        app.query_one("#train-epochs", Input).value = "50"
        await monkey.keys("f8")
        pane = app.query_one(TrainPane)
        end = time.monotonic() + 60
        while not (pane.training and pane.run.steps) and time.monotonic() < end:
            await pilot.pause(0.1)
        await monkey.keys("f10", *"Привет", "enter")
        end = time.monotonic() + seconds
        while time.monotonic() < end and app.is_running:
            await monkey.step()
        ok = app.is_running and not app.guard.caught
        if not ok:
            print(f"seed {seed}: {'errors ' + str(app.guard.caught) if app.is_running else 'the app ended'}")
            for number, action in enumerate(monkey.log, 1):
                print(f"  {number:5d} {action}")
            if error_log_path().exists():
                print(error_log_path().read_text())
        if app.is_running:
            app.exit()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")],
                        default=[random.randrange(100_000) for _ in range(3)])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bursts", action="store_true", help="keys without waiting for the app")
    args = parser.parse_args()
    from tui.process.guard import ErrorGuard

    ErrorGuard.strict = False   # survived errors are counted, not raised
    failed = []
    for seed in args.seeds:
        print(f"seed {seed}: {args.seconds:.0f} s{' of bursts' if args.bursts else ''}…", flush=True)
        if not asyncio.run(play(seed, args.seconds, args.bursts)):
            failed.append(seed)
    print("all seeds passed" if not failed else f"failed seeds: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
