"""LoRA in the app: the Train pane's switch, what it shows before the start, a run that
trains an adapter beside the panes, before/after with the adapter off, an adapter folder
loaded as the model."""

import torch
from textual.widgets import Input

from core.model.session import load_session
from tests.helpers import wait_for
from tests.test_training import weights
from tui.panes.train.pane import TrainPane
from tui.shell.app import RuGPTApp


def preview(app) -> str:
    return str(app.query_one("#train-preview").render())


async def test_lora_run_from_the_pane(fresh_session, tmp_path):
    from tui.widgets.dialogs import BeforeAfterScreen

    before = weights(fresh_session)
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in preview(app))
        assert "all 308k params" in preview(app)
        lr = app.query_one("#train-lr", Input).value
        app.query_one("#train-lora").value = True
        await wait_for(pilot, lambda: "LoRA 16.4k of 325k params (5.04 %)" in preview(app))
        assert " MB" in preview(app)
        assert app.query_one("#train-lr", Input).value != lr   # the adapter's own default
        app.query_one("#train-lora-targets", Input).value = "c_attn,nowhere"
        await wait_for(pilot, lambda: "'nowhere' matches no layer" in preview(app))
        app.query_one("#train-lora-targets", Input).value = ""
        app.query_one("#train-out", Input).value = str(tmp_path / "adapter")
        app.query_one("#train-epochs", Input).value = "1"
        await wait_for(pilot, lambda: "LoRA 16.4k" in preview(app))
        await pilot.press("f8")
        pane = app.query_one(TrainPane)
        await wait_for(pilot, lambda: pane.run is not None and not pane.run.running, timeout=120)
        assert pane.run.result.stop_reason == "done", pane.run.result
        assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
        assert not (tmp_path / "adapter" / "model.safetensors").exists()
        assert fresh_session.adapter is not None and fresh_session.base_state is None
        log = "\n".join(str(line.text) for line in app.query_one("#train-log").lines)
        assert "LoRA: training 16,384" in log and "memory ≈" in log

        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, BeforeAfterScreen), timeout=30)
        result = app.screen.result
        assert result.before != result.after
    after = weights(fresh_session)
    for name, tensor in before.items():   # the base weights are untouched
        wrapped = name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(after.get(name, after.get(wrapped)), tensor), name


async def test_an_adapter_folder_loads_in_the_app(demo_session, tmp_path, corpus_files):
    from core.training.config import TrainConfig
    from core.training.loop import train

    train_file, test_file = corpus_files
    session = load_session("demo", device="cpu")
    train(session, TrainConfig(train=str(train_file), test=str(test_file), block_size=32,
                               max_steps=5, lora=True, lora_r=4, lr=1e-2, out=str(tmp_path / "ad")))
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        app.load_model(str(tmp_path / "ad"))
        await wait_for(pilot, lambda: app.session is not demo_session and app.session is not None,
                       timeout=60)
        assert app.session.adapter is not None
        await wait_for(pilot, lambda: "LoRA on demo" in str(app.query_one("#model-status").render()))
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.query_one("#train-lora").value is True)
        assert app.query_one("#train-lora-r", Input).value == "4"
