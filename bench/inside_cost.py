"""What looking inside costs, against one plain forward pass of the same prompt, on ruGPT-3
small's shape (random init): the logit lens, the attention of every head, both together,
and the knock-out map of every head — side by side in one run, medians of alternating runs.
The lens is timed whole (what `inspect --json` computes) and as the Inside pane reads it:
one forward pass, then the output head over the positions its first screen can show at 80
and at 200 columns; and the pane turned to the heads (a, the lens's forward pass for the
model's own row, then one with eager attention).
    python -m bench.inside_cost [--tokens 128] [--runs 5] [--device cpu|cuda]
"""

import argparse
import time

import torch

from bench.common import median, rugpt3_shape_session
from core.inference.inside import (
    LensReader,
    attention,
    attention_glance,
    head_knockouts,
    logit_lens,
)
from tui.panes.inside.lens import end_window, token_name


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
    ids = torch.randint(0, 1000, (args.tokens,), generator=torch.Generator().manual_seed(0)).tolist()
    batch = torch.tensor([ids], device=model.device)

    def plain():
        with torch.no_grad():
            model(input_ids=batch)

    def lens_and_attention():
        logit_lens(session, ids)
        attention(session, ids)

    tokens = [token_name(session.tokenizer, i) for i in ids]

    def screen(columns: int, heads: bool = False):
        def read():   # as the pane's worker does for a new prompt: its end, as much as may fit
            reader = LensReader(session, ids)
            if heads:   # the heads' grid: the model's own row, and where each head looks
                attention_glance(session, ids, len(ids) - 1, (0, 0))
            else:
                reader.read(end_window(tokens, columns - 2))   # less the grid's border
        return read

    ways = {"plain forward": plain, "lens": lambda: logit_lens(session, ids),
            "attention": lambda: attention(session, ids), "lens + attention": lens_and_attention,
            "pane, 80 columns": screen(80), "pane, 200 columns": screen(200),
            "pane, heads": screen(200, heads=True)}
    for way in ways.values():   # warm-up
        way()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, way in ways.items():
            times[name].append(timed(way))
    knockouts = median([timed(lambda: head_knockouts(session, ids, 0)) for _ in range(max(1, args.runs // 2))])
    base = median(times["plain forward"])
    print(f"ruGPT-3 small's shape, {args.device}, a {args.tokens}-token prompt, median of {args.runs}; "
          f"the pane reads {len(end_window(tokens, 78))} positions at 80 columns, "
          f"{len(end_window(tokens, 198))} at 200")
    for name in ways:
        print(f"  {name:<18} {median(times[name]) * 1000:8.1f} ms   {median(times[name]) / base:5.2f}× a forward pass")
    print(f"  {'knock-out map':<18} {knockouts * 1000:8.1f} ms   {knockouts / base:5.1f} forward passes' time "
          f"({len(model.transformer.h)} blocks × {model.config.n_head} heads, one batched pass per block)")


if __name__ == "__main__":
    main()
