"""`--dtype auto` on the CPU: bfloat16 for inference where the CPU computes it natively and
the weights outgrow its caches, float32 otherwise and always for training."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from core.model.device import (
    CPU_BFLOAT16_MIN_WEIGHT_BYTES,
    Placement,
    cpu_computes_bfloat16,
    cpu_inference_dtype,
)
from core.model.session import load_session
from core.training.config import TrainConfig
from core.training.events import Notice
from core.training.loop import train

X86_WITH = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n"
X86_WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n"
ARM_WITH = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path):
    for text, expected in ((X86_WITH, True), (X86_WITHOUT, False), (ARM_WITH, True),
                           ("processor\t: 0\n", False)):
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        assert cpu_computes_bfloat16(path) is expected, text
    assert cpu_computes_bfloat16(tmp_path / "missing") is False


def test_bfloat16_only_for_weights_past_the_caches_on_a_native_cpu():
    big, small = CPU_BFLOAT16_MIN_WEIGHT_BYTES, CPU_BFLOAT16_MIN_WEIGHT_BYTES - 1
    assert cpu_inference_dtype(big, native_bfloat16=True) == "bfloat16"
    assert cpu_inference_dtype(small, native_bfloat16=True) == "float32"
    assert cpu_inference_dtype(big, native_bfloat16=False) == "float32"


def test_auto_loads_what_the_rule_says_and_training_keeps_float32(tmp_path, demo_session):
    tok = demo_session.tokenizer
    # 4 × 512 with a 9k vocabulary: ~66 MB of float32, just past the threshold
    config = GPT2Config(n_layer=4, n_head=8, n_embd=512, vocab_size=9000, n_positions=64,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(config)
    weight_bytes = sum(p.numel() * 4 for p in model.parameters())
    assert weight_bytes >= CPU_BFLOAT16_MIN_WEIGHT_BYTES
    model.save_pretrained(tmp_path / "big")
    tok.save_pretrained(tmp_path / "big")
    del model

    expected = cpu_inference_dtype(weight_bytes, cpu_computes_bfloat16())
    session = load_session(str(tmp_path / "big"), device="cpu")
    assert session.placement.dtype == session.info.dtype == expected
    assert session.model.dtype == getattr(torch, expected)
    assert session.placement.inference_only == (expected == "bfloat16")

    for_training = load_session(str(tmp_path / "big"), device="cpu", for_training=True)
    assert for_training.model.dtype == torch.float32 and not for_training.placement.inference_only
    asked = load_session(str(tmp_path / "big"), device="cpu", dtype="bfloat16")
    assert asked.model.dtype == torch.bfloat16 and not asked.placement.inference_only


def test_a_run_upcasts_weights_chosen_for_inference_even_under_lora(corpus_files, tmp_path):
    train_file, test_file = corpus_files
    session = load_session("demo", device="cpu")
    session.model.to(torch.bfloat16)   # as `auto` leaves a big model on a native-bf16 CPU
    session.placement = Placement("cpu", "bfloat16", inference_only=True)
    events = []
    train(session, TrainConfig(train=str(train_file), test=str(test_file), max_steps=2, batch_size=4,
                               block_size=32, lora=True, lora_r=4, sample_tokens=4,
                               out=str(tmp_path / "out")), on_event=events.append)
    assert session.model.dtype == torch.float32
    assert session.placement == Placement("cpu", "float32") and session.info.dtype == "float32"
    assert any(isinstance(e, Notice) and "upcast to float32" in e.message for e in events)
