"""`rugpt-tui eval`: several models scored on one held-out file, side by side — the loss and
perplexity each gets (core.inference.scoring), kept in the workspace for the app to show."""

from __future__ import annotations

import sys
import time

from tui.cli.commands import open_store, print_json


class ProgressLine:
    """`model: 1,234/5,000 samples` on stderr, redrawn in place at most 10 times a second
    when stderr is a terminal, and not at all otherwise."""

    def __init__(self, model: str) -> None:
        self.model, self.shown_at = model, 0.0
        self.live = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.live and (now - self.shown_at > 0.1 or done == total):
            self.shown_at = now
            width = 24
            filled = width * done // max(total, 1)
            sys.stderr.write(f"\r{self.model}: [{'#' * filled}{'.' * (width - filled)}] "
                             f"{done:,}/{total:,} samples")
            sys.stderr.flush()

    def end(self) -> None:
        if self.live:
            sys.stderr.write("\n")


def cmd_eval(args) -> int:
    from core.data.source import resolve_source
    from core.inference.scoring import score_model
    from core.model.session import load_session

    # a missing file, a device, a FIFO, bad bytes: one line before any model loads
    data_hash = resolve_source(args.data).fingerprint
    store = open_store()
    scores = []
    for name in args.model:
        session = load_session(name, device=args.device, dtype=args.dtype,
                               trust_remote_code=args.trust_remote_code)
        progress = ProgressLine(name)
        started = time.monotonic()
        try:
            score = score_model(session, args.data, args.block_size, progress)
        finally:
            progress.end()
        scores.append(score)
        if store is not None:
            store.add_score(name, args.data, data_hash, score.block_size, score.loss, score.tokens,
                            time.monotonic() - started)
        del session
    tokens = {s.tokens for s in scores}
    if len(tokens) > 1 and not args.json:
        print("(the models' tokenizers differ: their losses are per token of each one's own "
              "tokenization, and compare only roughly)")
    if args.json:
        print_json({"data": args.data, "tokens": scores[0].tokens,
                    "models": [s.as_json() for s in scores]})
        return 0
    width = max(len(s.model) for s in scores)
    print(f"{'model':<{width}}  {'loss':>8}  {'perplexity':>11}  {'tokens':>10}")
    for s in scores:
        print(f"{s.model:<{width}}  {s.loss:>8.4f}  {s.perplexity:>11.3f}  {s.tokens:>10,}")
    return 0
