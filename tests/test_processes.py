"""A run on several processes started from the app (torchrun, 2 CPU processes here): its
events drawn like a local run's, the same weights as the command line's run, and a stop that
leaves no process behind."""

import os
import time

import pytest
import torch
from safetensors.torch import load_file
from textual.widgets import Input

from core.base.safe_write import holds_only_run_logs
from core.training.config import TrainConfig, TrainControl
from core.training.events import Eval, Step
from core.training.processes import event_from_json, train_command, train_in_processes
from tests.helpers import cli, wait_for
from tui.panes.train.pane import TrainPane
from tui.shell.app import RuGPTApp

SETTINGS = dict(epochs="0.5", batch="2", block="32")


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_every_jsonl_line_comes_back_as_its_event():
    assert event_from_json('{"event": "step", "step": 3, "epoch": 0.5, "loss": 2.0, "lr": 0.1, '
                           '"tokens_per_s": 10.0, "total_steps": 9}') == Step(3, 0.5, 2.0, 0.1, 10.0, 9)
    assert event_from_json('{"event": "eval", "step": 0, "eval_loss": 1.5, "perplexity": 4.5}') \
        == Eval(0, 1.5, 4.5)
    assert event_from_json("not json") is None and event_from_json('{"event": "other"}') is None
    command = train_command("demo", TrainConfig(train="t.txt", pack=False, lora=True, lr=0.01), 2)
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert {"--pad", "--lora", "--jsonl", "--no-record"} <= set(command)
    assert command[command.index("--lr") + 1] == "0.01"


async def test_two_processes_from_the_pane_train_like_the_command_line(corpus_files, tmp_path,
                                                                       fresh_session):
    train_file, test_file = corpus_files
    app = RuGPTApp(session=fresh_session)
    out = tmp_path / "two"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        for field, value in (("data", str(train_file)), ("test", str(test_file)),
                             ("epochs", SETTINGS["epochs"]), ("batch-size", SETTINGS["batch"]),
                             ("block-size", SETTINGS["block"]), ("processes", "2"),
                             ("out", str(out))):
            app.query_one(f"#train-{field}", Input).value = value
        await pilot.pause(0.5)
        await pilot.press("f8")
        pane = app.query_one(TrainPane)
        await wait_for(pilot, lambda: pane.run is not None and not pane.run.running, timeout=240)
        assert pane.run.error is None and pane.run.result.stop_reason == "done", pane.run.error
        assert pane.run.steps and pane.run.evals   # drawn like a local run
        await wait_for(pilot, lambda: "done" in str(app.query_one("#train-runs").get_option_at_index(0).prompt))
        log = "\n".join(str(line.text) for line in app.query_one("#train-log").lines)
        assert "training on 2 processes" in log and "eval loss" in log
        pane_weights = load_file(out / "model.safetensors")
        # the app's model now holds the run's weights
        for name, tensor in pane_weights.items():
            assert torch.equal(fresh_session.model.state_dict()[name], tensor), name

    # the command line, one process, the batch of both: the same weights
    one = cli("train", "--model", "demo", "--train", str(train_file), "--test", str(test_file),
              "--epochs", SETTINGS["epochs"], "--batch-size", str(2 * int(SETTINGS["batch"])),
              "--block-size", SETTINGS["block"], "--out", str(tmp_path / "one"), "--jsonl")
    assert one.returncode == 0, one.stderr
    expected = load_file(tmp_path / "one" / "model.safetensors")
    for name, tensor in pane_weights.items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_stop_ends_every_process(corpus_files, tmp_path, demo_dir):
    """F9 in the pane: after the first step, stop without saving; no process is left."""
    train_file, test_file = corpus_files
    control, groups = TrainControl(save_on_stop=False), []

    def on_event(event):
        if isinstance(event, Step):
            control.stop.set()

    started = time.monotonic()
    result = train_in_processes(
        "demo", TrainConfig(train=str(train_file), test=str(test_file), epochs=50, batch_size=2,
                            block_size=32, out=str(tmp_path / "stopped")),
        2, on_event=on_event, control=control, device="cpu", started=groups.append)
    assert result.stop_reason == "cancel" and 1 <= result.steps < 50 and result.out is None
    assert holds_only_run_logs(tmp_path / "stopped")   # its curves for TensorBoard, no model
    assert group_gone(groups[0])
    assert time.monotonic() - started < 200


def test_bad_input_of_a_multi_process_run_is_one_line(tmp_path, demo_dir):
    from core.base.errors import UserError

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    groups = []
    for config, named in ((TrainConfig(train="x.txt", out=str(theirs)), str(theirs)),
                          (TrainConfig(train=str(tmp_path / "missing.txt")), "missing.txt")):
        with pytest.raises(UserError) as refused:   # before any process starts
            train_in_processes("demo", config, 2, device="cpu", started=groups.append)
        assert named in str(refused.value) and not groups
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(UserError) as failed:    # found by the processes: their line comes back
        train_in_processes("demo", TrainConfig(train=str(empty)), 2, device="cpu",
                           started=groups.append)
    assert "empty.txt" in str(failed.value) and "\n" not in str(failed.value)
    assert group_gone(groups[0])


def test_only_rank_0_checks_the_output_folder_lock(tmp_path, monkeypatch, corpus_files):
    """Under torchrun every rank parses the command line, but only rank 0 writes: a rank
    that came second found rank 0's lock on the output folder and refused the run (the
    two-process test above met it under load)."""
    from core.base.errors import UserError
    from core.base.safe_write import FolderLock
    from tui.cli.parser import build_parser
    from tui.cli.train_command import _checked_config

    out = tmp_path / "run"
    args = build_parser().parse_args(["train", "--model", "demo", "--train", str(corpus_files[0]),
                                      "--out", str(out)])
    with FolderLock(out.resolve()):   # rank 0 is training into it
        monkeypatch.setenv("RANK", "1")
        assert _checked_config(args)[0].out == str(out)
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(UserError, match="another rugpt-tui run is writing"):
            _checked_config(args)
