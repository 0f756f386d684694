"""Greedy decode on the CPU in float32 and in bfloat16: tokens/s of our loop, side by side.

Decode of one sequence reads every weight once per token, so on a CPU it is bound by memory
bandwidth once the weights outgrow the caches: halving their bytes should nearly double the
speed where the CPU computes bfloat16 natively (AVX-512 BF16, AMX, Arm BF16), and cost speed
where it does not, or where the weights fit in cache anyway. `--dtype auto` follows this
measurement (core/model/device.py). Runs alternate; the figure is the median.
    python -m bench.decode_dtype [--runs 5] [--tokens 64] [--skip-large]
"""

import argparse
import time

import torch

from bench.common import demo_session, median, rugpt3_shape_session
from core.inference.generation import GenerationDone, generate_stream
from core.inference.sampling import SamplingSettings
from core.model.device import cpu_computes_bfloat16


def decode_speed(session, prompt_ids, tokens):
    settings = SamplingSettings(greedy=True, max_new_tokens=tokens)
    start = time.perf_counter()
    for event in generate_stream(session, "", settings, prompt_ids=prompt_ids):
        if isinstance(event, GenerationDone):
            done = event
    return done.new_tokens / (time.perf_counter() - start)


def as_bfloat16(session):
    from dataclasses import replace

    from core.model.device import Placement

    session.model.to(torch.bfloat16)
    session.placement = Placement(session.placement.device, "bfloat16")
    session.info = replace(session.info, dtype="bfloat16")
    return session


def compare(name, make, runs, tokens):
    fp32, bf16 = make(), as_bfloat16(make())
    weights_mb = sum(p.numel() for p in fp32.model.parameters()) * 4 / 2**20
    prompt_ids = fp32.tokenizer("Однажды в студёную зимнюю пору я из лесу вышел.")["input_ids"]
    decode_speed(fp32, prompt_ids, tokens)   # warm-up, both
    decode_speed(bf16, prompt_ids, tokens)
    a, b = [], []
    for _ in range(runs):
        a.append(decode_speed(fp32, prompt_ids, tokens))
        b.append(decode_speed(bf16, prompt_ids, tokens))
    print(f"{name:<20} {weights_mb:7.0f} MB fp32   float32 {median(a):7.1f} tok/s   "
          f"bfloat16 {median(b):7.1f} tok/s   ratio {median(b) / median(a):5.2f}×")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    print(f"CPU, {torch.get_num_threads()} threads, greedy, {args.tokens} new tokens, median of "
          f"{args.runs} alternating runs; native bfloat16: {cpu_computes_bfloat16()}")
    compare("demo", lambda: demo_session("cpu"), args.runs, args.tokens)
    # weights about the size of this CPU's caches, then well past them
    compare("4 × 512, vocab 8k", lambda: rugpt3_shape_session("cpu", n_layer=4, n_embd=512, n_head=8,
                                                              vocab_size=8000), args.runs, args.tokens)
    if not args.skip_large:
        compare("ruGPT-3 small shape", lambda: rugpt3_shape_session("cpu"), args.runs, args.tokens)


if __name__ == "__main__":
    main()
