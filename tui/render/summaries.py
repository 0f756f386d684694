"""One-line summaries of data for the screen and the command line."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """`1 sample`, `2,000 samples`: a count with its noun (plural by an `s`)."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


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


def sweep_lines(rows: list[dict]) -> list[str]:
    """The sweep's table as text: one row per run, the best marked."""
    from core.queue.sweep import best_row

    best = best_row(rows)
    names = list(rows[0]["settings"])
    head = ["run", *names, "best eval", "steps", "time", "peak memory", "status"]
    body = []
    for r in rows:
        body.append([f"#{r['run']}" if r["run"] else "—", *(str(r["settings"][n]) for n in names),
                     f"{r['best_eval_loss']:.4f}" if r["best_eval_loss"] is not None else "—",
                     str(r["steps"]), f"{r['seconds']:.0f} s" if r["seconds"] is not None else "—",
                     f"{r['peak_memory'] / 1e9:.2f} GB" if r["peak_memory"] else "—",
                     r["status"] + (" ★ best" if r is best else "")])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [head, *body]]
