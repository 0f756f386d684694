"""LoRA vs full fine-tuning on ruGPT-3 small's shape (random init), one run each, side by side:
peak memory and training tokens/s, and how close the memory plan shown before the start was.
Each runs twice: as it is, and with gradient checkpointing.

Each mode runs in a process of its own (so each has its own peak) with the C heap as a command
has it, after loading the same libraries; memory is the peak resident size
above that point (CPU) or the peak allocated by torch (CUDA).
    python -m bench.lora_vs_full [--device cpu|cuda] [--batch-size 8] [--block-size 256] [--steps 6]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench.common  # noqa: F401  (offline, own workspace)

MODES = {"full": {}, "lora": {"lora": True},
         "full+ckpt": {"gradient_checkpointing": True},
         "lora+ckpt": {"lora": True, "gradient_checkpointing": True}}
COMPARED = [("lora", "full"), ("lora+ckpt", "full+ckpt"), ("lora+ckpt", "full")]


def one_run(mode: str, device: str, batch: int, block: int, steps: int, data: str) -> dict:
    import accelerate  # noqa: F401  — the libraries a run uses, loaded before the baseline
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch

    from bench.common import rugpt3_shape_session
    from core.base.host_memory import peak_resident_bytes, resident_bytes
    from core.training.config import TrainConfig
    from core.training.events import Step
    from core.training.loop import train
    from core.training.memory import memory_plan

    baseline = resident_bytes()
    session = rugpt3_shape_session(device)
    config = TrainConfig(train=data, batch_size=batch, block_size=block, max_steps=steps,
                         **MODES[mode], lr=2e-4, eval_tokens=block * batch, sample_tokens=1,
                         warmup=0.0)
    plan = memory_plan(session, config)
    rates = []
    train(session, config, on_event=lambda e: rates.append(e.tokens_per_s) if isinstance(e, Step) else None)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = peak_resident_bytes() - baseline
    return {"mode": mode, "peak": peak, "estimate": plan.total, "trainable": plan.trainable,
            "tokens_per_s": statistics.median(rates[1:] or rates), "plan": plan.line()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--one", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one, args.device, args.batch_size, args.block_size,
                                 args.steps, args.data)))
        return

    from core.model.demo import tokenizer_lines

    data = Path(tempfile.mkdtemp(prefix="rugpt-tui-bench-")) / "texts.txt"
    data.write_text("\n".join(tokenizer_lines() * 4), encoding="utf-8")
    results = {}
    for mode in MODES:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.lora_vs_full", "--one", mode, "--device", args.device,
             "--batch-size", str(args.batch_size), "--block-size", str(args.block_size),
             "--steps", str(args.steps), "--data", str(data)],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        results[mode] = json.loads(proc.stdout.splitlines()[-1])
    print(f"ruGPT-3 small's shape, {args.device}, batch {args.batch_size} × block "
          f"{args.block_size}, {args.steps} steps each")
    for mode, r in results.items():
        print(f"  {mode:>9}: trains {r['trainable']:>11,} · peak {r['peak'] / 1e9:5.2f} GB · "
              f"plan {r['estimate'] / 1e9:5.2f} GB ({r['estimate'] / r['peak']:.2f}×) · "
              f"{r['tokens_per_s']:7.0f} tokens/s")
        print(f"             {r['plan']}")
    for mode, against in COMPARED:
        lora, full = results[mode], results[against]
        print(f"{mode:>9} / {against}: peak memory {lora['peak'] / full['peak']:.2f}× (goal ≤ 0.5), "
              f"tokens/s {lora['tokens_per_s'] / full['tokens_per_s']:.2f}× (goal ≥ 1.0)")


if __name__ == "__main__":
    main()
