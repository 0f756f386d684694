"""One-line summaries of data for the screen and the command line."""

from __future__ import annotations


def dialogue_line(d: dict) -> str:
    """What training on dialogues learns, in one line."""
    line = (f"dialogues: {d['conversations']:,} conversations, {d['turns']:,} replies; "
            f"{d['trained_tokens']:,} trained tokens ({100 * d['trained_share']:.0f} % of all)")
    return line + (f"; {d['dropped_turns']:,} oldest turns left out to fit the block"
                   if d["dropped_turns"] else "")

def saved_text(out: str | None, kept_step: int | None, keep_best: bool) -> str:
    """Where a run's model went, and which step's it is: ` · saved to OUT (step N…)`."""
    if not out:
        return ""
    step = "" if kept_step is None else (f" (step {kept_step}, the best eval)" if keep_best
                                         else f" (step {kept_step})")
    return f" · saved to {out}{step}"
