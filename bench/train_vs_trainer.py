"""`rugpt-tui train` against Hugging Face's `Trainer` on the same work, side by side.

The same model folder (random init, the demo's tokenizer), the same texts packed into the
same blocks (128 tokens unless `--block`), batch 8, AdamW at a constant learning rate, gradient
clipping at 1.0, no evaluation in the timed steps; on a GPU both train in bf16 mixed precision
(what `--mixed-precision auto` picks there) and full runs also show the model FLOPs
utilisation (MFU: 6·N + 12·L·H·T FLOPs a token, as nanoGPT counts them, against the GPU's
dense bf16 peak). Each run is a process of its own (so each has its own peak
memory), the two sides alternate, and the figures are medians over the runs: tokens/s over
the steps after the fifth (tokens = batch × block, counted the same for both), and the
process's peak resident memory (CPU) or peak allocated memory (GPU).

    python -m bench.train_vs_trainer [--device cpu|cuda] [--shapes demo,6x384,rugpt3-small]
                                     [--modes full,lora] [--runs 2] [--steps 12] [--block 128]
                                     [--peak-tflops T]

`ours` is `rugpt-tui train` as a user runs it; with `--tuned-heap`, also the same with the C
heap tunables the command used to restart itself with (core.base.host_memory), for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH, LR, WARM = 8, 1e-4, 5
# The C heap tunables the command once restarted itself with (core.base.host_memory).
TUNABLES = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=1048576"
SHAPES = {   # (layers, width, heads, vocab)
    "demo": None,   # the demo model itself
    "6x384": (6, 384, 6, None),
    "rugpt3-small": (12, 768, 12, 50264),
}


# -- the workers: one measurement each, in a process of its own ---------------------------

def peak_memory(device: str) -> int:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated()
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) * 1024


def ours(model: str, data: str, test: str, steps: int, lora: bool, device: str, block: int) -> dict:
    """`rugpt-tui train` in this process (its own entry point), its step events read back."""
    import contextlib
    import io

    from tui.cli.main import main

    argv = ["train", "--model", model, "--train", data, "--test", test, "--device", device,
            "--block-size", str(block), "--batch-size", str(BATCH), "--lr", str(LR),
            "--schedule", "constant", "--warmup", "0", "--max-steps", str(steps),
            "--epochs", "1000", "--jsonl", "--no-record"] + (["--lora"] if lora else [])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    assert code == 0, out.getvalue()[-2000:]
    rates = [e["tokens_per_s"] for e in map(json.loads, out.getvalue().splitlines())
             if e.get("event") == "step" and e["step"] > WARM]
    return {"tokens_per_s": statistics.median(rates), "peak": peak_memory(device)}


def trainer(model: str, data: str, steps: int, lora: bool, device: str, block: int) -> dict:
    """The same work through `transformers.Trainer`: the texts tokenized, each followed by
    the end-of-text token, concatenated and cut into blocks, as `--pack` does."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForCausalLM.from_pretrained(model)
    if lora:
        from peft import LoraConfig, get_peft_model

        from core.model.lora import default_targets

        net = get_peft_model(net, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=list(default_targets(net)),
                                             task_type="CAUSAL_LM"))
    ids: list[int] = []
    for line in Path(data).read_text(encoding="utf-8").splitlines():
        if line.strip():
            ids += tokenizer(line)["input_ids"] + [tokenizer.eos_token_id]
    blocks = [ids[i:i + block] for i in range(0, len(ids) - block + 1, block)]
    dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks,
                                 "attention_mask": [[1] * block for _ in blocks]})
    times: list[float] = []

    class StepTimes(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="rugpt-tui-bench-trainer-"), max_steps=steps + 1,
        per_device_train_batch_size=BATCH, learning_rate=LR, lr_scheduler_type="constant",
        warmup_steps=0, max_grad_norm=1.0, optim="adamw_torch", weight_decay=0.0,
        logging_strategy="no", save_strategy="no", eval_strategy="no", report_to=[],
        dataloader_num_workers=0, disable_tqdm=True, use_cpu=device == "cpu", seed=0,
        bf16=bf16_on(device), fp16=False)
    Trainer(model=net, args=args, train_dataset=dataset, data_collator=default_data_collator,
            callbacks=[StepTimes()]).train()
    durations = [b - a for a, b in zip(times, times[1:])]   # step k: from its begin to the next's
    rates = [BATCH * block / d for d in durations[WARM:]]
    return {"tokens_per_s": statistics.median(rates), "peak": peak_memory(device)}


def worker(args) -> None:
    found = (ours(args.model, args.data, args.test, args.steps, args.lora, args.device, args.block)
             if args.worker == "ours" else
             trainer(args.model, args.data, args.steps, args.lora, args.device, args.block))
    print("RESULT " + json.dumps(found), flush=True)


# -- the comparison ------------------------------------------------------------------------

# Dense bf16 tensor-core peaks, FLOP/s, by a part of the GPU's name (most specific first).
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
             ("GH200", 989e12), ("A100", 312e12)]


def bf16_on(device: str) -> bool:
    """What `--mixed-precision auto` picks: bf16 on a GPU that computes it."""
    if device != "cuda":
        return False
    import torch

    return torch.cuda.is_bf16_supported()


def peak_flops(device: str, given_tflops: float | None) -> float | None:
    if given_tflops:
        return given_tflops * 1e12
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    return next((peak for part, peak in PEAK_BF16 if part in name), None)


def flops_per_token(model: str, block: int) -> float:
    """A training step's FLOPs per token of a GPT-2 model: 6·N for the weights' matrix products
    (forward 2·N, backward 4·N; N without the position table, which is looked up, not
    multiplied) and 12·L·H·T for attention's scores and weighted sums."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model)
    with torch.device("meta"):
        net = AutoModelForCausalLM.from_config(config)
    n = sum(p.numel() for p in net.parameters()) - config.n_positions * config.n_embd
    return 6 * n + 12 * config.n_layer * config.n_embd * block


def build_model(shape: str, folder: Path) -> str:
    """The model folder of a shape: the demo itself, or a random init with its tokenizer."""
    from core.model.demo import demo_model_dir, save_seeded_model

    if SHAPES[shape] is None:
        return str(demo_model_dir())
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    layers, width, heads, vocab = SHAPES[shape]
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir())
    config = GPT2Config(n_layer=layers, n_embd=width, n_head=heads, n_positions=1024,
                        vocab_size=vocab or len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return str(save_seeded_model(GPT2LMHeadModel, config, tokenizer, 0, folder / shape))


def corpus(folder: Path) -> tuple[str, str]:
    from core.base.paths import corpus_path

    lines = [line for line in corpus_path().read_text(encoding="utf-8").splitlines() if line.strip()]
    train, test = folder / "train.txt", folder / "test.txt"
    train.write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    test.write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    return str(train), str(test)


def measure(side: str, model: str, data: str, test: str, steps: int, lora: bool, device: str,
            block: int, tuned: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tuned:
        env["GLIBC_TUNABLES"] = TUNABLES
    command = [sys.executable, "-m", "bench.train_vs_trainer", "--worker", side, "--model", model,
               "--data", data, "--test", test, "--steps", str(steps), "--device", device,
               "--block", str(block)]
    done = subprocess.run(command + (["--lora"] if lora else []), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"{side} failed: {done.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--shapes", default="demo,6x384,rugpt3-small")
    parser.add_argument("--modes", default="full,lora")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--peak-tflops", type=float,
                        help="the device's dense bf16 peak, for MFU (known for H100, H200, A100)")
    parser.add_argument("--tuned-heap", action="store_true",
                        help="also run ours with the C heap tunables, for reference")
    parser.add_argument("--worker", choices=["ours", "trainer"])
    parser.add_argument("--model")
    parser.add_argument("--data")
    parser.add_argument("--test")
    parser.add_argument("--lora", action="store_true")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RUGPT_TUI_HOME", tempfile.mkdtemp(prefix="rugpt-tui-bench-"))
    folder = Path(tempfile.mkdtemp(prefix="rugpt-tui-bench-"))
    data, test = corpus(folder)
    memory = "peak allocated" if args.device == "cuda" else "peak resident"
    peak = peak_flops(args.device, args.peak_tflops)
    print(f"{args.device}: block {args.block}, batch {BATCH}, "
          f"{'bf16 mixed precision' if bf16_on(args.device) else 'float32'}, steps after the "
          f"{WARM}th of {args.steps}, median of {args.runs} alternating runs; memory: {memory}"
          + (f"; MFU against {peak / 1e12:.0f} TFLOP/s" if peak else ""))
    print(f"| model | mode | ours tok/s | Trainer tok/s | ratio | ours {memory} | Trainer "
          f"{memory} |" + (" ours MFU | Trainer MFU |" if peak else "")
          + (" ours, tuned heap tok/s · memory |" if args.tuned_heap else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|" if peak else "")
          + ("---|" if args.tuned_heap else ""))
    for shape in args.shapes.split(","):
        model = build_model(shape, folder)
        for mode in args.modes.split(","):
            lora = mode == "lora"
            found: dict[str, list[dict]] = {"ours": [], "trainer": [], "tuned": []}
            for _ in range(args.runs):
                for side, tuned in [("ours", False), ("trainer", False)] + (
                        [("tuned", True)] if args.tuned_heap else []):
                    found[side].append(measure("trainer" if side == "trainer" else "ours", model,
                                               data, test, args.steps, lora, args.device,
                                               args.block, tuned))
            med = {side: {k: statistics.median(r[k] for r in runs) for k in ("tokens_per_s", "peak")}
                   for side, runs in found.items() if runs}
            o, t = med["ours"], med["trainer"]
            row = (f"| {shape} | {mode} | {o['tokens_per_s']:,.0f} | {t['tokens_per_s']:,.0f} | "
                   f"{o['tokens_per_s'] / t['tokens_per_s']:.2f}× | {o['peak'] / 1e9:.2f} GB | "
                   f"{t['peak'] / 1e9:.2f} GB |")
            if peak:   # LoRA computes no weight gradients: 6·N overstates its work, so no MFU
                per_token = flops_per_token(model, args.block)
                row += "".join(" — |" if lora else f" {side['tokens_per_s'] * per_token / peak:.1%} |"
                               for side in (o, t))
            if "tuned" in med:
                row += f" {med['tuned']['tokens_per_s']:,.0f} · {med['tuned']['peak'] / 1e9:.2f} GB |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
