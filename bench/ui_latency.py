"""Key press → updated screen, in the real app (Pilot), idle and while a training run goes.

Each key is typed into the Tokenize pane's editor as the terminal driver delivers it; the
latency runs until the pane has redrawn its tokens for the new text.
    python -m bench.ui_latency [--keys 150]
"""

import argparse
import asyncio

from bench.common import demo_session, pct, type_into_tokenize_pane


async def measure(keys: int):
    from textual.widgets import Input, TextArea

    from tui.panes.tokenize.pane import TokenizePane
    from tui.panes.train.pane import TrainPane
    from tui.shell.app import RuGPTApp

    app = RuGPTApp(session=demo_session())
    async with app.run_test(size=(140, 45)) as pilot:
        tok = app.query_one(TokenizePane)
        while tok.view is None:
            await asyncio.sleep(0.01)
        await pilot.pause(2.5)  # the app settles its heap once the load is over and all is quiet
        area = app.query_one("#tok-input", TextArea)
        area.focus()
        area.move_cursor(area.document.end)
        idle = (await type_into_tokenize_pane(app, pilot, keys)).view

        train = app.query_one(TrainPane)
        app.query_one("#train-epochs", Input).value = "10000"
        app.query_one("#train-out", Input).value = ""
        await pilot.pause(0.6)   # the data preview settles
        train.start()
        while not train.run.steps:
            await asyncio.sleep(0.01)
        area.focus()
        busy = (await type_into_tokenize_pane(app, pilot, keys)).view
        steps = len(train.run.steps)
        train.stop()
        while train.training:
            await asyncio.sleep(0.01)
    return idle, busy, steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=150)
    args = parser.parse_args()
    idle, busy, steps = asyncio.run(measure(args.keys))
    print(f"idle           p50 {pct(idle, 50) * 1000:6.2f} ms   p99 {pct(idle, 99) * 1000:6.2f} ms")
    print(f"while training p50 {pct(busy, 50) * 1000:6.2f} ms   p99 {pct(busy, 99) * 1000:6.2f} ms"
          f"   ({steps} training steps meanwhile; target p99 ≤ 50 ms)")


if __name__ == "__main__":
    main()
