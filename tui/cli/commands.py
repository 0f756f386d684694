"""The headless subcommands: thin wrappers that print what `core` computes."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from core.base.errors import UserError
from core.base.settings import SAMPLING_SETTINGS
from core.model.lora import is_adapter_folder
from core.store.database import Store
from tui.cli.options import given
from tui.render.chips import CHIP_STYLES, ChipMaker, printable


def open_store() -> Store | None:
    """The workspace database, or None (said once on stderr) when it cannot be used: the
    command still does its work."""
    try:
        return Store.open()
    except UserError as exc:
        print(f"note: {exc}", file=sys.stderr)
        return None


def load_model(args, for_training: bool = False):
    from core.model.session import load_session

    return load_session(args.model, device=args.device, dtype=args.dtype,
                        trust_remote_code=args.trust_remote_code, for_training=for_training)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cmd_demo_model(args) -> int:
    from core.model.demo import write_demo_model

    out = write_demo_model(args.out)
    print(f"demo model written to {out}")
    return 0


def cmd_info(args) -> int:
    session = load_model(args)
    if session.notice:
        print(session.notice, file=sys.stderr)
    info = session.info.as_dict()
    if args.json:
        print_json(info)
        return 0
    for key, value in info.items():
        if value is None:
            continue
        shown = f"{value:,}" if key == "parameters" else value
        print(f"{key:>16}: {shown}")
    return 0


def token_chips(view, raw: bool = False) -> Text:
    """Tokens as the Tokenize pane's chips: alternating colours, partial characters as bytes."""
    out = Text()
    for chip in ChipMaker(raw, show_ids=False).chips(view):
        out.append(chip.label, style=CHIP_STYLES[chip.style])
    return out


def cmd_tokenize(args) -> int:
    from core.tokens.view import tokenize_view

    session = load_model(args)
    view = tokenize_view(session.tokenizer, args.text)
    if args.json:
        print_json(view.as_json())
        return 0
    console = Console(highlight=False)
    console.print(token_chips(view, raw=args.raw))
    console.print(f"{view.count} tokens, {len(view.text)} characters, "
                  f"{view.chars_per_token:.2f} chars/token")
    return 0


def cmd_generate(args) -> int:
    from core.inference.generation import (
        GenerationDone,
        GenerationNotice,
        TokenEvent,
        generate_stream,
    )
    from core.inference.sampling import SamplingSettings

    settings = SamplingSettings(**given(args, SAMPLING_SETTINGS), stop=tuple(args.stop)).validate()
    session = load_model(args)   # bad settings failed above, before the model loads
    if session.notice:
        print(session.notice, file=sys.stderr)
    store = open_store()
    for event in generate_stream(session, args.prompt, settings, static=args.static_cache):
        if isinstance(event, GenerationNotice):
            print(f"note: {event.message}", file=sys.stderr)
        elif isinstance(event, TokenEvent):
            if args.jsonl:
                print_json(event.as_json())
            elif event.text:
                sys.stdout.write(event.text)
                sys.stdout.flush()
        elif isinstance(event, GenerationDone):
            if store is not None:
                store.add_generation(session.info.model, args.prompt, event.text, event.seed,
                                     settings.as_record(), event.new_tokens, event.tokens_per_s,
                                     event.stop_reason)
            if args.jsonl:
                print_json(event.as_json())
            else:
                sys.stdout.write("\n")
                sys.stdout.flush()
                print(f"{event.new_tokens} tokens, {event.tokens_per_s:.1f} tokens/s, "
                      f"stop: {event.stop_reason}, seed {event.seed}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from core.base.safe_write import check_output_folder
    from core.model.lora import export_merged

    if not is_adapter_folder(args.model):
        raise UserError(f"--model {args.model}: not a LoRA adapter folder (no adapter_config.json)")
    check_output_folder(args.out)   # refused before the model loads
    session = load_model(args)
    out = export_merged(session, args.out)
    print(f"merged {args.model} (base {session.info.base_model}) into {out}")
    return 0


def cmd_history(args) -> int:
    store = open_store()
    rows = store.history(search=args.search, limit=args.limit) if store else []
    if args.json:
        print_json([{"time": r["time"], "model": r["model"], "prompt": r["prompt"], "text": r["text"],
                      "seed": r["seed"], "settings": r["settings"], "new_tokens": r["new_tokens"],
                      "tokens_per_s": r["tokens_per_s"]} for r in rows])
        return 0
    for r in rows:
        text = (r["prompt"] + r["text"]).replace("\n", " ")
        print(f"{r['time'][:19].replace('T', ' ')}  {r['model']}  seed {r['seed']}  {text[:100]}")
    if not rows:
        print("no generations yet" + (f" with {args.search!r}" if args.search else ""), file=sys.stderr)
    return 0


def tokenize_progress(console):
    """A progress bar with ETA on stderr while the data is tokenized for the first time.
    Returns `consume(event) -> bool`: True for the events it showed; None ends the bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from core.training.events import Tokenizing

    bar = Progress(TextColumn("[bold]tokenize"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("texts"), TimeRemainingColumn(), console=console, transient=True)
    task = None

    def consume(event) -> bool:
        nonlocal task
        if isinstance(event, Tokenizing):
            if task is None:
                bar.start()
                task = bar.add_task("tokenize", total=event.total)
            bar.update(task, completed=event.done, total=event.total)
            return True
        if task is not None:   # tokenizing is over (or the run ended)
            task = None
            try:
                bar.stop()
            except OSError:   # a terminal that is gone
                pass
        return False
    return consume


def cmd_inspect(args) -> int:
    from core.inference.inside import (
        anatomy,
        attention_glance,
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
                    "lens": [[{"top": [[i, p] for i, p in cell.top]} for cell in row] for row in lens]}
    if args.ablate:
        target = target_id(session, args.prompt, args.target, lens[-1][-1])
        prob, delta = head_knockouts(session, ids, target)
        result["ablation"] = {"position": len(ids) - 1, "target": target, "prob": prob, "delta": delta}
    if args.json:
        _print_json_with_attention(session, ids, result) if args.attention else print_json(result)
        return 0
    if args.attention:   # the text shows where the last token's heads look: one glance
        looks, _ = attention_glance(session, ids, len(ids) - 1)
        result["looks"] = [[look.most for look in block] for block in looks]
    _print_inspected(result, token_text)
    return 0


def _print_json_with_attention(session, ids: list[int], result: dict) -> None:
    """`result` as JSON with "attention" last, each block's weights written as its attention
    returns them: at a long prompt, every block's together would not fit in memory."""
    from core.inference.inside import attention_by_block

    head = json.dumps(result, ensure_ascii=False)
    sys.stdout.write(head[:-1] + ', "attention": [')

    def write(block: int, weights) -> None:   # (heads, T, T)
        rows = [[weights[h, q, :q + 1].tolist() for q in range(len(ids))] for h in range(weights.shape[0])]
        sys.stdout.write((", " if block else "") + json.dumps(rows))

    attention_by_block(session, ids, write)
    sys.stdout.write("]}\n")
    sys.stdout.flush()


def _print_inspected(result: dict, token_text) -> None:
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
    if "looks" in result:
        for block, looks in enumerate(result["looks"], 1):
            console.print(f"block {block}: the last token's heads look most at positions {looks}")
    if "ablation" in result:
        ablation = result["ablation"]
        ranked = sorted(((d, b, h) for b, row in enumerate(ablation["delta"], 1)
                         for h, d in enumerate(row)), key=lambda t: t[0])[:5]
        console.print(f"target {printable(token_text([ablation['target']]))!r}: p = {ablation['prob']:.3f}; "
                      "knocking out lowers log p most for "
                      + ", ".join(f"block {b} head {h} ({d:+.3f})" for d, b, h in ranked))
