"""`rugpt-tui` command line. Headless subcommands never import Textual; no subcommand starts the app.

Exit codes: 0 success, 2 bad input (one line naming the file/setting), 1 internal error.
"""

from __future__ import annotations

import argparse
import os
import sys

from core import DEFAULT_MODEL
from core.chat_format import TEMPLATE_CHOICES
from core.errors import SaveError, UserError, one_line
from core.settings import DEVICES, DTYPES, SAMPLING_SETTINGS, TRAIN_PRESETS, TRAIN_SETTINGS, Setting

# Settings whose default depends on the model (core.settings.TRAIN_PRESETS).
PER_MODEL = tuple(sorted({name for preset in TRAIN_PRESETS.values() for name in preset}))


def _add_model_args(p: argparse.ArgumentParser, remembered: bool = False) -> None:
    """The model options. The app (`remembered`) takes what is not given from its settings
    file — the last model, device and dtype; a subcommand takes the defaults."""
    if remembered:
        p.add_argument("--model", default=None,
                       help=f"hub id, model folder, or 'demo' (default: the last one, else {DEFAULT_MODEL})")
        p.add_argument("--device", default=None, choices=DEVICES, help="default: the last one, else auto")
        p.add_argument("--dtype", default=None, choices=DTYPES, help="default: the last one, else auto")
    else:
        p.add_argument("--model", default=DEFAULT_MODEL, help="hub id, model folder, or 'demo'")
        p.add_argument("--device", default="auto", choices=DEVICES)
        p.add_argument("--dtype", default="auto", choices=DTYPES)
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow model repositories to run their own code (off by default)")


def add_settings(p: argparse.ArgumentParser, settings: tuple[Setting, ...],
                 per_model: tuple[str, ...] = ()) -> None:
    """One option per declared setting. Every default is None — "not given" — so the
    command can tell the user's choice from a default, which `core` fills in."""
    for s in settings:
        if not s.cli:
            continue
        default = s.show(s.default) or "none"
        if s.name in per_model:
            named = [f"{model} {s.show(preset[s.name])}" for model, preset in TRAIN_PRESETS.items()
                     if s.name in preset]
            default = f"per model: {', '.join(named)}, else {default}"
        help_text = f"{s.help} (default: {default})"
        if s.kind is bool:
            if s.off_flag:
                group = p.add_mutually_exclusive_group()
                group.add_argument(s.flag, dest=s.name, action="store_true", default=None,
                                   help=help_text)
                group.add_argument(s.off_flag, dest=s.name, action="store_false", default=None)
            else:
                p.add_argument(s.flag, dest=s.name, action="store_true", default=None, help=s.help)
        else:
            p.add_argument(s.flag, dest=s.name, type=s.kind, default=None,
                           choices=s.choices or None, help=help_text)


def given(args: argparse.Namespace, settings: tuple[Setting, ...]) -> dict:
    """The settings the command line named."""
    return {s.name: getattr(args, s.name) for s in settings
            if s.cli and getattr(args, s.name) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rugpt-tui", description="Explore and fine-tune a Russian GPT in the terminal.")
    _add_model_args(parser, remembered=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo-model", help="write the tiny offline demo model to a folder")
    p.add_argument("--out", required=True)

    p = sub.add_parser("info", help="model class, parameters, device, dtype, vocabulary")
    _add_model_args(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("tokenize", help="show how the tokenizer splits TEXT")
    _add_model_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--raw", action="store_true", help="show byte-level vocabulary pieces")
    p.add_argument("text", metavar="TEXT")

    p = sub.add_parser("generate", help="stream text from the model")
    _add_model_args(p)
    p.add_argument("--prompt", required=True)
    add_settings(p, SAMPLING_SETTINGS)
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--static-cache", action="store_true",
                   help="decode with a static KV cache and, on a GPU, a compiled step (CUDA graphs)")
    p.add_argument("--jsonl", action="store_true")

    p = sub.add_parser("train", help="fine-tune on your texts")
    _add_model_args(p)
    p.add_argument("--train", required=True, help=".txt, .jsonl/.json, .csv, a folder of .txt, or a hub dataset")
    p.add_argument("--test", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--resume", default=None)
    add_settings(p, TRAIN_SETTINGS, per_model=PER_MODEL)
    p.add_argument("--on-hangup", choices=["keep", "stop"], default="keep",
                   help="the terminal hangs up mid-run: keep training to the end (default), "
                        "or save and stop")
    p.add_argument("--jsonl", action="store_true")
    p.add_argument("--no-record", action="store_true", help=argparse.SUPPRESS)   # the app records

    p = sub.add_parser("export", help="merge a LoRA adapter into its base: a plain model folder")
    _add_model_args(p)
    p.add_argument("--out", required=True, help="a new or empty folder (or an earlier export)")

    p = sub.add_parser("chat", help="talk to the model: one user message a line on stdin")
    _add_model_args(p)
    p.add_argument("--system", default=None, help="the system prompt")
    p.add_argument("--template", default="auto", choices=TEMPLATE_CHOICES,
                   help="chat template (auto: the tokenizer's own, else plain-ru)")
    add_settings(p, SAMPLING_SETTINGS)
    p.add_argument("--jsonl", action="store_true")
    p.add_argument("--no-save", action="store_true", help="do not keep the conversation in the workspace")

    p = sub.add_parser("chats", help="stored conversations, newest first; export one")
    p.add_argument("--json", action="store_true")
    p.add_argument("--search", default=None, metavar="TEXT", help="only those whose title or messages hold TEXT")
    p.add_argument("--export", type=int, default=None, metavar="ID", help="print conversation ID")
    p.add_argument("--format", choices=["md", "jsonl"], default="md",
                   help="with --export: Markdown, or one JSON line in the training format")

    p = sub.add_parser("history", help="past generations, newest first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--search", default=None, metavar="TEXT", help="only those whose prompt or text holds TEXT")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    p = sub.add_parser("runs", help="past training runs, newest first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:   # the command itself, not a call from Python: tune the C heap first
        from core.host_memory import restart_tuned

        restart_tuned()
    args = build_parser().parse_args(argv)
    try:
        if args.command is None:
            from tui.launch import run_app

            return run_app(model=args.model, device=args.device, dtype=args.dtype,
                           trust_remote_code=args.trust_remote_code)
        if args.command in ("chat", "chats"):
            from tui import headless_chat as commands
        else:
            from tui import headless as commands
        return getattr(commands, "cmd_" + args.command.replace("-", "_"))(args)
    except UserError as exc:
        print(f"rugpt-tui: error: {exc}", file=sys.stderr)
        return 2
    except SaveError as exc:
        print(f"rugpt-tui: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("RUGPT_TUI_DEBUG"):
            raise
        print(f"rugpt-tui: internal error: {one_line(exc)}",
              file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
