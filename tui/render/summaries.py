"""One-line summaries of data for the screen and the command line."""

from __future__ import annotations


def dialogue_line(d: dict) -> str:
    """What training on dialogues learns, in one line."""
    line = (f"dialogues: {d['conversations']:,} conversations, {d['turns']:,} replies; "
            f"{d['trained_tokens']:,} trained tokens ({100 * d['trained_share']:.0f} % of all)")
    return line + (f"; {d['dropped_turns']:,} oldest turns left out to fit the block"
                   if d["dropped_turns"] else "")
