"""The headless subcommands: thin wrappers that print what `core` computes."""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.text import Text

from core import train_events as ev
from core.data import describe, dialogue_line, fingerprint
from core.errors import UserError, one_line
from core.hangup import TerminalWatch, silence_terminal, terminal_fd
from core.lora import adapter_settings, is_adapter_folder
from core.safe_write import FolderLock
from core.settings import SAMPLING_SETTINGS, TRAIN_SETTINGS, train_defaults
from core.store import RunRecorder, Store
from core.train_config import TrainConfig, TrainControl, check_paths
from tui.chips import CHIP_STYLES, ChipMaker
from tui.cli import given


def tee(*consumers):
    """One event stream to several consumers (None: not there)."""
    present = [c for c in consumers if c is not None]

    def on_event(event) -> None:
        for consume in present:
            consume(event)
    return on_event


def _store() -> Store | None:
    """The workspace database, or None (said once on stderr) when it cannot be used: the
    command still does its work."""
    try:
        return Store.open()
    except UserError as exc:
        print(f"note: {exc}", file=sys.stderr)
        return None


def _session(args):
    from core.session import load_session

    return load_session(args.model, device=args.device, dtype=args.dtype,
                        trust_remote_code=args.trust_remote_code)


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cmd_demo_model(args) -> int:
    from core.demo import write_demo_model

    out = write_demo_model(args.out)
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

    settings = SamplingSettings(**given(args, SAMPLING_SETTINGS), stop=tuple(args.stop)).validate()
    session = _session(args)   # bad settings failed above, before the model loads
    if session.notice:
        print(session.notice, file=sys.stderr)
    store = _store()
    for event in generate_stream(session, args.prompt, settings, static=args.static_cache):
        if isinstance(event, Notice):
            print(f"note: {event.message}", file=sys.stderr)
        elif isinstance(event, TokenEvent):
            if args.jsonl:
                _print_json(event.as_json())
            elif event.text:
                sys.stdout.write(event.text)
                sys.stdout.flush()
        elif isinstance(event, Done):
            if store is not None:
                store.add_generation(session.info.model, args.prompt, event.text, event.seed,
                                     settings.as_record(), event.new_tokens, event.tokens_per_s,
                                     event.stop_reason)
            if args.jsonl:
                _print_json(event.as_json())
            else:
                sys.stdout.write("\n")
                sys.stdout.flush()
                print(f"{event.new_tokens} tokens, {event.tokens_per_s:.1f} tokens/s, "
                      f"stop: {event.stop_reason}, seed {event.seed}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from core.training import train

    chosen = given(args, TRAIN_SETTINGS)
    if is_adapter_folder(args.model):
        chosen.setdefault("lora", True)   # a LoRA checkpoint goes on training its adapter
    config = TrainConfig(train=args.train, test=args.test, out=args.out, resume=args.resume,
                         **chosen).validate()   # bad settings fail before the model loads
    check_paths(config)   # so does an output folder that could cost a user a file
    if config.out:        # …or one another run is writing to
        FolderLock(Path(config.out).resolve()).acquire().release()
    session = _session(args)
    # Settings not given take the model's defaults (the Train pane's too).
    preset = session.info.base_model or session.info.model   # an adapter: its base's
    defaults = {**train_defaults(preset, session.max_positions, lora=config.lora),
                **adapter_settings(session)}   # a loaded adapter's rank, alpha, targets
    config = replace(config, **{k: v for k, v in defaults.items() if k not in chosen}).validate()
    if session.notice:
        print(session.notice, file=sys.stderr)
    if config.lora and session.adapter is None:   # a target matching nothing: before any write
        from core.lora import LoraSpec, target_layers

        target_layers(session.model, LoraSpec.of(config))

    store = None if args.no_record else _store()
    record, started = None, False
    if store is not None:
        run_id = store.start_run(session.info.model, config, fingerprint(config.train))
        recorder = RunRecorder(store, run_id)

        def record(event: ev.TrainEvent) -> None:
            nonlocal started
            started = started or isinstance(event, ev.Stats)   # the data was accepted
            recorder(event)
    control = TrainControl()

    hung_up = threading.Lock()

    def hangup(*_) -> None:   # the terminal is gone: keep training (or save and stop), silently
        if not hung_up.acquire(blocking=False):   # once (SIGHUP, a failed write, the watch)
            return
        silence_terminal()
        if args.on_hangup == "stop":
            control.stop.set()

    def shown(show):   # printing never kills a run: output failing means the terminal is gone
        def on_event(event) -> None:
            try:
                show(event)
            except OSError:
                hangup()
        return on_event

    # ctrl+c and SIGTERM: finish the current step, save (with --out), then exit; a second
    # ctrl+c kills
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: (
            control.stop.set(), signal.signal(signal.SIGINT, signal.SIG_DFL))),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: control.stop.set()),
        signal.SIGHUP: signal.signal(signal.SIGHUP, hangup),
        # the app's run on several processes: stop without saving, save now
        signal.SIGUSR1: signal.signal(signal.SIGUSR1, lambda *_: (
            setattr(control, "save_on_stop", False), control.stop.set())),
        signal.SIGUSR2: signal.signal(signal.SIGUSR2, lambda *_: control.save_now.set()),
    }
    fd = terminal_fd()   # a terminal can die without SIGHUP (blocked, ignored): watch it
    watch = TerminalWatch(fd, hangup).start() if fd is not None else None
    try:
        if args.jsonl:   # the lines on stdout; tokenizing progress on stderr
            tokenizing = _tokenize_progress(Console(stderr=True, highlight=False))

            def print_line(event: ev.TrainEvent) -> None:
                if not tokenizing(event):
                    _print_json(event.as_json())
            try:
                result = train(session, config, on_event=tee(shown(print_line), record), control=control)
            finally:
                tokenizing(None)
        else:
            result = _train_with_progress(session, config, control, record, shown)
    except BaseException as exc:
        if store is not None:
            if isinstance(exc, UserError) and not started:   # refused before it began
                store.discard_run(run_id)
            else:
                store.end_run(run_id, "failed", str(exc) if isinstance(exc, UserError) else one_line(exc))
        raise
    finally:
        if watch is not None:
            watch.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if store is not None and not hung_up.locked():   # its end was seen: nothing to announce later
        store.mark_seen([run_id])
    if result.save_error:
        print(f"rugpt-tui: error: {result.save_error}", file=sys.stderr)
        return 1
    if result.stop_reason in ("nan", "oom"):
        return 1
    return 0


def _train_with_progress(session, config: TrainConfig, control: TrainControl, record, shown):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from core.training import train

    console = Console(stderr=True, highlight=False)
    tokenizing = _tokenize_progress(console)
    bar = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console)
    task = bar.add_task("train", total=None, info="")

    def on_event(event: ev.TrainEvent) -> None:
        if tokenizing(event):
            return
        match event:
            case ev.Stats(train=tr, test=te, mode=mode):
                bar.start()   # the data is valid: from here on there is progress to show
                bar.console.print(f"train: {tr['samples']} samples, {tr['tokens']} tokens, longest "
                                  f"{tr['longest']}; test: {te['samples']} samples ({mode}); "
                                  f"each eval reads {event.eval_tokens:,} held-out tokens"
                                  + ("; tokens from the cache" if event.cached else ""))
                if event.dialogue:
                    bar.console.print(dialogue_line(event.dialogue["train"]))
            case ev.Step():
                bar.update(task, total=event.total_steps, completed=event.step,
                           info=f"loss {event.loss:.3f} lr {event.lr:.2e} "
                                f"{event.tokens_per_s:.0f} tok/s")
            case ev.Eval():
                bar.console.print(f"step {event.step}: eval loss {event.eval_loss:.4f}, "
                                  f"perplexity {event.perplexity:.1f}")
            case ev.Sample():
                bar.console.print(f"  sample: {event.text}")
            case ev.Notice() | ev.Error():
                bar.console.print(f"{event.kind}: {event.message}")
            case ev.Done():
                bar.console.print(f"done: {event.steps} steps, stop: {event.stop_reason}"
                                  + (f", saved to {event.out}" if event.out else ""))

    try:
        return train(session, config, on_event=tee(shown(on_event), record), control=control)
    finally:
        tokenizing(None)
        try:
            bar.stop()
        except OSError:   # its last refresh, to a terminal that is gone
            pass


def _tokenize_progress(console: Console):
    """A progress bar with ETA on stderr while the data is tokenized for the first time.
    Returns `consume(event) -> bool`: True for the events it showed; None ends the bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("[bold]tokenize"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("texts"), TimeRemainingColumn(), console=console, transient=True)
    task = None

    def consume(event) -> bool:
        nonlocal task
        if isinstance(event, ev.Tokenizing):
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


def cmd_export(args) -> int:
    from core.lora import export_merged
    from core.safe_write import check_output_folder

    if not is_adapter_folder(args.model):
        raise UserError(f"--model {args.model}: not a LoRA adapter folder (no adapter_config.json)")
    check_output_folder(args.out)   # refused before the model loads
    session = _session(args)
    out = export_merged(session, args.out)
    print(f"merged {args.model} (base {session.info.base_model}) into {out}")
    return 0


def cmd_history(args) -> int:
    store = _store()
    rows = store.history(search=args.search, limit=args.limit) if store else []
    if args.json:
        _print_json([{"time": r["time"], "model": r["model"], "prompt": r["prompt"], "text": r["text"],
                      "seed": r["seed"], "settings": r["settings"], "new_tokens": r["new_tokens"],
                      "tokens_per_s": r["tokens_per_s"]} for r in rows])
        return 0
    for r in rows:
        text = (r["prompt"] + r["text"]).replace("\n", " ")
        print(f"{r['time'][:19].replace('T', ' ')}  {r['model']}  seed {r['seed']}  {text[:100]}")
    if not rows:
        print("no generations yet" + (f" with {args.search!r}" if args.search else ""), file=sys.stderr)
    return 0


def cmd_runs(args) -> int:
    store = _store()
    rows = store.runs(limit=args.limit) if store else []
    if args.json:
        _print_json([{"id": r["id"], "time": r["time"], "model": r["model"], "train": r["train"],
                      "steps": r["steps"], "eval_loss": r["eval_loss"], "status": r["status"],
                      "out": r["out"], "replaced_by": r["replaced_by"], "data_hash": r["data_hash"],
                      "error": r["error"]} for r in rows])
        return 0
    for r in rows:
        loss = f"eval {r['eval_loss']:.3f}" if r["eval_loss"] is not None else "no eval"
        saved = f" → {r['out']}" if r["out"] else ""
        if r["replaced_by"]:
            saved += f" (replaced there by run #{r['replaced_by']})"
        print(f"#{r['id']:<4} {r['time'][:19].replace('T', ' ')}  {r['model']}  {describe(r['train'])}  "
              f"{r['steps']} steps  {loss}  {r['status']}{saved}")
    if not rows:
        print("no training runs yet", file=sys.stderr)
    return 0
