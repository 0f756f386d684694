"""Our decode loop vs `model.generate()`: tokens/s, same model, same settings, one process;
ours both with its growing cache and with the static cache (`generate --static-cache`: compiled
with CUDA graphs on a GPU).

Runs alternate (ours, library, ours, …) so drift hits both alike; the figure is the median.
    python bench/generate_speed.py [--runs 5] [--tokens 64] [--device cpu|cuda] [--skip-large]
"""

import argparse
import time

import torch

from bench.common import demo_session, median, rugpt3_shape_session
from core.inference.generation import GenerationDone, generate_stream
from core.inference.sampling import SamplingSettings


def ours(session, prompt_ids, settings, static=False):
    start = time.perf_counter()
    first = None
    for event in generate_stream(session, "", settings, prompt_ids=prompt_ids, static=static):
        if first is None:
            first = time.perf_counter() - start
        if isinstance(event, GenerationDone):
            done = event
    elapsed = time.perf_counter() - start
    return done.new_tokens / elapsed, first


def library(session, prompt_ids, settings):
    model = session.model
    ids = torch.tensor([prompt_ids], device=model.device)
    kwargs = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=session.tokenizer.pad_token_id,
                  attention_mask=torch.ones_like(ids))
    if settings.greedy:
        kwargs.update(do_sample=False)
    else:
        kwargs.update(do_sample=True, top_k=settings.top_k, top_p=settings.top_p,
                      temperature=settings.temperature)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, **kwargs)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return (out.shape[1] - ids.shape[1]) / elapsed


def compare(name, session, runs, tokens):
    prompt_ids = session.tokenizer("Однажды в студёную зимнюю пору я из лесу вышел.")["input_ids"]
    for mode, settings in [("greedy", SamplingSettings(greedy=True, max_new_tokens=tokens)),
                           ("sampled", SamplingSettings(seed=0, max_new_tokens=tokens))]:
        for _ in range(2):   # warm-up, every path (the static one compiles on a GPU)
            ours(session, prompt_ids, settings)
            ours(session, prompt_ids, settings, static=True)
            library(session, prompt_ids, settings)
        a, st, b, ttft = [], [], [], []
        for _ in range(runs):
            speed, first = ours(session, prompt_ids, settings)
            a.append(speed)
            ttft.append(first)
            st.append(ours(session, prompt_ids, settings, static=True)[0])
            b.append(library(session, prompt_ids, settings))
        print(f"{name:<18} {mode:<8} ours {median(a):8.1f} tok/s   ours static {median(st):8.1f} tok/s"
              f"   generate() {median(b):8.1f} tok/s   ratios {median(a) / median(b):5.2f}× · "
              f"{median(st) / median(b):5.2f}×   first token {median(ttft) * 1000:6.1f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"device {args.device}, {args.tokens} new tokens, median of {args.runs} alternating runs")
    compare("demo", demo_session(args.device), args.runs, args.tokens)
    if not args.skip_large:
        dtype = "bfloat16" if args.device == "cuda" else "float32"
        compare("ruGPT-3 small shape", rugpt3_shape_session(args.device, dtype), args.runs, args.tokens)


if __name__ == "__main__":
    main()
