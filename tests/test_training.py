"""Fine-tuning on the demo model: loss falls, results load, resume is exact, saves are atomic,
bad steps stop cleanly, and two processes train like one."""

import functools
import json
import os
import signal
import subprocess
import sys

import torch

from core.base.paths import corpus_path
from core.base.settings import train_defaults
from core.model.session import load_session
from core.training.config import TrainConfig, TrainControl
from core.training.events import Eval, Step
from core.training.loop import train
from tests.helpers import ROOT, cli


def weights(session):
    return {k: v.detach().clone() for k, v in session.model.state_dict().items()}


def config(corpus_files, **kw):
    train_file, test_file = corpus_files
    base = dict(train=str(train_file), test=str(test_file), epochs=2, lr=3e-3, batch_size=8,
                block_size=32, seed=1, sample_tokens=8)
    base.update(kw)
    return TrainConfig(**base)


def test_eval_loss_falls_and_result_loads(corpus_files, tmp_path, fresh_family_session):
    fresh_session = fresh_family_session
    events = []
    result = train(fresh_session, config(corpus_files, out=str(tmp_path / "out")), on_event=lambda e: events.append(e.as_json()))
    evals = [e for e in events if e["event"] == "eval"]
    assert len(evals) >= 2
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 0.05
    first_step = next(e for e in events if e["event"] == "step")
    assert result.eval_loss < first_step["loss"]
    assert [e for e in events if e["event"] == "sample"]
    assert events[-1] == {"event": "done", "out": str(tmp_path / "out"), "steps": result.steps,
                          "eval_loss": result.eval_loss, "stop_reason": "done", "kept_step": result.steps}
    assert (tmp_path / "out" / "model.safetensors").exists()
    reloaded = load_session(str(tmp_path / "out"), device="cpu")
    assert type(reloaded.model) is type(fresh_session.model)
    for name, tensor in weights(fresh_session).items():
        assert torch.equal(reloaded.model.state_dict()[name], tensor), name


def test_every_sample_is_framed_as_the_tokenizer_frames_a_text(corpus_files, family_session):
    """<s> text </s> for Llama (its tokenizer puts <s> in front), text </s> for GPT-2."""
    from core.training.batches import prepare_data

    tok = family_session.tokenizer
    data = prepare_data(tok, config(corpus_files, pack=False), 64)
    first_line = corpus_files[0].read_text(encoding="utf-8").splitlines()[0]
    expected = (tok(first_line)["input_ids"] + [tok.eos_token_id])[:64]
    rows = [row.tolist() for row in data.train_rows]
    assert expected in rows
    assert all(row.count(tok.eos_token_id) == 1 for row in rows if len(row) < 64)


def test_resume_after_cancel_reaches_the_same_weights(corpus_files, tmp_path, family_model):
    full = load_session(family_model, device="cpu")
    train(full, config(corpus_files))

    part = load_session(family_model, device="cpu")
    steps = []
    cut = train(part, config(corpus_files, out=str(tmp_path / "ckpt")),
                on_event=lambda e: steps.append(e) if isinstance(e, Step) else None,
                control=TrainControl(cancelled=lambda: len(steps) >= 7))
    assert cut.stop_reason == "cancel" and cut.steps == 7 and cut.out

    resumed = load_session(family_model, device="cpu")  # base weights: resume restores the rest
    done = train(resumed, config(corpus_files, resume=str(tmp_path / "ckpt")))
    assert done.steps == train(load_session(family_model, device="cpu"),
                               config(corpus_files, max_steps=10**6)).steps
    expected = weights(full)
    for name, tensor in weights(resumed).items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)


def test_pad_mode_trains(corpus_files, fresh_session):
    events = []
    result = train(fresh_session, config(corpus_files, pack=False, epochs=1, batch_size=4),
                   on_event=lambda e: events.append(e.as_json()))
    assert result.stop_reason == "done"
    events = [e for e in events if e["event"] != "tokenize"]   # first in its process: tokenized
    assert events[0]["event"] == "stats" and events[0]["mode"] == "pad"
    assert events[0]["train"]["samples"] == 200


def test_nan_loss_stops_cleanly(corpus_files, fresh_session, monkeypatch):
    model = fresh_session.model
    original = model.forward

    @functools.wraps(original)   # keeps the signature the decode loop inspects
    def poisoned(*args, **kwargs):
        out = original(*args, **kwargs)
        if torch.is_grad_enabled():   # training steps; evaluation and sampling run without
            out.logits = out.logits * float("nan")
        return out

    monkeypatch.setattr(model, "forward", poisoned)
    events = []
    result = train(fresh_session, config(corpus_files), on_event=lambda e: events.append(e.as_json()))
    assert result.stop_reason == "nan" and result.steps == 0
    assert any(e["event"] == "error" and "lower --lr" in e["message"] for e in events)


def run_out_of_memory(session, corpus_files, monkeypatch, runs_out) -> str:
    """Train with the third training forward calling `runs_out` first; the run must stop as
    out of memory. Returns its error message, the model's own forward back in place."""
    model = session.model
    original = model.forward
    calls = {"n": 0}

    @functools.wraps(original)
    def forward(*args, **kwargs):
        calls["n"] += model.training
        if calls["n"] == 3 and model.training:
            runs_out()
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    events = []
    result = train(session, config(corpus_files), on_event=lambda e: events.append(e.as_json()))
    monkeypatch.setattr(model, "forward", original)
    assert result.stop_reason == "oom"
    return next(e["message"] for e in events if e["event"] == "error")


def test_out_of_memory_is_a_clear_message_and_model_stays_usable(corpus_files, fresh_session, monkeypatch):
    from core.inference.generation import GenerationDone, generate_stream

    def gpu_runs_out():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    message = run_out_of_memory(fresh_session, corpus_files, monkeypatch, gpu_runs_out)
    assert "--batch-size" in message and "--block-size" in message
    *_, done = generate_stream(fresh_session, "Это")
    assert isinstance(done, GenerationDone) and done.new_tokens > 0


def test_the_cpu_running_out_of_memory_is_the_same_clear_stop(corpus_files, fresh_session, monkeypatch):
    def cpu_runs_out():
        torch.empty(2**50, dtype=torch.uint8)   # a petabyte: the real allocator refuses it

    message = run_out_of_memory(fresh_session, corpus_files, monkeypatch, cpu_runs_out)
    assert message.startswith("out of CPU memory at batch size") and "--batch-size" in message


KILL_DURING_SAVE = r"""
import os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from core.model.checkpoint import save_checkpoint
from core.model.session import load_session
session = load_session("demo", device="cpu")
with torch.no_grad():
    for p in session.model.parameters():
        p.add_(1.0)   # different weights from the checkpoint on disk
original = session.model.save_pretrained
def slow_save(path, **kw):
    original(path, **kw)
    print("WRITING", flush=True)
    time.sleep(60)   # killed here, mid-checkpoint
session.model.save_pretrained = slow_save
save_checkpoint(sys.argv[1], session.model, session.tokenizer, {"step": 99})
"""


def test_killed_save_leaves_previous_checkpoint_loadable(tmp_path, fresh_session):
    from core.model.checkpoint import save_checkpoint

    out = tmp_path / "ckpt"
    save_checkpoint(out, fresh_session.model, fresh_session.tokenizer, {"step": 1})
    before = weights(fresh_session)
    proc = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    reloaded = load_session(str(out), device="cpu")
    for name, tensor in reloaded.model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 1


def test_train_cli_jsonl_and_generate_from_result(corpus_files, tmp_path, demo_dir):
    train_file, test_file = corpus_files
    out = tmp_path / "cli-out"
    result = cli("train", "--model", "demo", "--train", str(train_file), "--test", str(test_file),
                     "--epochs", "1", "--block-size", "32", "--out", str(out), "--jsonl")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"step", "eval", "sample", "done"} <= kinds
    step = next(e for e in events if e["event"] == "step")
    assert set(step) >= {"step", "epoch", "loss", "lr", "tokens_per_s"}
    ev = next(e for e in events if e["event"] == "eval")
    assert set(ev) >= {"step", "eval_loss", "perplexity"}
    done = events[-1]
    assert done["event"] == "done" and done["out"] == str(out) and done["steps"] > 0
    assert isinstance(done["eval_loss"], float)
    gen = cli("generate", "--model", str(out), "--prompt", "Это", "--max-new-tokens", "5", "--jsonl")
    assert gen.returncode == 0, gen.stderr


def test_first_eval_is_at_step_0_before_any_update(corpus_files, fresh_session):
    events = []
    before = weights(fresh_session)
    train(fresh_session, config(corpus_files, max_steps=2),
          on_event=lambda e: events.append((e.as_json(), weights(fresh_session)) if isinstance(e, Eval)
                                           else e.as_json()))
    events = [e for e in events if isinstance(e, tuple) or e["event"] not in ("notice", "tokenize")]
    kinds = [e[0]["event"] if isinstance(e, tuple) else e["event"] for e in events]
    assert kinds[:3] == ["stats", "eval", "sample"] and "step" not in kinds[:3]
    first_eval, weights_then = events[1]
    assert first_eval["step"] == 0
    assert all(torch.equal(weights_then[k], v) for k, v in before.items())   # no update yet


async def test_cli_and_pane_take_the_same_per_model_defaults(corpus_files, tmp_path, demo_session):
    """`train` with no settings gets what the Train pane shows for the model."""
    from textual.widgets import Input

    from tui.shell.app import RuGPTApp
    from tui.widgets.fields import read_fields

    train_file, _ = corpus_files
    out = tmp_path / "defaults"
    result = cli("train", "--model", "demo", "--train", str(train_file), "--max-steps", "2",
                     "--out", str(out), "--jsonl")
    assert result.returncode == 0, result.stderr
    used = json.loads((out / "trainer_state.json").read_text())["config"]
    defaults = train_defaults("demo", demo_session.max_positions)
    assert defaults["lr"] == 3e-3 and defaults["block_size"] == 32   # the demo's own preset
    assert {k: used[k] for k in defaults} == {**defaults, "max_steps": 2}
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        shown = read_fields(app.query_one("#train-settings"))
        raw = {k: app.query_one(f"#train-{f}", Input).value for k, f in
               (("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch-size"), ("block_size", "block-size"))}
    assert len(shown) >= 7 and shown == {k: defaults[k] for k in shown}
    assert {k: float(v) for k, v in raw.items()} == {k: float(defaults[k]) for k in raw}


def test_the_demo_learns_and_generalises(demo_dir):
    """The demo's own settings on its own corpus, two epochs: eval loss halves from step 0,
    train and eval stay within a nat (no memorising), and the sample is the corpus's words."""
    import re

    from core.data.grammar import CORPUS_LINES, corpus_sentences
    from core.training.events import Sample

    corpus = corpus_path().read_text(encoding="utf-8")
    assert corpus.splitlines() == corpus_sentences(CORPUS_LINES)   # the shipped file is the generator's
    session = load_session("demo", device="cpu")
    settings = {**train_defaults("demo", session.max_positions), "epochs": 2.0}
    events = []
    result = train(session, TrainConfig(train=str(corpus_path()), **settings), on_event=events.append)
    evals = [e.eval_loss for e in events if isinstance(e, Eval)]
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert result.steps >= 30
    assert evals[-1] <= 0.5 * evals[0]
    assert abs(evals[-1] - sum(losses[-10:]) / 10) <= 1.0
    sample = [e for e in events if isinstance(e, Sample)][-1].text
    words = re.findall(r"\w+", sample)[2:]   # after the prompt: two words of a test line
    known = set(re.findall(r"\w+", corpus))
    assert len(words) >= 3 and sum(w in known for w in words) >= 0.8 * len(words), words
