"""Training tokens/s: our loop (packed blocks, batched, AdamW, Accelerate) vs the notebook's
loop (one text at a time, padded, fp32, Adam lr 1e-5), same data, same tokens, one run.

Tokens are real text tokens (padding is not counted). Figures for the demo model and for a
random-init model of ruGPT-3 small's shape.
    python -m bench.train_speed [--device cpu|cuda] [--skip-large]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.common import demo_session, rugpt3_shape_session
from core.model.demo import tokenizer_lines as corpus_lines
from core.training.config import TrainConfig
from core.training.events import Step
from core.training.loop import train


def notebook_loop(session, texts, pad_to, max_samples):
    """The lesson's loop, as written there: batch 1, padded to a fixed length, labels = ids."""
    model, tokenizer = session.model, session.tokenizer
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    tokens = 0
    start = time.perf_counter()
    for text in texts[:max_samples]:
        enc = tokenizer(text, return_tensors="pt", padding="max_length", max_length=pad_to,
                        truncation=True).to(model.device)
        out = model(**enc, labels=enc["input_ids"])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(enc["attention_mask"].sum())
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    model.eval()
    return tokens / (time.perf_counter() - start), tokens


def our_loop(session, train_file, batch_size, block_size, max_steps, mixed_precision):
    speeds = []
    train(session, TrainConfig(train=str(train_file), test_split=0.05, epochs=100, lr=5e-4,
                               batch_size=batch_size, block_size=block_size, max_steps=max_steps,
                               mixed_precision=mixed_precision, sample_tokens=1),
          on_event=lambda e: speeds.append(e.tokens_per_s) if isinstance(e, Step) else None)
    steady = speeds[1:] or speeds     # the first step pays one-time warm-up
    return statistics.median(steady), len(speeds) * batch_size * block_size


def compare(name, session, texts, train_file, batch_size, block_size, steps, samples, mp):
    tokenizer = session.tokenizer
    longest = max(len(tokenizer(t)["input_ids"]) for t in texts)
    pad_to = max(32, 1 << (longest - 1).bit_length())   # the notebook padded to a round length
    base, base_tokens = notebook_loop(session, texts, pad_to, samples)
    ours, our_tokens = our_loop(session, train_file, batch_size, block_size, steps, mp)
    print(f"{name:<20} notebook {base:9.0f} tok/s ({base_tokens} tokens, padded to {pad_to})   "
          f"ours {ours:9.0f} tok/s (batch {batch_size}×{block_size}, {our_tokens} tokens)   "
          f"ratio {ours / base:5.1f}×")
    return ours


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    texts = corpus_lines() * 4
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text("\n".join(texts), encoding="utf-8")
        print(f"device {args.device}; data: {len(texts)} Russian sentences")
        compare("demo", demo_session(args.device), texts, train_file,
                batch_size=16, block_size=256, steps=12, samples=400, mp="no")
        if not args.skip_large:
            large = rugpt3_shape_session(args.device, "float32")
            if args.device == "cuda":
                ours = compare("ruGPT-3 small shape", large, texts, train_file, batch_size=16,
                               block_size=1024, steps=12, samples=200, mp="bf16")
                params = sum(p.numel() for p in large.model.parameters())
                peak = 989e12   # H100 / H200 SXM, bf16 dense
                print(f"model FLOPs utilisation: {6 * params * ours / peak:.1%} "
                      f"(6·N·tokens/s over {peak / 1e12:.0f} TFLOP/s bf16 dense peak)")
            else:
                compare("ruGPT-3 small shape", large, texts, train_file, batch_size=4,
                        block_size=128, steps=4, samples=24, mp="no")


if __name__ == "__main__":
    main()
