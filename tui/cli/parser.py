"""The command line's shape: every subcommand, its options and their help."""

from __future__ import annotations

import argparse

from core.base.settings import DEVICES, DTYPES, SAMPLING_SETTINGS, TRAIN_SETTINGS
from core.data.templates import TEMPLATE_CHOICES
from tui.cli.options import PER_MODEL, add_model_args, add_settings

ROW_ID = 2**63 - 1   # the largest id the workspace (SQLite) can hold


def whole(low: int, high: int = ROW_ID):
    """An option's type: a whole number in [low, high], else argparse's one-line error."""
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value}: must be in [{low}, {high}]")
        return value
    return parse


# Each subcommand and the function that runs it ("module:function"), imported only when that
# command runs: the headless commands never import Textual, nor each other's libraries.
COMMANDS = {
    "demo-model": "tui.cli.commands:cmd_demo_model",
    "info": "tui.cli.commands:cmd_info",
    "tokenize": "tui.cli.commands:cmd_tokenize",
    "generate": "tui.cli.commands:cmd_generate",
    "train": "tui.cli.train_command:cmd_train",
    "eval": "tui.cli.eval_command:cmd_eval",
    "export": "tui.cli.commands:cmd_export",
    "chat": "tui.cli.chat_commands:cmd_chat",
    "chats": "tui.cli.chat_commands:cmd_chats",
    "history": "tui.cli.commands:cmd_history",
    "serve": "tui.cli.serve_command:cmd_serve",
    "runs": "tui.cli.queue_commands:cmd_runs",
    "queue": "tui.cli.queue_commands:cmd_queue",
    "inspect": "tui.cli.commands:cmd_inspect",
}


def add_eval(sub) -> None:
    """`eval`: several --model, so the model options are its own."""
    p = sub.add_parser("eval", help="score models on held-out data: loss and perplexity")
    p.add_argument("--model", action="append", required=True,
                   help="hub id, model folder, adapter folder or 'demo'; repeat to compare")
    p.add_argument("--data", required=True, help="held-out texts or dialogues (as for train)")
    p.add_argument("--block-size", type=int, default=None,
                   help="window of tokens scored at once (default: the model's context, at most 1024)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--dtype", default="auto", choices=DTYPES)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--json", action="store_true")


def add_inspect(sub) -> None:
    """`inspect`: one prompt, opened up."""
    p = sub.add_parser("inspect", help="inside the model: what each block predicts, where each "
                                       "head looks, what knocking a head out changes")
    add_model_args(p)
    p.add_argument("--prompt", required=True)
    p.add_argument("--top", type=whole(1), default=5, help="most probable next tokens per cell (default 5)")
    p.add_argument("--attention", action="store_true", help="every head's attention weights")
    p.add_argument("--ablate", action="store_true",
                   help="knock each head out in turn: the change in log p of the next token")
    p.add_argument("--target", default=None, metavar="TEXT",
                   help="with --ablate: the token measured is TEXT's first, as it follows the prompt")
    p.add_argument("--json", action="store_true")


def add_history(sub) -> None:
    p = sub.add_parser("history", help="past generations, newest first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--search", default=None, metavar="TEXT", help="only those whose prompt or text holds TEXT")
    p.add_argument("--limit", type=whole(1), default=50, help="at most this many (default 50)")


def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="past training runs, newest first")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=whole(1), default=50, help="at most this many (default 50)")
    p.add_argument("--sweep", type=whole(1), default=None, metavar="ID",
                   help="the sweep's table: one row per run, the settings that differ, best eval loss")
    p.add_argument("--export", choices=["csv"], default=None,
                   help="every run's curves as CSV on stdout (run, step, loss, lr, tokens/s, eval loss)")


def add_queue(sub) -> None:
    p = sub.add_parser("queue", help="runs queued for the headless runner (train --queue / --sweep)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--clear", action="store_true", help="take every waiting run out of the queue")
    p.add_argument("--pause", action="store_true",
                   help="let the current run end, then start no other until --resume")
    p.add_argument("--resume", action="store_true", help="go on with the queue after --pause")
    p.add_argument("--remove", type=whole(1), default=None, metavar="ID", help="take waiting run ID out")
    p.add_argument("--runner", action="store_true", help=argparse.SUPPRESS)   # the runner itself


def add_serve(sub) -> None:
    """`serve`: the app's own model options, and where to listen."""
    p = sub.add_parser("serve", help="the app in a browser: one app per tab (textual-serve)")
    add_model_args(p, remembered=True)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; reach it by an SSH tunnel)")
    p.add_argument("--port", type=whole(0, 65535), default=8000,
                   help="default 8000 (with --socket: the port the printed tunnel forwards)")
    p.add_argument("--socket", metavar="PATH",
                   help="listen on a Unix socket only your account can open (for ssh -L), not on a port")
    p.add_argument("--token-file", metavar="PATH",
                   help="the token in this file's first line (mode 600) instead of a new one each start")
    p.add_argument("--max-tabs", type=whole(1, 256), default=4, help="app processes at once (default 4)")
    p.add_argument("--lesson", action="store_true", help="each tab starts with the lesson open")


def add_train(sub) -> None:
    """`train`: the data, the output, every training setting, and the queue."""
    p = sub.add_parser("train", help="fine-tune on your texts")
    add_model_args(p)
    p.add_argument("--train", required=True, help=".txt, .jsonl/.json, .csv, a folder of .txt, or a hub dataset")
    p.add_argument("--test", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--resume", default=None)
    add_settings(p, TRAIN_SETTINGS, per_model=PER_MODEL)
    p.add_argument("--on-hangup", choices=["keep", "stop"], default="keep",
                   help="the terminal hangs up mid-run: keep training to the end (default), "
                        "or save and stop")
    p.add_argument("--jsonl", action="store_true")
    p.add_argument("--notify", action="store_true",
                   help="ring the terminal's bell (and send a desktop notification) when the run ends")
    p.add_argument("--dry-run", action="store_true",
                   help="show the data's statistics and first rows as they would be trained, then exit")
    p.add_argument("--no-record", action="store_true", help=argparse.SUPPRESS)   # the app records
    p.add_argument("--queue", action="store_true",
                   help="add the run to the workspace's queue: a headless runner starts it after "
                        "the runs before it, with no terminal needed")
    p.add_argument("--sweep", action="append", default=[], metavar="SETTING=V1,V2,…",
                   help="queue one run per combination of the values given (repeatable), each in "
                        "a folder of its own inside --out")
    p.add_argument("--queue-item", type=int, default=None, help=argparse.SUPPRESS)   # the runner's


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rugpt-tui", description="Explore and fine-tune a Russian GPT in the terminal.")
    add_model_args(parser, remembered=True)
    parser.add_argument("--lesson", action="store_true",
                        help="start with the lesson open: the notebook's tasks, step by step (F12)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo-model", help="write the tiny offline demo model to a folder")
    p.add_argument("--out", required=True)

    p = sub.add_parser("info", help="model class, parameters, device, dtype, vocabulary")
    add_model_args(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("tokenize", help="show how the tokenizer splits TEXT")
    add_model_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--raw", action="store_true", help="show byte-level vocabulary pieces")
    p.add_argument("text", metavar="TEXT")

    p = sub.add_parser("generate", help="stream text from the model")
    add_model_args(p)
    p.add_argument("--prompt", required=True)
    add_settings(p, SAMPLING_SETTINGS)
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--static-cache", action="store_true",
                   help="decode with a static KV cache and, on a GPU, a compiled step (CUDA graphs)")
    p.add_argument("--jsonl", action="store_true")

    add_inspect(sub)
    add_train(sub)

    p = sub.add_parser("export", help="merge a LoRA adapter into its base: a plain model folder")
    add_model_args(p)
    p.add_argument("--out", required=True, help="a new or empty folder (or an earlier export)")

    add_eval(sub)

    p = sub.add_parser("chat", help="talk to the model: one user message a line on stdin")
    add_model_args(p)
    p.add_argument("--system", default=None, help="the system prompt")
    p.add_argument("--template", default="auto", choices=TEMPLATE_CHOICES,
                   help="chat template (auto: the tokenizer's own, else plain-ru)")
    add_settings(p, SAMPLING_SETTINGS)
    p.add_argument("--jsonl", action="store_true")
    p.add_argument("--no-save", action="store_true", help="do not keep the conversation in the workspace")

    p = sub.add_parser("chats", help="stored conversations, newest first; export one")
    p.add_argument("--json", action="store_true")
    p.add_argument("--search", default=None, metavar="TEXT", help="only those whose title or messages hold TEXT")
    p.add_argument("--export", type=whole(1), default=None, metavar="ID", help="print conversation ID")
    p.add_argument("--format", choices=["md", "jsonl"], default="md",
                   help="with --export: Markdown, or one JSON line in the training format")

    add_history(sub)
    add_serve(sub)
    add_runs(sub)
    add_queue(sub)
    bind_commands(sub.choices)
    return parser


def bind_commands(subparsers: dict[str, argparse.ArgumentParser]) -> None:
    """Each subcommand runs the function COMMANDS names (`args.run`)."""
    if set(subparsers) != set(COMMANDS):
        raise RuntimeError(f"subcommands without a function, or functions without a subcommand: "
                           f"{sorted(set(subparsers) ^ set(COMMANDS))}")
    for name, parsed in subparsers.items():
        parsed.set_defaults(run=COMMANDS[name])
