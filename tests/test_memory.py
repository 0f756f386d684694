"""The memory plan a run shows before it starts: close to the real peak, and a run that
cannot fit the GPU is refused with settings that would."""

import json
import subprocess
import sys

import pytest
import torch

from core.base.errors import UserError
from core.base.host_memory import resident_bytes
from core.model.session import load_session
from core.training.config import TrainConfig
from core.training.events import Notice
from core.training.loop import train
from core.training.memory import check_fits, memory_plan
from tests.helpers import ROOT
from tests.test_training import weights


@pytest.fixture(scope="module")
def mid_model(tmp_path_factory, demo_dir):
    """A GPT-2 of 14 M parameters on the demo tokenizer: big enough that its memory stands
    out of the libraries' and the allocator's noise."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    out = tmp_path_factory.mktemp("mid-model")
    tokenizer = AutoTokenizer.from_pretrained(demo_dir)
    config = GPT2Config(n_layer=4, n_embd=512, n_head=8, vocab_size=len(tokenizer), n_positions=256,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.parametrize("mode,block,checkpointing", [("full", "64", ""), ("lora", "64", ""),
                                                     ("full", "256", "ckpt"), ("lora", "256", "ckpt")])
def test_estimate_is_within_a_quarter_of_the_measured_peak(mid_model, mode, block, checkpointing):
    proc = subprocess.run(
        [sys.executable, "tests/memory_worker.py", str(mid_model),
         "core/resources/corpus_ru.txt", mode, "8", block, checkpointing],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    ratio = result["estimate"] / result["measured"]
    assert 0.75 <= ratio <= 1.25, result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_planning_again_and_again_keeps_no_memory(mid_model, corpus_files):
    """The pane plans on every settings change: the probing forward pass must leave nothing
    behind (it once kept each pass's activations, ~75 MB a time on this model)."""
    session = load_session(str(mid_model), device="cpu")
    config = TrainConfig(train=str(corpus_files[0]), block_size=256, batch_size=1)
    one_pass = memory_plan(session, config).activations
    assert one_pass > 50e6
    before = resident_bytes()
    for _ in range(5):
        memory_plan(session, config)
    assert resident_bytes() - before < one_pass


def test_lora_and_checkpointing_plan_less(demo_session, corpus_files):
    train_file, _ = corpus_files
    base = TrainConfig(train=str(train_file), block_size=128, batch_size=8)
    full = memory_plan(demo_session, base)
    lora = memory_plan(demo_session, TrainConfig(**{**base.__dict__, "lora": True}))
    ckpt = memory_plan(demo_session, TrainConfig(**{**base.__dict__, "gradient_checkpointing": True}))
    assert full.trainable == full.total_parameters == demo_session.info.parameters
    assert lora.trainable < full.trainable / 10
    assert lora.gradients + lora.optimizer < (full.gradients + full.optimizer) / 10
    # the demo has 2 layers: one recomputed, the inputs, and what the CPU's heap keeps
    assert ckpt.activations < full.activations * 0.75
    assert "memory ≈" in full.line() and "batch 8 × block 128" in full.line()


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_weights_loaded_in_bfloat16_for_inference_are_planned_as_the_float32_run_holds_them(
        corpus_files, lora):
    """`auto` loads a big model in bfloat16 on a CPU that computes it; a run upcasts it first,
    so the plan the Train pane shows beforehand is the float32 run's."""
    from core.model.device import Placement

    train_file, _ = corpus_files
    config = TrainConfig(train=str(train_file), block_size=64, batch_size=4, lora=lora)
    as_trained = memory_plan(load_session("demo", device="cpu"), config)
    session = load_session("demo", device="cpu")
    session.model.to(torch.bfloat16)   # as `auto` leaves a big model on a native-bf16 CPU
    session.placement = Placement("cpu", "bfloat16", inference_only=True)
    plan = memory_plan(session, config)
    assert plan.weights == as_trained.weights
    assert plan.activations == pytest.approx(as_trained.activations, rel=0.02)


def test_a_run_that_cannot_fit_is_refused_with_settings_that_fit(demo_session, corpus_files):
    train_file, _ = corpus_files
    config = TrainConfig(train=str(train_file), block_size=256, batch_size=64)
    plan = memory_plan(demo_session, config)
    check_fits(plan, None, config, demo_session)          # no GPU: nothing to compare
    check_fits(plan, plan.total * 2, config, demo_session)
    with pytest.raises(UserError) as refused:
        check_fits(plan, int(plan.total * 0.6), config, demo_session)
    message = str(refused.value)
    assert "GB free" in message and "--batch-size" in message
    suggested = int(message.split("--batch-size ")[1].split()[0])
    smaller = memory_plan(demo_session, TrainConfig(**{**config.__dict__, "batch_size": suggested}))
    assert smaller.total <= plan.total * 0.6


def test_gradient_checkpointing_trains_the_same_weights(corpus_files, demo_dir):
    train_file, test_file = corpus_files
    settings = dict(train=str(train_file), test=str(test_file), block_size=32, max_steps=4,
                    lr=3e-3, sample_tokens=2)
    plain = load_session("demo", device="cpu")
    train(plain, TrainConfig(**settings))
    events = []
    checkpointed = load_session("demo", device="cpu")
    train(checkpointed, TrainConfig(**settings, gradient_checkpointing=True), on_event=events.append)
    expected = weights(plain)
    for name, tensor in weights(checkpointed).items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6, msg=name)
    assert any(isinstance(e, Notice) and e.message.startswith("memory ≈") for e in events)


def test_the_plan_shares_weights_gradients_and_moments_out_under_fsdp(demo_session, corpus_files):
    train_file, _ = corpus_files
    config = TrainConfig(train=str(train_file), block_size=8, batch_size=1, eval_tokens=8, fsdp=True)
    whole = memory_plan(demo_session, config)             # one process: nothing to share
    four = memory_plan(demo_session, config, processes=4)
    assert whole.shards == 1 and four.shards == 4 and "sharded over 4" in four.line()
    block = four.block_weights
    assert 0 < block < whole.weights / 2   # the demo's 2 blocks and its embeddings
    assert four.held(four.weights, block) == -(-whole.weights // 4) + block
    assert whole.step_peak - four.step_peak == (
        whole.weights + whole.gradients + whole.optimizer
        - (-(-whole.weights // 4) + block) - (-(-whole.gradients // 4) + block) - -(-whole.optimizer // 4))
    # without --fsdp, more processes change nothing: each keeps a whole copy
    assert memory_plan(demo_session, TrainConfig(**{**config.__dict__, "fsdp": False}), 4).total == whole.total


def test_a_run_that_fits_only_sharded_is_refused_with_fsdp_advice(demo_session, corpus_files):
    train_file, _ = corpus_files
    config = TrainConfig(train=str(train_file), block_size=8, batch_size=1, eval_tokens=8, lora=False)
    plan = memory_plan(demo_session, config)
    free = int(plan.sharded(4).total / 0.9) + 1
    assert plan.sharded(2).total > free * 0.9   # two would not do, four would
    with pytest.raises(UserError) as refused:
        check_fits(plan, free, config, demo_session)
    assert "--fsdp on 4 GPUs" in str(refused.value)


def test_a_run_with_fewer_rows_than_its_batch_plans_for_the_rows(tmp_path, demo_dir):
    """A batch is never bigger than the data: the plan (and a GPU's refusal) follows the rows
    the run will really stack, not the batch size asked for."""
    from core.training.events import Stats

    texts = tmp_path / "few.txt"
    texts.write_text("\n".join(f"Кот номер {i} спал на крыше." for i in range(5)) + "\n",
                     encoding="utf-8")
    events: list = []
    train(load_session("demo", device="cpu"),
          TrainConfig(train=str(texts), block_size=16, batch_size=4096, max_steps=1,
                      eval_tokens=16, sample_tokens=2), on_event=events.append)
    rows = next(e for e in events if isinstance(e, Stats)).train_rows
    plan = next(e.message for e in events if isinstance(e, Notice) and e.message.startswith("memory ≈"))
    assert 0 < rows < 4096 and f"(batch {rows} × block 16)" in plan
