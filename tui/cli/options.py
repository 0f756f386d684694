"""Options drawn from the settings' declarations (core.base.settings): each declared setting
becomes a command-line option, and what the command line named is read back as settings.
Shared by the parser and the commands."""

from __future__ import annotations

import argparse

from core.base.settings import DEFAULT_MODEL, DEVICES, DTYPES, TRAIN_PRESETS, Setting

# Settings whose default depends on the model (core.base.settings.TRAIN_PRESETS).
PER_MODEL = tuple(sorted({name for preset in TRAIN_PRESETS.values() for name in preset}))


def add_model_args(p: argparse.ArgumentParser, remembered: bool = False) -> None:
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


