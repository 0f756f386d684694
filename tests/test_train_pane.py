"""The Train pane, driven as a user would, and training beside generation."""

import functools
import threading

import torch
from textual.widgets import Input, OptionList

from core.base.paths import corpus_path
from core.inference.generation import generate_stream
from core.inference.sampling import SamplingSettings
from core.model.session import load_session
from core.training.config import TrainConfig
from core.training.events import Saved
from core.training.loop import train
from tests.helpers import screen_text, start_unsaved_run, wait_for
from tui.panes.train.pane import TrainPane
from tui.shell.app import RuGPTApp


class Gate:
    """Blocks the training thread inside its (n+1)-th training forward until released, so a
    test sees the pane at an exact step."""

    def __init__(self, model, after_steps: int) -> None:
        self.model, self.after = model, after_steps
        self.seen = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        self.original = model.forward

        @functools.wraps(self.original)   # keeps the signature the decode loop inspects
        def forward(*args, **kwargs):
            # a training batch: not the memory plan's probe (one row, no attention mask)
            if model.training and "attention_mask" in kwargs:
                self.seen += 1
                if self.seen > self.after:
                    self.reached.set()
                    from textual.worker import get_current_worker

                    worker = get_current_worker()
                    # held until released or until the app shuts down (it cancels the worker)
                    while not self.release.wait(0.05) and not worker.is_cancelled:
                        pass
            return self.original(*args, **kwargs)

        model.forward = forward

    def open(self) -> None:
        self.release.set()
        self.model.forward = self.original


async def start_training(pilot, epochs: str, out: str = "") -> TrainPane:
    """F4, wait for the data preview, set epochs and output folder, F8."""
    app = pilot.app
    await pilot.press("f4")
    await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
    app.query_one("#train-out", Input).value = out
    app.query_one("#train-epochs", Input).value = epochs
    await pilot.press("f8")
    return app.query_one(TrainPane)


async def test_train_from_the_pane_stop_and_save(fresh_family_session, tmp_path):
    fresh_session = fresh_family_session
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f4")
        pane = app.query_one(TrainPane)
        # the sample corpus is preselected for the demo model, its statistics previewed
        from pathlib import Path

        assert Path(app.query_one("#train-data", Input).value).resolve() == corpus_path().resolve()
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-out", Input).value = str(tmp_path / "run")
        app.query_one("#train-epochs", Input).value = "100"
        await pilot.press("f8")
        await wait_for(pilot, lambda: pane.run is not None and len(pane.run.evals) >= 1, timeout=60)
        await pilot.pause(0.3)
        # status and log are drawn at a bounded rate: within a second or two
        await wait_for(pilot, lambda: "tok/s" in str(app.query_one("#train-status").render()))
        assert "step" in str(app.query_one("#train-status").render())
        await wait_for(pilot, lambda: "eval loss" in "\n".join(
            str(line.text) for line in app.query_one("#train-log").lines))
        # save now, while it runs
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any(isinstance(e, Saved) for e in pane.run.events.items), timeout=60)
        assert (tmp_path / "run" / "model.safetensors").exists()
        await pilot.press("f9")
        await wait_for(pilot, lambda: not pane.run.running, timeout=30)
        assert pane.run.result.stop_reason == "cancel"
        await pilot.pause()
        assert "cancel" in str(app.query_one("#train-runs", OptionList).get_option_at_index(0).prompt)
        # the saved folder loads as a model
        model_class = type(fresh_session.model).__name__
        assert load_session(str(tmp_path / "run"), device="cpu").info.model_class == model_class


async def test_bad_data_path_is_one_line_in_the_preview(demo_session, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ок"}\n{"input": \n', encoding="utf-8")
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f4")
        app.query_one("#train-data", Input).value = str(bad)
        await wait_for(pilot, lambda: "bad.jsonl:2: bad JSON" in str(app.query_one("#train-preview").render()))
        await pilot.press("f8")
        await wait_for(pilot, lambda: not app.query_one(TrainPane).training)
        run = app.query_one(TrainPane).run
        assert run is not None and "bad.jsonl:2" in run.error


async def test_generate_and_chat_while_training_and_tabs_do_not_stop_it(fresh_session):
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await start_training(pilot, "200")
        await wait_for(pilot, lambda: len(pane.run.steps) >= 2, timeout=60)
        await pilot.press("f3")          # switch away: training goes on
        from tui.panes.generate import GeneratePane

        gen = app.query_one(GeneratePane)
        await pilot.press("f5")
        await wait_for(pilot, lambda: gen.run is not None and gen.run.done is not None, timeout=60)
        assert gen.run.done.new_tokens > 0
        # chat too: each turn between training steps, and weights that moved on since the
        # last turn are never read from a stale cache
        await pilot.press("f10")
        chat = app.chat_pane
        app.query_one("#chat-max-new-tokens", Input).value = "4"
        for text in ("Привет", "Кот"):
            if chat.turn is not None:   # a step between the turns: the weights moved on
                version = fresh_session.weights_version
                await wait_for(pilot, lambda v=version: fresh_session.weights_version > v, timeout=30)
            chat.query_one("#chat-input").load_text(text)
            chat.query_one("#chat-input").focus()
            turn = chat.turn
            await pilot.press("enter")
            await wait_for(pilot, lambda t=turn: chat.turn is not t and chat.turn.done is not None,
                           timeout=60)
            assert chat.turn.done.new_tokens > 0 and chat.turn.done.reused_tokens == 0
        steps_then = len(pane.run.steps)
        await wait_for(pilot, lambda: len(pane.run.steps) > steps_then + 2, timeout=60)
        assert pane.training
        await pilot.press("f9")
        await wait_for(pilot, lambda: not pane.training, timeout=30)


async def test_quit_during_training_asks_and_exits_fast(fresh_session, tmp_path):
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await start_training(pilot, "1000", str(tmp_path / "saved"))
        await wait_for(pilot, lambda: len(pane.run.steps) >= 2, timeout=60)
        await pilot.press("ctrl+q")
        await pilot.pause()
        from tui.widgets.dialogs import QuitWhileTrainingScreen

        assert isinstance(app.screen, QuitWhileTrainingScreen)
        await pilot.press("s")          # save and quit: after the current step, not the run's end
        await wait_for(pilot, lambda: not pane.run.running, timeout=30)
        done = pane.run.result
        assert done.stop_reason == "cancel" and done.steps < pane.run.last_step.total_steps / 10
    assert (tmp_path / "saved" / "model.safetensors").exists()
    assert not [t for t in threading.enumerate() if t.is_alive() and "train" in t.name.lower()]


async def test_the_quit_question_names_its_keys_at_80x24(demo_session):
    from tui.widgets.dialogs import QuitWhileTrainingScreen

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(QuitWhileTrainingScreen())
        await pilot.pause()
        shown = screen_text(app)
        for label in ("Save and quit [s]", "Quit without saving [q]", "Cancel [esc]"):
            assert label in shown, shown


async def test_before_after_and_reset(fresh_session):
    from core.inference.compare import before_after
    from tui.widgets.dialogs import BeforeAfterScreen

    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await start_training(pilot, "0.5")
        await wait_for(pilot, lambda: pane.run is not None and not pane.run.running, timeout=120)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, BeforeAfterScreen), timeout=30)
        result = app.screen.result
        assert result.before != result.after   # training changed what the model says
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"Reset to base weights")
        await pilot.press("enter")
        await pilot.pause()
        from dataclasses import replace

        from tui.panes.generate import GeneratePane

        settings = replace(app.query_one(GeneratePane).read_settings(), seed=result.seed)
        again = before_after(fresh_session, result.prompt, settings)
        assert again.after == again.before == result.before


def test_interleaved_generation_leaves_training_bit_identical(demo_dir):
    """Same seeds, dropout off: generating from the model while it trains changes nothing."""
    config = TrainConfig(train=str(corpus_path()), epochs=0.5, lr=3e-3, batch_size=8,
                         block_size=32, seed=4, sample_tokens=6)
    quiet = load_session("demo", device="cpu")
    train(quiet, config)

    busy = load_session("demo", device="cpu")
    generations = []

    def talk() -> None:
        while not finished.is_set():
            *_, done = generate_stream(busy, "Это", SamplingSettings(seed=len(generations), max_new_tokens=8))
            generations.append(done)

    finished = threading.Event()
    talker = threading.Thread(target=talk)
    talker.start()
    try:
        train(busy, config)
    finally:
        finished.set()
        talker.join()
    assert len(generations) >= 3
    expected = quiet.model.state_dict()
    for name, tensor in busy.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


async def test_path_completion(tmp_path):
    from tui.widgets.fields import PathSuggester

    (tmp_path / "тексты.jsonl").write_text("{}", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    suggest = PathSuggester()
    assert await suggest.get_suggestion(str(tmp_path / "тек")) == str(tmp_path / "тексты.jsonl")
    assert await suggest.get_suggestion(str(tmp_path / "fo")) == str(tmp_path / "folder") + "/"
    assert await suggest.get_suggestion(str(tmp_path / "nothing-like-this")) is None


async def test_the_block_field_follows_the_kind_of_data(demo_session, tmp_path):
    """Dialogues in the data field: the block left at the texts' default (the demo's 32)
    becomes the dialogues' (the whole context) and the preview drops no turn; texts again
    bring 32 back; a block the user typed stays, and the preview says what it drops."""
    from core.base.paths import resource

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        data, block = app.query_one("#train-data", Input), app.query_one("#train-block-size", Input)
        preview = app.query_one("#train-preview")
        await wait_for(pilot, lambda: "samples" in str(preview.render()))
        assert block.value == "32"
        data.value = str(resource("dialogues_ru.jsonl"))
        await wait_for(pilot, lambda: block.value == "256" and "conversations" in str(preview.render()),
                       timeout=60)
        await pilot.pause(1.0)
        assert "left out" not in str(preview.render())
        data.value = str(resource("corpus_ru.txt"))
        await wait_for(pilot, lambda: block.value == "32")
        block.value = "48"
        data.value = str(resource("dialogues_ru.jsonl"))
        await wait_for(pilot, lambda: "oldest turns left out" in str(preview.render()), timeout=60)
        assert block.value == "48"


async def test_a_data_path_too_long_for_the_system_is_one_line(demo_session):
    """A name longer than the file system allows (a paste gone wrong) is an error line in the
    preview, not an error inside the app (strict in tests: it would fail this test)."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        app.query_one("#train-data", Input).value = "../" + "Ё" * 3000 + ".jsonl"
        await wait_for(pilot, lambda: "too long" in str(app.query_one("#train-preview").render()).lower()
                       or "no such file" in str(app.query_one("#train-preview").render()).lower())


async def test_no_model_loads_under_a_training_run(fresh_session):
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await start_unsaved_run(pilot, "50")
        assert pane.training
        app.load_model("demo")
        await pilot.pause(0.5)
        assert app.session is fresh_session and pane.training
        assert any("stop it first" in n.message for n in app._notifications)
        await pilot.press("f9")
        await wait_for(pilot, lambda: not pane.training, timeout=60)


async def test_the_fsdp_switch_shows_with_several_processes_and_counts_only_then(demo_session):
    from textual.widgets import Switch

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        form = app.train_pane.form
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        assert not app.query_one("#train-fsdp-box").display   # one process: nothing to shard over
        app.query_one("#train-processes", Input).value = "2"
        await pilot.pause(0.2)
        assert app.query_one("#train-fsdp-box").display and app.query_one("#train-lora-row").display
        assert not any(f.display for f in app.query(".lora-setting"))   # LoRA is off
        app.query_one("#train-fsdp", Switch).value = True
        await wait_for(pilot, lambda: "a process (FSDP ×2)" in str(app.query_one("#train-preview").render()))
        assert form.read_config().fsdp
        app.query_one("#train-processes", Input).value = "1"
        await pilot.pause(0.2)
        assert not app.query_one("#train-lora-row").display and not form.read_config().fsdp


def test_the_data_preview_counts_one_of_a_kind_in_the_singular():
    from tui.panes.train.run import preview_text

    stats = {"train": {"samples": 1, "tokens": 1, "longest": 1, "truncated": 0},
             "test": {"samples": 2000, "tokens": 16263}, "train_rows": 1, "test_rows": 2,
             "eval_rows": 2, "eval_tokens": 16263}
    line = str(preview_text(stats, 32, pack=True))
    assert "train 1 sample · 1 token ·" in line and "→ 1 block of ≤ 32" in line
    assert "test 2,000 samples · 16,263 tokens" in line


async def test_a_learning_rate_past_floats_is_refused_before_a_run(demo_session):
    """'3e5000' reads as an infinite float: the pane names the field and starts nothing,
    where it had trained to NaN and blamed the weights."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        pane = app.query_one(TrainPane)
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-lr", Input).value = "3e5000"
        await pilot.press("f8")
        await wait_for(pilot, lambda: "lr inf: must be a finite number" in screen_text(app))
        assert pane.run is None and not pane.training
