"""`rugpt-tui` command line. Headless subcommands never import Textual; no subcommand starts the app.

Exit codes: 0 success, 2 bad input (one line naming the file/setting), 1 internal error.
"""

from __future__ import annotations

import argparse
import os
import sys

from core import DEFAULT_MODEL
from core.errors import SaveError, UserError, one_line


def _add_model_args(p: argparse.ArgumentParser, default=DEFAULT_MODEL) -> None:
    p.add_argument("--model", default=default, help="hub id, model folder, or 'demo'")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow model repositories to run their own code (off by default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rugpt-tui", description="Explore and fine-tune a Russian GPT in the terminal.")
    _add_model_args(parser)
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
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--greedy", action="store_true")
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--jsonl", action="store_true")

    p = sub.add_parser("train", help="fine-tune on your texts")
    _add_model_args(p)
    p.add_argument("--train", required=True, help=".txt, .jsonl/.json, .csv, a folder of .txt, or a hub dataset")
    p.add_argument("--test", default=None)
    p.add_argument("--test-split", type=float, default=0.1, help="held-out share when --test is not given")
    p.add_argument("--epochs", type=float, default=None, help="default: per model (demo 8, else 2)")
    p.add_argument("--lr", type=float, default=None, help="default: per model (demo 3e-3, else 5e-5)")
    p.add_argument("--batch-size", type=int, default=None, help="default 8")
    p.add_argument("--block-size", type=int, default=None,
                   help="default: per model (demo 32, else min(context, 1024))")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--pack", dest="pack", action="store_true", default=True)
    mode.add_argument("--pad", dest="pack", action="store_false")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--warmup", type=float, default=0.05, help="warmup share of the steps")
    p.add_argument("--schedule", choices=["cosine", "linear"], default="cosine")
    p.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps")
    p.add_argument("--mixed-precision", choices=["auto", "no", "bf16", "fp16"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-prompt", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--resume", default=None)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--jsonl", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command is None:
            from tui.app import run_app

            return run_app(model=args.model, device=args.device, dtype=args.dtype,
                           trust_remote_code=args.trust_remote_code)
        from tui import commands

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
