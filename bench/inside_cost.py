"""What looking inside costs, against one plain forward pass of the same prompt, on ruGPT-3
small's shape (random init): the logit lens, the attention of every head, both together,
and the knock-out map of every head — side by side in one run, medians of alternating runs.
    python -m bench.inside_cost [--tokens 128] [--runs 5] [--device cpu|cuda]
"""

import argparse
import time

import torch

from bench.common import median, rugpt3_shape_session
from core.inference.inside import attention, head_knockouts, logit_lens


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    session = rugpt3_shape_session(args.device)
    model = session.model
    ids = torch.randint(0, 1000, (args.tokens,)).tolist()
    batch = torch.tensor([ids], device=model.device)

    def plain():
        with torch.no_grad():
            model(input_ids=batch)

    def lens_and_attention():
        logit_lens(session, ids)
        attention(session, ids)

    ways = {"plain forward": plain, "lens": lambda: logit_lens(session, ids),
            "attention": lambda: attention(session, ids), "lens + attention": lens_and_attention}
    for way in ways.values():   # warm-up
        way()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, way in ways.items():
            times[name].append(timed(way))
    knockouts = median([timed(lambda: head_knockouts(session, ids, 0)) for _ in range(max(1, args.runs // 2))])
    base = median(times["plain forward"])
    print(f"ruGPT-3 small's shape, {args.device}, a {args.tokens}-token prompt, median of {args.runs}")
    for name in ways:
        print(f"  {name:<18} {median(times[name]) * 1000:8.1f} ms   {median(times[name]) / base:5.2f}× a forward pass")
    print(f"  {'knock-out map':<18} {knockouts * 1000:8.1f} ms   {knockouts / base:5.1f} forward passes' time "
          f"({len(model.transformer.h)} blocks × {model.config.n_head} heads, one batched pass per block)")


if __name__ == "__main__":
    main()
