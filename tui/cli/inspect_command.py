"""`rugpt-tui inspect`: what each block predicts for a prompt (the logit lens), where each
head looks, and how knocking each head out moves the next token — the numbers the Inside
view is made of, for a script (`--json`, SPEC) or a reader."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tui.cli.commands import load_model, print_json
from tui.render.chips import printable


def cmd_inspect(args) -> int:
    from core.inference.inside import (
        anatomy,
        attention,
        head_knockouts,
        logit_lens,
        prompt_ids,
        target_id,
    )

    session = load_model(args)
    parts = anatomy(session.model)   # a model the lens cannot read: one line, before any work
    ids = prompt_ids(session, args.prompt)
    lens = logit_lens(session, ids, args.top)
    token_text = session.tokenizer.decode
    result: dict = {"model": session.info.model,
                    "tokens": [{"id": i, "text": token_text([i])} for i in ids],
                    "layers": len(parts.blocks), "heads": parts.heads,
                    "lens": [[{"top": [[i, p] for i, p in cell]} for cell in row] for row in lens]}
    if args.attention:
        result["attention"] = [[[weights[q, :q + 1].tolist() for q in range(len(ids))]
                                for weights in block] for block in attention(session, ids)]
    if args.ablate:
        target = target_id(session, args.prompt, args.target, lens[-1][-1])
        prob, delta = head_knockouts(session, ids, target)
        result["ablation"] = {"position": len(ids) - 1, "target": target, "prob": prob, "delta": delta}
    if args.json:
        print_json(result)
        return 0
    _print(result, token_text)
    return 0


def _print(result: dict, token_text) -> None:
    """Per layer, the top token at each of the last positions; the heads that matter most."""
    console = Console(highlight=False)
    tokens = result["tokens"][-6:]   # the last positions fit 80 columns
    first = len(result["tokens"]) - len(tokens)
    table = Table(title="what each layer predicts next (top token, probability)", box=None)
    table.add_column("layer", min_width=8, no_wrap=True)
    for token in tokens:
        table.add_column(printable(token["text"])[:6], min_width=11, no_wrap=True)
    for layer, row in enumerate(result["lens"]):
        name = "embed" if layer == 0 else f"block {layer}"
        table.add_row(name, *(f"{printable(token_text([cell['top'][0][0]]))[:6]} "
                              f"{cell['top'][0][1]:.2f}" for cell in row[first:]))
    console.print(table)
    if "attention" in result:
        last = len(result["tokens"]) - 1
        for block, heads in enumerate(result["attention"], 1):
            looks = [max(range(last + 1), key=lambda k: head[last][k]) for head in heads]
            console.print(f"block {block}: the last token's heads look most at positions {looks}")
    if "ablation" in result:
        ablation = result["ablation"]
        ranked = sorted(((d, b, h) for b, row in enumerate(ablation["delta"], 1)
                         for h, d in enumerate(row)), key=lambda t: t[0])[:5]
        console.print(f"target {printable(token_text([ablation['target']]))!r}: p = {ablation['prob']:.3f}; "
                      "knocking out lowers log p most for "
                      + ", ".join(f"block {b} head {h} ({d:+.3f})" for d, b, h in ranked))
