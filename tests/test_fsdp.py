"""FSDP (`train --fsdp`) over 2 CPU processes (gloo): the same weights as one process with the
whole batch, saved as one ordinary model file; each process holds only its shards; a stopped
run resumes exactly; LoRA and gradient checkpointing work sharded; the memory plan shares
weights, gradients and optimizer state out; no process group, one line."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import load_file

from core.training.config import TrainConfig, TrainControl
from core.training.events import Notice, Step
from core.training.processes import train_in_processes
from tests.helpers import cli

SETTINGS = dict(epochs=0.5, batch_size=2, block_size=32, lr=3e-3)


def sharded_run(corpus_files, out, control=None, **settings) -> tuple[list, object]:
    train_file, test_file = corpus_files
    events = []
    config = TrainConfig(train=str(train_file), test=str(test_file), out=str(out), fsdp=True,
                         **{**SETTINGS, **settings})
    result = train_in_processes("demo", config, 2, on_event=events.append, device="cpu",
                                control=control)
    return events, result


def one_process(corpus_files, out, *flags) -> None:
    train_file, test_file = corpus_files
    done = cli("train", "--model", "demo", "--device", "cpu", "--train", str(train_file),
               "--test", str(test_file), "--epochs", str(SETTINGS["epochs"]),
               "--batch-size", str(2 * SETTINGS["batch_size"]), "--block-size",
               str(SETTINGS["block_size"]), "--lr", str(SETTINGS["lr"]), "--out", str(out), *flags)
    assert done.returncode == 0, done.stderr


def test_fsdp_over_two_processes_trains_the_weights_of_one_process(corpus_files, tmp_path):
    events, result = sharded_run(corpus_files, tmp_path / "sharded")
    assert result.stop_reason == "done", events
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("sharded over 2" in n for n in notices)   # the memory plan is a process's share
    # each process holds about half of the weights, gradients and moments, never the whole
    held = next(n for n in notices if n.startswith("FSDP: weights, gradients"))
    figures = [float(x) for x in re.findall(r"([\d.]+) MB", held)]
    each, whole = figures[:-1], figures[-1]
    assert len(each) == 2 and max(each) <= 0.6 * whole and sum(each) == pytest.approx(whole, rel=0.05)

    one_process(corpus_files, tmp_path / "one")
    sharded = load_file(tmp_path / "sharded" / "model.safetensors")
    expected = load_file(tmp_path / "one" / "model.safetensors")
    assert sharded.keys() == expected.keys()   # one ordinary model file, tied weights once
    for name, tensor in expected.items():
        torch.testing.assert_close(sharded[name], tensor, rtol=1e-4, atol=1e-4, msg=name)
    # and it loads anywhere, as any model folder does
    loaded = cli("generate", "--model", str(tmp_path / "sharded"), "--prompt", "Кот",
                 "--max-new-tokens", "4", "--seed", "1")
    assert loaded.returncode == 0, loaded.stderr


def test_a_sharded_run_stopped_and_resumed_reaches_the_same_weights(corpus_files, tmp_path):
    _, whole = sharded_run(corpus_files, tmp_path / "whole", epochs=1.0)
    control = TrainControl()

    def stop_at_third(event) -> None:
        if isinstance(event, Step) and event.step >= 3:
            control.stop.set()
    train_file, test_file = corpus_files
    config = TrainConfig(train=str(train_file), test=str(test_file), out=str(tmp_path / "part"),
                         fsdp=True, **{**SETTINGS, "epochs": 1.0})
    stopped = train_in_processes("demo", config, 2, on_event=stop_at_third, device="cpu",
                                 control=control)
    assert stopped.stop_reason == "cancel" and 3 <= stopped.steps < whole.steps
    assert (tmp_path / "part" / "training_state" / "shards").is_dir()   # each rank's part
    config = TrainConfig(**{**config.__dict__, "resume": str(tmp_path / "part")})
    resumed = train_in_processes("demo", config, 2, device="cpu")
    assert resumed.stop_reason == "done" and resumed.steps == whole.steps
    a = load_file(tmp_path / "whole" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_lora_with_gradient_checkpointing_trains_sharded_like_one_process(corpus_files, tmp_path):
    events, result = sharded_run(corpus_files, tmp_path / "sharded", lora=True,
                                 gradient_checkpointing=True)
    assert result.stop_reason == "done", events
    one_process(corpus_files, tmp_path / "one", "--lora", "--gradient-checkpointing")
    sharded = load_file(tmp_path / "sharded" / "adapter_model.safetensors")
    expected = load_file(tmp_path / "one" / "adapter_model.safetensors")
    assert sharded.keys() == expected.keys() and expected   # the adapter alone
    for name, tensor in expected.items():
        torch.testing.assert_close(sharded[name], tensor, rtol=1e-4, atol=1e-4, msg=name)


def test_fsdp_without_several_processes_is_one_line(corpus_files, tmp_path):
    train_file, _ = corpus_files
    done = cli("train", "--model", "demo", "--train", str(train_file), "--fsdp", "--max-steps", "1")
    assert done.returncode == 2 and "torchrun" in done.stderr
    assert done.stderr.strip().count("\n") == 0
