"""`rugpt-tui` command line. Headless subcommands never import Textual; no subcommand starts the app.

Exit codes: 0 success, 2 bad input (one line naming the file/setting), 1 internal error;
130 interrupted, 141 the reader of the output went away (as the signals would give).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

from core.base.errors import SaveError, UserError, one_line, require_utf8


def start_app(args) -> NoReturn:
    """The app itself; its first frame, kept from the last start, goes on the terminal
    before Textual is even imported (tui.process.early_frame)."""
    from core.store.workspace import peek_settings
    from tui.process.early_frame import draw

    saved = peek_settings()
    early = draw(saved.starting_model(args.model) if saved else None,
                 saved.starting_theme(None) if saved else None, args.lesson)
    try:
        from tui.shell.launch import run_app

        run_app(model=args.model, device=args.device, dtype=args.dtype,   # ends the process
                trust_remote_code=args.trust_remote_code, lesson=args.lesson, early_frame=early)
    finally:
        if early is not None:
            early.release()   # the app ended before its driver had the terminal


# The options that hold text for the model or a search (paths may be any bytes: not these).
TEXT_OPTIONS = {"text": "TEXT", "prompt": "--prompt", "stop": "--stop", "target": "--target",
                "system": "--system", "search": "--search", "sample_prompt": "--sample-prompt"}


def check_text_options(args) -> None:
    for name, shown in TEXT_OPTIONS.items():
        value = getattr(args, name, None)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                require_utf8(text, shown)


def main(argv: list[str] | None = None) -> int:
    from tui.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        check_text_options(args)
        if args.command is None:
            return start_app(args)
        module, function = args.run.split(":")   # tui.cli.parser.COMMANDS
        return getattr(importlib.import_module(module), function)(args)
    except UserError as exc:
        print(f"rugpt-tui: error: {exc}", file=sys.stderr)
        return 2
    except SaveError as exc:
        print(f"rugpt-tui: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # the reader went away (`… | head`): stop quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # nothing left to flush into it
        return 141
    except Exception as exc:
        if os.environ.get("RUGPT_TUI_DEBUG"):
            raise
        print(f"rugpt-tui: internal error: {one_line(exc)}",
              file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
