"""`rugpt-tui train`: a fine-tuning run from the command line — the settings not given taken
from the model's defaults, a progress bar (or `--jsonl` lines), the run recorded in the
workspace, and a terminal that hangs up never killing it; `--dry-run` shows the data as the
run would train on it instead, and `--queue` / `--sweep` hand the run to the queue
(tui.cli.queue_commands)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from core.base.errors import UserError, one_line
from core.base.hangup import TerminalWatch, silence_terminal, terminal_fd
from core.base.safe_write import FolderLock
from core.base.settings import TRAIN_SETTINGS, default_block_size, train_defaults
from core.data.rows import trained_row
from core.data.source import resolve_source
from core.model.lora import adapter_settings, is_adapter_folder
from core.store.recorder import RunRecorder
from core.tokens.pieces import piece_table
from core.training import events as ev
from core.training.config import TrainConfig, TrainControl, check_paths
from core.training.events import tee
from core.training.sharding import check_launched
from tui.cli.commands import load_model, open_store, print_json, tokenize_progress
from tui.cli.options import given
from tui.render.chips import sample_text
from tui.render.summaries import counted, dialogue_line, saved_text


def cmd_train(args) -> int:
    from core.training.loop import train

    if args.queue or args.sweep:
        from tui.cli.queue_commands import queue_train

        return queue_train(args)
    config, chosen = _checked_config(args)   # bad settings and paths fail before the model loads
    session = load_model(args, for_training=True)
    config = _with_model_defaults(session, config, chosen)
    if session.notice:
        print(session.notice, file=sys.stderr)
    if args.dry_run:
        return dry_run(session, config)
    if config.lora and session.adapter is None:   # a target matching nothing: before any write
        from core.model.lora import LoraSpec, target_layers

        target_layers(session.model, LoraSpec.of(config))
    control = TrainControl()
    # one record of the run, in the workspace of the machine of rank 0 (the others emit nothing)
    recorded = not args.no_record and os.environ.get("RANK", "0") == "0"
    with _recorded(open_store() if recorded else None, session, config, args.queue_item) as record, \
            _hangup_proof(control, args.on_hangup) as terminal:
        if args.jsonl:   # the lines on stdout; tokenizing progress on stderr
            tokenizing = tokenize_progress(Console(stderr=True, highlight=False))

            def print_line(event: ev.TrainEvent) -> None:
                if not tokenizing(event):
                    print_json(event.as_json())
            try:
                result = train(session, config, on_event=tee(terminal.shown(print_line), record),
                               control=control)
            finally:
                tokenizing(None)
        else:
            result = _train_with_progress(session, config, control, record, terminal.shown)
        # its end was seen: nothing to announce (a queued run's end nobody watched: the app says it)
        seen = not terminal.hung_up.locked() and args.queue_item is None
        if record is not None and seen:
            record.seen()
        if args.notify and seen:
            from tui.render.notify import notification

            sys.stderr.write(notification("rugpt-tui: training ended",
                                          f"{result.steps} steps · stop: {result.stop_reason}"))
            sys.stderr.flush()
    if result.save_error:
        print(f"rugpt-tui: error: {result.save_error}", file=sys.stderr)
        return 1
    return 1 if result.stop_reason in ("nan", "oom") else 0


def _checked_config(args) -> tuple[TrainConfig, dict]:
    """The run's settings as given, checked, with the paths it reads and writes: an output
    folder that could cost a user a file, or one another run writes to, is refused now."""
    chosen = given(args, TRAIN_SETTINGS)
    if is_adapter_folder(args.model):
        chosen.setdefault("lora", True)   # a LoRA checkpoint goes on training its adapter
    config = TrainConfig(train=args.train, test=args.test, out=args.out, resume=args.resume,
                         **chosen).validate()
    check_launched(config)   # --fsdp outside torchrun: before the model loads
    check_paths(config)
    if config.out and os.environ.get("RANK", "0") == "0":   # rank 0 alone writes (and locks)
        FolderLock(Path(config.out).resolve()).acquire().release()
    return config, chosen


def _with_model_defaults(session, config: TrainConfig, chosen: dict) -> TrainConfig:
    """Settings not given take the model's defaults (the Train pane's too): an adapter its
    base's preset, and its own rank, alpha and targets."""
    preset = session.info.base_model or session.info.model
    dialogues = resolve_source(config.train).dialogues
    defaults = {**train_defaults(preset, session.max_positions, lora=config.lora, dialogues=dialogues),
                **adapter_settings(session)}
    return replace(config, **{k: v for k, v in defaults.items() if k not in chosen}).validate()


@contextmanager
def _recorded(store, session, config: TrainConfig, queue_item: int | None = None):
    """The run in the workspace (when there is one): a run refused before it began is
    forgotten — unless the queue started it, where every item leaves a run behind — and one
    that failed later is recorded as failed."""
    record, sweep = None, None
    if store is not None:
        if queue_item is not None:
            from core.queue.items import RunQueue

            queue = RunQueue(store)
            sweep = next((i.sweep for i in queue.items() if i.id == queue_item), None)
        record = RunRecorder(store, store.start_run(session.info.model, config,
                                                    resolve_source(config.train).fingerprint, sweep))
        if queue_item is not None:
            queue.started(queue_item, record.run_id)
    try:
        yield record
    except BaseException as exc:
        if record is not None:
            record.failed(str(exc) if isinstance(exc, UserError) else one_line(exc),
                          refused=isinstance(exc, UserError) and queue_item is None)
        raise


class _Terminal:
    """What the run does when its terminal goes away: keep training (or save and stop),
    silently; printing never kills it."""

    def __init__(self, control: TrainControl, on_hangup: str) -> None:
        self.control, self.on_hangup = control, on_hangup
        self.hung_up = threading.Lock()

    def hangup(self, *_) -> None:
        if not self.hung_up.acquire(blocking=False):   # once (SIGHUP, a failed write, the watch)
            return
        silence_terminal()
        if self.on_hangup == "stop":
            self.control.stop.set()

    def shown(self, show):
        def on_event(event) -> None:
            try:
                show(event)
            except OSError:   # output failing means the terminal is gone
                self.hangup()
        return on_event


@contextmanager
def _hangup_proof(control: TrainControl, on_hangup: str):
    """Signals while the run lasts: ctrl+c and SIGTERM finish the current step, save (with
    --out) and exit (a second ctrl+c kills); SIGHUP, or a terminal that dies without one, is
    a hangup; SIGUSR1 / SIGUSR2 are the app's stop-without-saving and save-now for a run on
    several processes."""
    terminal = _Terminal(control, on_hangup)
    def interrupted(*_) -> None:   # the first ctrl+c; a second one kills
        control.stop.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    def stop_unsaved(*_) -> None:
        control.save_on_stop = False
        control.stop.set()

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, interrupted),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: control.stop.set()),
        signal.SIGHUP: signal.signal(signal.SIGHUP, terminal.hangup),
        signal.SIGUSR1: signal.signal(signal.SIGUSR1, stop_unsaved),
        signal.SIGUSR2: signal.signal(signal.SIGUSR2, lambda *_: control.save_now.set()),
    }
    fd = terminal_fd()
    watch = TerminalWatch(fd, terminal.hangup).start() if fd is not None else None
    try:
        yield terminal
    finally:
        if watch is not None:
            watch.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _train_with_progress(session, config: TrainConfig, control: TrainControl, record, shown):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from core.training.loop import train

    console = Console(stderr=True, highlight=False)
    tokenizing = tokenize_progress(console)
    bar = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console)
    task = bar.add_task("train", total=None, info="")

    def on_event(event: ev.TrainEvent) -> None:
        if tokenizing(event):
            return
        match event:
            case ev.Stats(train=tr, test=te, mode=mode):
                bar.start()   # the data is valid: from here on there is progress to show
                bar.console.print(f"train: {counted(tr['samples'], 'sample')}, "
                                  f"{counted(tr['tokens'], 'token')}, longest {tr['longest']}; "
                                  f"test: {counted(te['samples'], 'sample')} ({mode}); "
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
                                  + saved_text(event.out, event.kept_step, config.keep_best))

    try:
        return train(session, config, on_event=tee(shown(on_event), record), control=control)
    finally:
        tokenizing(None)
        try:
            bar.stop()
        except OSError:   # its last refresh, to a terminal that is gone
            pass


# -- --dry-run: the data as the run would train on it, and no training ------------------------

SAMPLES_SHOWN = 3


def dry_run(session, config: TrainConfig, samples: int = SAMPLES_SHOWN) -> int:
    from core.training.batches import prepare_data
    from core.training.events import Tokenizing

    tokenizing = tokenize_progress(Console(stderr=True, highlight=False))
    block = config.block_size or default_block_size(session.max_positions)
    try:
        prepared = prepare_data(session.tokenizer, config, block,
                                progress=lambda done, total: tokenizing(Tokenizing(done, total)))
    finally:
        tokenizing(None)
    out = Console(highlight=False, soft_wrap=True)
    plain = not out.is_terminal or out.no_color
    stats, rows = prepared.stats, prepared.train_rows
    train, test = stats["train"], stats["test"]
    out.print(f"train: {counted(train['samples'], 'sample')}, {counted(train['tokens'], 'token')}, "
              f"longest {train['longest']}; test: {counted(test['samples'], 'sample')}, "
              f"{counted(test['tokens'], 'token')}")
    out.print(f"{counted(stats['train_rows'], 'row')} of at most {block} tokens ({stats['mode']}"
              + (": texts joined, end of text between them, cut into blocks" if stats["mode"] == "pack"
                 else ": one text a row, padded in its batch") + ")")
    if "dialogue" in stats:
        out.print(dialogue_line(stats["dialogue"]["train"]))
    out.print("scored tokens in colour, unscored ones dimmed and struck through" if not plain
              else "tokens parted by |, unscored runs in ⟦ ⟧ (a row's first token is never scored)")
    pad = session.tokenizer.pad_token_id
    pad = pad if pad is not None else session.tokenizer.eos_token_id
    table = piece_table(session.tokenizer)
    for i in range(min(samples, len(rows))):
        ids, scored = trained_row(rows, i, pad)
        out.print(f"\nrow {i + 1} of {len(rows):,}: {len(ids)} tokens, {sum(scored)} scored")
        out.print(sample_text(table, ids, scored, plain=plain))
    sys.stdout.flush()
    return 0
