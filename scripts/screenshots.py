"""Write SVG screenshots of the real app (demo model) into screenshots/ for the README.

    python scripts/screenshots.py
"""

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A workspace of its own: the screenshots never read or change your settings and history.
os.environ["RUGPT_TUI_HOME"] = tempfile.mkdtemp(prefix="rugpt-tui-screenshots-")


async def wait_for(pilot, predicate, timeout=60.0):
    waited = 0.0
    while not predicate():
        await pilot.pause(0.05)
        waited += 0.05
        if waited > timeout:
            raise TimeoutError("the app did not get there in time")


async def lesson_shot(size: tuple[int, int], name: str, out: Path) -> None:
    from core.model.session import load_session
    from tui.panes.tokenize.pane import TokenizePane
    from tui.shell.app import RuGPTApp

    app = RuGPTApp(session=load_session("demo", device="cpu"), lesson=True)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.panes_ready() and app.focused is not None
                       and app.focused.id == "lesson-answer")
        pane = app.query_one(TokenizePane)
        await wait_for(pilot, lambda: pane.view is not None and pane.view.text == "Сосиска в тексте")
        await pilot.press(*"кот", "enter")
        await wait_for(pilot, lambda: "кот" in str(app.query_one("#lesson-verdict").render()))
        await pilot.pause(0.3)
        app.save_screenshot(name, str(out))


async def inside_shot(out: Path) -> None:
    """The Inside pane on the demo after a short fine-tune on its corpus (the untrained demo
    only echoes its input), at 140×45 and 80×24."""
    from textual.widgets import TextArea

    from core.base.paths import resource
    from core.model.session import load_session
    from core.training.config import TrainConfig
    from core.training.loop import train
    from tui.panes.inside.pane import InsidePane
    from tui.shell.app import RuGPTApp

    session = load_session("demo", device="cpu")
    train(session, TrainConfig(train=str(resource("corpus_ru.txt")), max_steps=300, lr=3e-3,
                               batch_size=8, block_size=64, sample_tokens=1, eval_every=1000))
    prompt = "Нейронная сеть учится предсказывать следующее"
    for size, name in (((140, 45), "inside.svg"), ((80, 24), "inside-80x24.svg")):
        app = RuGPTApp(session=session)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, app.panes_ready)
            await pilot.press("ctrl+f")
            inside = app.query_one(InsidePane)
            inside.query_one("#inside-prompt", TextArea).load_text(prompt)
            await wait_for(pilot, lambda pane=inside: pane.result is not None and pane.result.prompt == prompt)
            await pilot.press("up", "left")
            await wait_for(pilot, inside.settled)
            await pilot.pause(0.5)
            app.save_screenshot(name, str(out))


async def main() -> None:
    from textual.widgets import Input, SelectionList, TextArea

    from core.model.session import load_session
    from tui.panes.chat.pane import ChatPane
    from tui.panes.generate import GeneratePane
    from tui.panes.tokenize.pane import TokenizePane
    from tui.panes.train.pane import TrainPane
    from tui.panes.train.samples import SamplesScreen
    from tui.shell.app import RuGPTApp
    from tui.shell.models.compare import CompareScreen, CompareSetupScreen
    from tui.widgets.stream import TokenStream

    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    app = RuGPTApp(session=load_session("demo", device="cpu"))
    async with app.run_test(size=(140, 45)) as pilot:
        tok = app.query_one(TokenizePane)
        await wait_for(pilot, lambda: tok.view is not None)
        area = app.query_one("#tok-input", TextArea)
        area.load_text("Нейронная сеть учится предсказывать следующее слово.\n"
                       "Привет, мир! 😀 Ёжик бежал по тропинке.")
        await wait_for(pilot, lambda: tok.view.text.startswith("Нейронная") and "Ёжик" in tok.view.text)
        app.save_screenshot("tokenize.svg", str(out))

        await pilot.press("f4")
        train = app.query_one(TrainPane)
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-out", Input).value = ""
        # two runs of the demo's corpus, a slower learning rate first, overlaid in the chart
        app.query_one("#train-lr", Input).value = "5e-4"
        await pilot.pause(0.5)
        await pilot.press("f8")
        await wait_for(pilot, lambda: train.run is not None and not train.run.running, timeout=300)
        app.action_reset_weights()   # the second run starts from the same base weights
        app.query_one("#train-lr", Input).value = "3e-3"
        app.query_one("#train-out", Input).value = tempfile.mkdtemp(prefix="rugpt-tui-run-")
        await pilot.pause(0.5)
        await pilot.press("f8")
        await wait_for(pilot, lambda: len(train.runs) == 2 and not train.run.running, timeout=300)
        await pilot.pause(0.3)
        app.save_screenshot("train-run.svg", str(out))
        app.query_one("#train-runs", SelectionList).select_all()
        await pilot.pause(0.5)
        app.save_screenshot("train.svg", str(out))

        # what the model is trained on: the rows as the batches carry them
        await pilot.press("ctrl+w")
        await wait_for(pilot, lambda: isinstance(app.screen, SamplesScreen))
        await pilot.pause(0.3)
        app.save_screenshot("samples.svg", str(out))
        await pilot.press("escape")

        # the demo against the saved run: held-out loss and the same prompt side by side
        app.action_compare_models()
        await wait_for(pilot, lambda: isinstance(app.screen, CompareSetupScreen) and app.screen.choices)
        for value in (0, 1):
            app.screen.query_one("#cmp-models", SelectionList).select(value)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        await wait_for(pilot, lambda: all("·" in line for line in compare.lines) and not compare.workers,
                       timeout=300)
        await pilot.pause(0.3)
        app.save_screenshot("compare.svg", str(out))
        await pilot.press("escape")

        await pilot.press("f3")
        gen = app.query_one(GeneratePane)
        app.query_one("#gen-seed", Input).value = "7"
        prompt = app.query_one("#gen-prompt", TextArea)
        prompt.load_text("Летом мы")
        await pilot.press("f5")
        await wait_for(pilot, lambda: gen.run is not None and gen.run.done is not None)
        app.query_one(TokenStream).focus()
        await pilot.press("end", "left", "left")
        await pilot.pause(0.5)
        app.save_screenshot("generate.svg", str(out))

        # chat-and-train: the demo fine-tuned on its dialogues, then a conversation with it
        await pilot.press("f4")
        app.action_reset_weights()
        app.query_one("#train-data", Input).value = "core/resources/dialogues_ru.jsonl"
        await wait_for(pilot, lambda: "dialogues" in str(app.query_one("#train-preview").render())
                       or "samples" in str(app.query_one("#train-preview").render()))
        await pilot.pause(1.0)
        await pilot.press("f8")
        await wait_for(pilot, lambda: len(train.runs) == 3 and not train.run.running, timeout=600)
        await pilot.press("f10")
        chat = app.query_one(ChatPane)
        app.query_one("#chat-seed", Input).value = "1"
        app.query_one("#chat-input").focus()
        for question in ("Где спал кот?", "Что делала бабушка утром?"):
            app.query_one("#chat-input", TextArea).load_text(question)
            await pilot.press("enter")
            await wait_for(pilot, lambda: chat.turn is not None and chat.turn.done is not None)
            await pilot.pause(0.3)
        app.save_screenshot("chat.svg", str(out))
        await pilot.press("ctrl+w")
        await pilot.pause(1.0)
        app.save_screenshot("chat-seen.svg", str(out))
        await pilot.press("ctrl+w")

        # the same session in an 80×24 terminal, the SSH default
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.5)
        app.save_screenshot("chat-80x24.svg", str(out))
        await pilot.press("f3")
        await pilot.pause(0.5)
        app.save_screenshot("generate-80x24.svg", str(out))
        await pilot.press("f4")
        await pilot.pause(0.5)
        app.save_screenshot("train-80x24.svg", str(out))
        await pilot.press("f2")
        await pilot.pause(0.5)
        app.save_screenshot("tokenize-80x24.svg", str(out))

    # the lesson: its first step answered, at 120×40 and 80×24
    for size, name in (((120, 40), "lesson.svg"), ((80, 24), "lesson-80x24.svg")):
        await lesson_shot(size, name, out)
    await inside_shot(out)
    print(f"screenshots written to {out}")


async def queue_shot(out: Path) -> None:
    """A sweep of three learning rates run by the queue's runner, one more run waiting in a
    paused queue, and the Queue window over the Train pane (ctrl+u), at 120×36 and 80×24."""
    import subprocess
    import time

    from core.model.session import load_session
    from core.queue.items import RunQueue
    from core.queue.runner import runner_pid
    from core.store.database import Store
    from tui.panes.train.queue_view import QueueScreen
    from tui.shell.app import RuGPTApp

    corpus = str(ROOT / "core/resources/corpus_ru.txt")
    rugpt = [sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train", corpus]
    subprocess.run([*rugpt, "--sweep", "lr=1e-3,3e-3,1e-2", "--max-steps", "60", "--eval-every", "20"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    queue = RunQueue(Store.open())
    while queue.items() or runner_pid() is not None:
        time.sleep(0.5)
    queue.pause()
    subprocess.run([*rugpt, "--lora", "--queue"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    for size, name in (((120, 36), "queue.svg"), ((80, 24), "queue-80x24.svg")):
        app = RuGPTApp(session=load_session("demo", device="cpu"))
        async with app.run_test(size=size) as pilot:
            await pilot.press("f4", "ctrl+u")
            await wait_for(pilot, lambda app=app: isinstance(app.screen, QueueScreen)
                           and "sweep 1" in str(app.screen.query_one("#queue-sweep").render()))
            await pilot.pause(0.5)
            app.save_screenshot(name, str(out))
    print(f"queue screenshots written to {out}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--inside"]:   # only the Inside pane's
        asyncio.run(inside_shot(ROOT / "screenshots"))
    elif sys.argv[1:] == ["--queue"]:   # only the Queue window's
        asyncio.run(queue_shot(ROOT / "screenshots"))
    else:
        asyncio.run(main())
