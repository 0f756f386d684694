"""The headless subcommands: thin wrappers that print what `core` computes."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.text import Text

from core.errors import UserError


def _session(args):
    from core.session import load_session

    return load_session(args.model, device=args.device, dtype=args.dtype,
                        trust_remote_code=args.trust_remote_code)


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cmd_demo_model(args) -> int:
    from core.demo import build_demo_model

    out = build_demo_model(args.out)
    print(f"demo model written to {out}")
    return 0


def cmd_info(args) -> int:
    session = _session(args)
    if session.notice:
        print(session.notice, file=sys.stderr)
    info = session.info.as_dict()
    if args.json:
        _print_json(info)
        return 0
    for key, value in info.items():
        shown = f"{value:,}" if key == "parameters" else value
        print(f"{key:>16}: {shown}")
    return 0


CHIP_STYLES = ("on #264f78", "on #4b3a6b")


def token_chips(view, raw: bool = False) -> Text:
    """Tokens as alternating coloured chips; partial-character tokens show their bytes."""
    out = Text()
    for i, tok in enumerate(view.tokens):
        if raw:
            label = tok.raw
        elif tok.special:
            label = tok.raw
        elif tok.text:
            label = tok.text.replace("\n", "↵\n").replace(" ", "·")
        else:
            label = f"‹{tok.bytes}›"
        style = "bold on #7a3b3b" if tok.special else CHIP_STYLES[i % 2]
        out.append(label, style=style)
    return out


def cmd_tokenize(args) -> int:
    from core.tokenview import tokenize_view

    session = _session(args)
    view = tokenize_view(session.tokenizer, args.text)
    if args.json:
        _print_json(view.as_json())
        return 0
    console = Console(highlight=False)
    console.print(token_chips(view, raw=args.raw))
    console.print(f"{view.count} tokens, {len(view.text)} characters, "
                  f"{view.chars_per_token:.2f} chars/token")
    return 0


def cmd_generate(args) -> int:
    from core.generation import Done, Notice, TokenEvent, generate_stream
    from core.sampling import SamplingSettings

    settings = SamplingSettings(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, greedy=args.greedy,
        max_new_tokens=args.max_new_tokens, seed=args.seed, stop=tuple(args.stop),
    ).validate()  # bad settings fail before the model loads
    session = _session(args)
    if session.notice:
        print(session.notice, file=sys.stderr)
    for event in generate_stream(session, args.prompt, settings):
        if isinstance(event, Notice):
            print(f"note: {event.message}", file=sys.stderr)
        elif isinstance(event, TokenEvent):
            if args.jsonl:
                _print_json(event.as_json())
            elif event.text:
                sys.stdout.write(event.text)
                sys.stdout.flush()
        elif isinstance(event, Done):
            if args.jsonl:
                _print_json(event.as_json())
            else:
                sys.stdout.write("\n")
                sys.stdout.flush()
                print(f"{event.new_tokens} tokens, {event.tokens_per_s:.1f} tokens/s, "
                      f"stop: {event.stop_reason}, seed {event.seed}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    raise UserError("train: not available in this build")
