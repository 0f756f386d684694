"""Fine-tuning on Accelerate: your texts in, a better model out.

    train(session, TrainConfig(train="texts.txt", epochs=2, out="my-model"), on_event=print)

Events are plain dicts (the `train --jsonl` lines): stats, step, eval, sample, notice, error,
done. Only the main process emits them and writes checkpoints; under torchrun / accelerate
launch each rank trains on its shard and Accelerate averages the gradients.

Every optimizer step holds the session lock, so the UI can generate from the same weights
between steps; the sampler's private RNG never touches training's.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from core.errors import SaveError, UserError, one_line

Event = dict


@dataclass
class TrainConfig:
    train: str
    test: str | None = None
    test_split: float = 0.1
    epochs: float = 1.0
    lr: float = 5e-4
    batch_size: int = 8
    block_size: int | None = None       # default min(model context, 1024)
    pack: bool = True
    grad_accum: int = 1
    warmup: float = 0.05                 # share of the steps
    schedule: str = "cosine"             # cosine | linear
    weight_decay: float = 0.0
    clip: float = 1.0
    eval_every: int = 0                  # also evaluate every N steps (0: once per epoch)
    mixed_precision: str = "auto"        # auto | no | bf16 | fp16
    seed: int = 0
    sample_prompt: str | None = None
    sample_tokens: int = 32
    out: str | None = None
    resume: str | None = None
    max_steps: int | None = None

    def validate(self) -> TrainConfig:
        checks = [
            (self.epochs > 0, f"--epochs {self.epochs}: must be > 0"),
            (self.lr > 0, f"--lr {self.lr}: must be > 0"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size}: must be ≥ 1"),
            (self.block_size is None or self.block_size >= 2, f"--block-size {self.block_size}: must be ≥ 2"),
            (self.grad_accum >= 1, f"--grad-accum {self.grad_accum}: must be ≥ 1"),
            (0 <= self.warmup < 1, f"--warmup {self.warmup}: must be in [0, 1)"),
            (self.schedule in ("cosine", "linear"), f"--schedule {self.schedule}: cosine or linear"),
            (self.mixed_precision in ("auto", "no", "bf16", "fp16"),
             f"--mixed-precision {self.mixed_precision}: auto, no, bf16 or fp16"),
            (self.eval_every >= 0, f"--eval-every {self.eval_every}: must be ≥ 0"),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps {self.max_steps}: must be ≥ 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        return self


@dataclass
class TrainResult:
    steps: int
    eval_loss: float | None
    out: str | None
    stop_reason: str                    # done | cancel | nan | oom
    save_error: str | None = None       # the last save failed (the previous one is kept)


@dataclass
class PreparedData:
    train_rows: list[list[int]]
    test_rows: list[list[int]]
    stats: dict


def prepare_data(tokenizer, config: TrainConfig, block_size: int) -> PreparedData:
    """Load, validate, split and tokenize; rows are packed blocks or single texts."""
    from core.batching import pack_blocks, pad_samples
    from core.data import load_texts, split_train_test, stats_of, token_lists

    train_ds = load_texts(config.train)
    if config.test:
        test_ds = load_texts(config.test)
    else:
        train_ds, test_ds = split_train_test(train_ds, config.test_split, config.seed)
    train_ids = token_lists(tokenizer, list(train_ds["text"]))
    test_ids = token_lists(tokenizer, list(test_ds["text"]))
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError("the tokenizer has no end-of-text token to separate samples")
    if config.pack:
        train_rows = pack_blocks(train_ids, eos, block_size).tolist()
        test_rows = pack_blocks(test_ids, eos, block_size).tolist()
    else:
        train_rows = pad_samples(train_ids, eos, block_size)
        test_rows = pad_samples(test_ids, eos, block_size)
    stats = {"train": stats_of(train_ids, block_size).as_dict(),
             "test": stats_of(test_ids, block_size).as_dict(),
             "train_rows": len(train_rows), "test_rows": len(test_rows),
             "mode": "pack" if config.pack else "pad"}
    return PreparedData(train_rows, test_rows, stats)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of the rows in an epoch: a pure function of (seed, epoch), so a resumed run
    sees exactly the batches the uninterrupted one would have."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int):
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(1.0, max(0.0, progress))
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def _mixed_precision(choice: str, device: str) -> str:
    if choice != "auto":
        return choice
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def _reset_accelerate_state() -> None:
    """Accelerate keeps process-wide state; a second run in the same process (the TUI, tests)
    may ask for another precision or accumulation, so start from a clean slate."""
    from accelerate.state import AcceleratorState, GradientState

    if not torch.distributed.is_initialized():
        AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def train_defaults(model_name: str, max_positions: int) -> dict:
    """The settings a run gets where it does not say, in one place for the app and the CLI:
    quick settings that show learning within a minute on the tiny demo, conventional
    fine-tuning values on a real model."""
    if model_name == "demo":
        return {"epochs": 8.0, "lr": 3e-3, "batch_size": 8, "block_size": min(32, max_positions)}
    return {"epochs": 2.0, "lr": 5e-5, "batch_size": 8, "block_size": min(max_positions, 1024)}


@dataclass
class TrainControl:
    """Asks a running `train` to stop or to save, from another thread (the UI, a signal)."""
    stop: threading.Event = field(default_factory=threading.Event)
    save_now: threading.Event = field(default_factory=threading.Event)
    save_on_stop: bool = True    # a stopped run saves its checkpoint (when it has --out)


def check_paths(config: TrainConfig) -> None:
    """Where the run will read and write, checked before any data is loaded or step taken:
    an output folder that could cost a user a file is refused now, not after an hour."""
    from core.checkpoint import check_resumable
    from core.safe_write import check_output_folder

    if config.out:
        check_output_folder(config.out)
    if config.resume:
        check_resumable(config.resume)


def train(session, config: TrainConfig, on_event: Callable[[Event], None] = lambda e: None,
          should_stop: Callable[[], bool] = lambda: False,
          control: TrainControl | None = None) -> TrainResult:
    """Fine-tune `session.model` in place. The output folder is locked for the whole run, so
    a second run pointed at it is refused at its start."""
    from core.safe_write import FolderLock

    config.validate()
    check_paths(config)
    rank = int(os.environ.get("RANK", "0"))
    lock = FolderLock(Path(config.out).resolve()) if config.out and rank == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        return _train(session, config, on_event, should_stop, control)
    finally:
        if lock is not None:
            lock.release()


def _train(session, config: TrainConfig, on_event: Callable[[Event], None],
           should_stop: Callable[[], bool], control: TrainControl | None) -> TrainResult:
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from core.batching import RowsDataset, collate
    from core.checkpoint import STATE_DIR, read_trainer_state, save_checkpoint


    control = control or TrainControl()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    model, tokenizer = session.model, session.tokenizer
    device = str(model.device)
    block_size = config.block_size or min(session.max_positions, 1024)
    if block_size > session.max_positions:
        raise UserError(f"--block-size {block_size}: the model's context is {session.max_positions}")

    _reset_accelerate_state()
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(config.mixed_precision, device),
        gradient_accumulation_steps=config.grad_accum,
        cpu=device == "cpu",
    )
    main = accelerator.is_main_process
    def emit(event: Event) -> None:
        if main:
            on_event(event)

    data = prepare_data(tokenizer, config, block_size)
    emit({"event": "stats", **data.stats})
    if not data.train_rows:
        raise UserError(f"{config.train}: no training samples after tokenization")

    if model.dtype != torch.float32:
        # fp32 master weights; mixed precision (bf16 autocast) keeps the speed
        with session.lock:
            model.float()
        emit({"event": "notice", "message": "weights upcast to float32 for training"})

    torch.manual_seed(config.seed)  # training's RNG (dropout); generation has its own
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate_fn = collate(pad_id)
    world = accelerator.num_processes
    # A partial last batch is dropped (when there is a full one), so one process and several
    # see the same global batches.
    drop_last = len(data.train_rows) >= config.batch_size * world
    batches_per_epoch = (len(data.train_rows) // (config.batch_size * world) if drop_last
                         else math.ceil(len(data.train_rows) / (config.batch_size * world)))
    steps_per_epoch = max(1, batches_per_epoch // config.grad_accum)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    warmup_steps = int(config.warmup * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(config.schedule, warmup_steps, total_steps))
    # The scheduler stays out of prepare(): stepped once per optimizer step, it gives the
    # same schedule on one process and on many.
    model, optimizer = accelerator.prepare(model, optimizer)

    test_loader = accelerator.prepare(DataLoader(
        RowsDataset(data.test_rows), batch_size=config.batch_size, collate_fn=collate_fn))

    step = 0
    start_epoch = 0
    skip_batches = 0
    if config.resume:
        state = read_trainer_state(config.resume)   # checked whole by check_paths
        try:
            accelerator.load_state(f"{config.resume}/{STATE_DIR}")
        except Exception as exc:
            raise UserError(f"--resume {config.resume}: cannot load {STATE_DIR}/: "
                            f"{one_line(exc)}") from None
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        start_epoch = state["epoch"]
        skip_batches = state["batch_in_epoch"]
        emit({"event": "notice", "message": f"resumed from {config.resume} at step {step}"})

    def evaluate() -> float | None:
        """Token-weighted mean loss over the test set, exact under several processes
        (per-sample sums gathered without the padding samples shards may add)."""
        if not data.test_rows:
            return None
        unwrapped = accelerator.unwrap_model(model)
        sums, counts = [], []
        with session.lock:
            was_training = unwrapped.training
            unwrapped.eval()
            with torch.no_grad():
                for batch in test_loader:
                    with accelerator.autocast():
                        logits = model(input_ids=batch["input_ids"],
                                       attention_mask=batch["attention_mask"]).logits   # (B, T, V)
                    labels = batch["labels"][:, 1:]                                      # (B, T-1)
                    token_loss = torch.nn.functional.cross_entropy(
                        logits[:, :-1].float().transpose(1, 2), labels,
                        ignore_index=-100, reduction="none")                            # (B, T-1)
                    sample_sum, sample_count = accelerator.gather_for_metrics(
                        (token_loss.sum(1), (labels != -100).sum(1)))
                    sums.append(sample_sum)
                    counts.append(sample_count)
            if was_training:
                unwrapped.train()
        return float(torch.cat(sums).sum() / torch.cat(counts).sum().clamp_min(1))

    def sample() -> str:
        from core.generation import Done, generate_stream
        from core.sampling import SamplingSettings

        prompt = config.sample_prompt or _default_prompt(tokenizer, data)
        view = replace(session, model=accelerator.unwrap_model(model))
        settings = SamplingSettings(seed=config.seed, max_new_tokens=config.sample_tokens)
        text = ""
        for event in generate_stream(view, prompt, settings):
            if isinstance(event, Done):
                text = event.text
        return prompt + text

    def checkpoint(epoch: int, batch_in_epoch: int) -> str | None:
        if not config.out:
            return None
        trainer_state = {"step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
                         "scheduler": scheduler.state_dict(), "config": asdict(config),
                         "total_steps": total_steps}
        try:
            save_checkpoint(config.out, model, tokenizer, trainer_state, accelerator)
        except SaveError as exc:   # the run goes on (or ends) without it; nothing is lost
            save_errors.append(str(exc))
            emit({"event": "error", "message": str(exc)})
            return None
        return config.out

    def eval_and_sample() -> float | None:
        eval_loss = evaluate()
        if eval_loss is not None:
            emit({"event": "eval", "step": step, "eval_loss": eval_loss,
                  "perplexity": math.exp(min(eval_loss, 50))})
        if main:
            emit({"event": "sample", "step": step, "text": sample()})
        return eval_loss

    last_eval = None
    stop_reason = "done"
    save_errors: list[str] = []
    if step == 0:   # the "before" point of the curve: the model as it was loaded
        last_eval = eval_and_sample()
    window_tokens, window_start = 0, time.perf_counter()
    model.train()
    epoch = start_epoch
    batch_in_epoch = skip_batches
    while step < total_steps and stop_reason == "done":
        order = epoch_order(len(data.train_rows), config.seed, epoch)
        loader = DataLoader(RowsDataset([data.train_rows[i] for i in order]),
                            batch_size=config.batch_size, collate_fn=collate_fn, drop_last=drop_last)
        loader = accelerator.prepare(loader)
        if batch_in_epoch:
            loader = accelerator.skip_first_batches(loader, batch_in_epoch)
        for batch in loader:
            if should_stop() or control.stop.is_set():
                stop_reason = "cancel"
                break
            try:
                with session.lock:
                    accelerator.unwrap_model(model).train()
                    with accelerator.accumulate(model):
                        loss = model(**batch).loss
                        if not torch.isfinite(loss):
                            stop_reason = "nan"
                        else:
                            accelerator.backward(loss)
                            if accelerator.sync_gradients and config.clip:
                                accelerator.clip_grad_norm_(model.parameters(), config.clip)
                            optimizer.step()
                            optimizer.zero_grad(set_to_none=True)
            except torch.cuda.OutOfMemoryError:
                optimizer.zero_grad(set_to_none=True)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                stop_reason = "oom"
                emit({"event": "error", "message":
                      f"out of GPU memory at batch size {config.batch_size}, block size {block_size}: "
                      "try a smaller --batch-size or --block-size (or --grad-accum to keep the "
                      "effective batch)"})
                break
            if stop_reason == "nan":
                emit({"event": "error", "message": f"loss became {float(loss.detach())} at step {step + 1}: "
                      "training stopped; try a lower --lr"})
                break
            batch_in_epoch += 1
            window_tokens += int(batch["attention_mask"].sum()) * world
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            now = time.perf_counter()
            emit({"event": "step", "step": step, "epoch": epoch + batch_in_epoch / batches_per_epoch,
                  "loss": float(loss.detach()), "lr": scheduler.get_last_lr()[0],
                  "tokens_per_s": window_tokens / max(now - window_start, 1e-9),
                  "total_steps": total_steps})
            window_tokens, window_start = 0, now
            if control.save_now.is_set():
                control.save_now.clear()
                saved = checkpoint(epoch, batch_in_epoch)
                if saved:
                    emit({"event": "saved", "step": step, "out": saved})
                    window_start = time.perf_counter()
            if config.eval_every and step % config.eval_every == 0 and step < total_steps:
                last_eval = eval_and_sample()
                window_start = time.perf_counter()
            if step >= total_steps:
                break
        else:
            epoch += 1
            batch_in_epoch = 0
            if step < total_steps:
                last_eval = eval_and_sample()
                window_start = time.perf_counter()
            continue
        if stop_reason == "done" and step >= total_steps and batch_in_epoch >= batches_per_epoch:
            epoch, batch_in_epoch = epoch + 1, 0

    if stop_reason == "done":
        last_eval = eval_and_sample()
    out = None
    if stop_reason == "done" or (stop_reason == "cancel" and control.save_on_stop):
        out = checkpoint(epoch, batch_in_epoch)
    accelerator.unwrap_model(model).eval()
    emit({"event": "done", "out": out, "steps": step, "eval_loss": last_eval,
          "stop_reason": stop_reason})
    return TrainResult(steps=step, eval_loss=last_eval, out=out, stop_reason=stop_reason,
                       save_error=save_errors[-1] if out is None and save_errors else None)


def _default_prompt(tokenizer, data: PreparedData) -> str:
    """The first few words of the first test sample: the notebook's before/after prompt."""
    rows = data.test_rows or data.train_rows
    text = tokenizer.decode(rows[0][:8], skip_special_tokens=True)
    words = text.split()
    return " ".join(words[:2]) if words else "Это"
