"""Fine-tuning on Accelerate: your texts in, a better model out.

    train(session, TrainConfig(train="texts.txt", epochs=2, out="my-model"), on_event=print)

`on_event` gets the events of `core.train_events` (the `train --jsonl` lines). Only the main
process emits them and writes checkpoints; under torchrun / accelerate launch each rank
trains on its shard and Accelerate averages the gradients.

Every optimizer step holds the session lock, so the UI can generate from the same weights
between steps; the sampler's private RNG never touches training's.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from core.cancel import Cancelled
from core.chat_format import template_for
from core.checkpoint import STATE_DIR, read_trainer_state, save_checkpoint
from core.errors import SaveError, UserError, one_line
from core.generation import Done as GenerationDone
from core.generation import generate_stream
from core.loss import hidden_states_out, next_token_loss, supports_chunked_loss, token_losses
from core.safe_write import FolderLock
from core.sampling import SamplingSettings
from core.settings import default_block_size
from core.train_config import TrainConfig, TrainControl, TrainResult, check_paths
from core.train_data import (
    Position,
    PreparedData,
    StepPlan,
    batches,
    default_prompt,
    plan_steps,
    prepare_data,
    private_generator,
)
from core.train_events import (
    Done,
    Error,
    Eval,
    Notice,
    Sample,
    Saved,
    Stats,
    Step,
    Tokenizing,
    TrainEvent,
)

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from core.session import ModelSession

EVAL_BATCH_TOKENS = 8192
EVAL_LOGITS_BYTES = 256 * 2**20   # an evaluation batch's logits stay under this (50k vocab: 1.3k tokens)


def eval_batch_rows(batch_size: int, block: int, vocab: int | None) -> int:
    """Rows per evaluation batch: no gradients to keep, so bigger than a training batch —
    about as many tokens as a step's at block 1024 — unless the logits (rows × block × vocab,
    fp32; `vocab` None when the loss is chunked and they never exist whole) would grow past
    EVAL_LOGITS_BYTES; never fewer than a training batch."""
    by_tokens = EVAL_BATCH_TOKENS // block
    by_logits = by_tokens if vocab is None else EVAL_LOGITS_BYTES // (block * vocab * 4)
    return max(batch_size, min(by_tokens, by_logits))


def train(session: ModelSession, config: TrainConfig,
          on_event: Callable[[TrainEvent], None] = lambda e: None,
          control: TrainControl | None = None) -> TrainResult:
    """Fine-tune `session.model` in place. The output folder is locked for the whole run, so
    a second run pointed at it is refused at its start."""
    if session.adapter is not None and not config.lora:
        config = replace(config, lora=True)   # a model that carries an adapter trains it
    config.validate()
    check_paths(config)
    rank = int(os.environ.get("RANK", "0"))
    lock = FolderLock(Path(config.out).resolve()) if config.out and rank == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        return _train(session, config, on_event, control or TrainControl())
    finally:
        if lock is not None:
            lock.release()


def _train(session: ModelSession, config: TrainConfig, on_event: Callable[[TrainEvent], None],
           control: TrainControl) -> TrainResult:
    try:
        run = Run.start(session, config, on_event, control)
    except Cancelled:   # stopped while the data was being tokenized
        on_event(Done(None, 0, None, "cancel"))
        return TrainResult(steps=0, eval_loss=None, out=None, stop_reason="cancel")
    plan, step, last_eval, stop_reason = run.plan, run.start_step, None, "done"
    if step == 0:   # the "before" point of the curve: the model as it was loaded
        last_eval = run.eval_and_sample(step)
    meter = Throughput(run.accelerator.num_processes)
    position = run.start_position   # the batches trained so far
    for batch, after in batches(run.accelerator, run.data.train_rows, config, plan,
                                run.collate_fn, run.start_position):
        if step >= plan.total_steps:
            break
        stop, save_now = run.agreed_signals(control)
        if stop:
            stop_reason = "cancel"
            break
        loss = train_step(run, batch, step)
        if isinstance(loss, Stopped):
            stop_reason = loss.reason
            run.emit(Error(loss.message))
            break
        position = after
        meter.count(batch)
        if not run.accelerator.sync_gradients:
            continue   # accumulating: no optimizer step yet
        run.scheduler.step()
        step += 1
        run.emit(Step(step, position.epochs_done(plan), loss, run.scheduler.get_last_lr()[0],
                      meter.rate(), plan.total_steps))
        if save_now:
            if run.save(step, position):
                run.emit(Saved(step, config.out))
            meter.restart()
        if step >= plan.total_steps:
            break
        evals_now = config.eval_every and step % config.eval_every == 0
        if evals_now:
            last_eval = run.eval_and_sample(step)
        if position.batch == 0:   # an epoch ended
            last_eval = run.eval_and_sample(step)
        if evals_now or position.batch == 0:
            meter.restart()

    if stop_reason == "done":
        last_eval = run.eval_and_sample(step)
    out = None
    if stop_reason == "done" or (stop_reason == "cancel" and run.save_on_stop):
        out = config.out if run.save(step, position) else None
    run.accelerator.unwrap_model(run.model).eval()
    run.emit(Done(out, step, last_eval, stop_reason))
    return TrainResult(steps=step, eval_loss=last_eval, out=out, stop_reason=stop_reason,
                       save_error=run.save_error if out is None else None)


@dataclass
class Stopped:
    """Why a step ended the run."""
    reason: str                       # nan | oom
    message: str


def train_step(run: Run, batch: dict, step: int) -> float | Stopped:
    """One forward and backward pass under the session lock; the optimizer steps when the
    gradient accumulation is complete. Returns the batch's loss, or why the run must stop."""
    acc, model, optimizer = run.accelerator, run.model, run.optimizer
    try:
        with run.session.lock:
            acc.unwrap_model(model).train()
            with acc.accumulate(model):
                loss = batch_loss(model, acc.unwrap_model(model), batch, run.chunked_loss)
                if not torch.isfinite(loss):
                    return Stopped("nan", f"loss became {float(loss.detach())} at step {step + 1}: "
                                          "training stopped; try a lower --lr")
                acc.backward(loss)
                if acc.sync_gradients and run.config.clip:
                    acc.clip_grad_norm_(model.parameters(), run.config.clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                run.session.weights_version += 1
    except torch.cuda.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return Stopped("oom", f"out of GPU memory at batch size {run.config.batch_size}, block "
                              f"size {run.block_size}: try a smaller --batch-size or --block-size "
                              "(or --grad-accum to keep the effective batch)")
    return float(loss.detach())


def uses_chunked_loss(model, config: TrainConfig) -> bool:
    """`core.loss`'s chunks where the architecture allows them; a compiled model (GPU) keeps
    its own loss, which the compiler fuses."""
    return supports_chunked_loss(model) and not (config.compile and model.device.type == "cuda")


def batch_loss(model, unwrapped, batch: dict, chunked: bool) -> torch.Tensor:
    """The batch's mean next-token loss; with `chunked`, through `core.loss` (no (B, T, V)
    logits). `model` may be the DDP-wrapped `unwrapped`."""
    if not chunked:
        return model(**batch).loss
    with hidden_states_out(unwrapped) as head:
        hidden = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).logits                # (B, T, H)
    return next_token_loss(hidden, head, batch["labels"])


def _token_losses(model, unwrapped, batch: dict, chunked: bool) -> torch.Tensor:
    """Each position's next-token loss, 0 where unscored (B, T); no gradients."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if chunked:
        with hidden_states_out(unwrapped) as head:
            hidden = model(**inputs).logits                                          # (B, T, H)
        return token_losses(hidden, head, batch["labels"])
    logits = model(**inputs).logits                                                  # (B, T, V)
    labels = batch["labels"][:, 1:]                                                  # (B, T-1)
    token_loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels.flatten(),
        ignore_index=-100, reduction="none").view_as(labels)                         # (B, T-1)
    return torch.nn.functional.pad(token_loss, (0, 1))


def evaluate(accelerator: Accelerator, model, test_loader, lock, chunked: bool) -> float | None:
    """Token-weighted mean loss over the test set, exact under several processes (per-sample
    sums gathered without the padding samples shards may add)."""
    if len(test_loader) == 0:
        return None
    unwrapped = accelerator.unwrap_model(model)
    sums, counts = [], []
    with lock:
        was_training = unwrapped.training
        unwrapped.eval()
        with torch.no_grad():
            for batch in test_loader:
                with accelerator.autocast():
                    token_loss = _token_losses(model, unwrapped, batch, chunked)    # (B, T)
                labels = batch["labels"][:, 1:]                                      # (B, T-1)
                sample_sum, sample_count = accelerator.gather_for_metrics(
                    (token_loss.sum(1), (labels != -100).sum(1)))
                sums.append(sample_sum)
                counts.append(sample_count)
        if was_training:
            unwrapped.train()
    return float(torch.cat(sums).sum() / torch.cat(counts).sum().clamp_min(1))


class Throughput:
    """Training tokens per second since the last step (or since an eval or save paused it)."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.restart()

    def restart(self) -> None:
        self.tokens, self.since = 0, time.perf_counter()

    def count(self, batch: dict) -> None:
        self.tokens += int(batch["attention_mask"].sum()) * self.world

    def rate(self) -> float:
        now = time.perf_counter()
        rate = self.tokens / max(now - self.since, 1e-9)
        self.tokens, self.since = 0, now
        return rate


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


def trainable_parameters(session: ModelSession, config: TrainConfig,
                         emit: Callable[[TrainEvent], None]) -> list:
    """Every weight for full fine-tuning; with LoRA the adapter's alone — a new one, or the
    one the model already carries (loaded from a folder, or from an earlier run)."""
    if not config.lora:
        params = list(session.model.parameters())
        for param in params:
            param.requires_grad_(True)
        return params
    from core.lora import LoraSpec, adapter_spec, add_adapter, make_trainable

    wanted, have = LoraSpec.of(config), adapter_spec(session)
    if have is None:
        add_adapter(session, wanted)
    elif (have.r, have.alpha) != (wanted.r, wanted.alpha) or (
            wanted.targets and set(wanted.targets) != set(have.targets)):
        raise UserError(f"the model already carries a LoRA adapter (r {have.r}, alpha "
                        f"{have.alpha:g}, targets {','.join(have.targets)}): train it with those "
                        "settings, or load the base model for a new one")
    params = make_trainable(session)
    trainable, total = sum(p.numel() for p in params), sum(p.numel() for p in session.model.parameters())
    emit(Notice(f"LoRA: training {trainable:,} of {total:,} parameters "
                f"({100 * trainable / total:.2f} %)"))
    return params


def plan_memory(session: ModelSession, config: TrainConfig,
                emit: Callable[[TrainEvent], None]) -> None:
    """Say what the run will need; on a GPU, refuse one that cannot fit (with what would)."""
    from core.memory import check_fits, free_cuda_memory, memory_plan

    plan = memory_plan(session, config)
    emit(Notice(plan.line()))
    check_fits(plan, free_cuda_memory(session.model.device), config, session)


def set_gradient_checkpointing(model, on: bool) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them."""
    from core.memory import set_checkpointing

    if on and not getattr(model, "supports_gradient_checkpointing", False):
        raise UserError(f"gradient checkpointing: {type(model).__name__} does not support it")
    set_checkpointing(model, on)


def compiled(model, emit: Callable[[TrainEvent], None]):
    """torch.compile on a GPU; on the CPU the run goes on uncompiled (said once)."""
    if model.device.type != "cuda":
        emit(Notice("compile: only on a GPU; training uncompiled"))
        return model
    emit(Notice("compiling the model: the first steps are slow"))
    return torch.compile(model)


def mixed_precision(choice: str, device: str) -> str:
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


@dataclass
class Run:
    """Everything a run holds once it is set up: data, the prepared model and optimizer, the
    schedule, and where it starts (step 0, or where a resumed checkpoint left off)."""
    session: ModelSession
    config: TrainConfig
    on_event: Callable[[TrainEvent], None]
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    data: PreparedData
    plan: StepPlan
    block_size: int
    collate_fn: Callable
    test_loader: DataLoader
    start_step: int = 0
    start_position: Position = Position()
    save_error: str | None = None
    save_on_stop: bool = True
    chunked_loss: bool = False

    @classmethod
    def start(cls, session: ModelSession, config: TrainConfig,
              on_event: Callable[[TrainEvent], None], control: TrainControl | None = None) -> Run:
        from accelerate import Accelerator
        from torch.utils.data import DataLoader, Subset

        from core.batching import collate

        logging.getLogger("accelerate").setLevel(logging.ERROR)
        model, tokenizer = session.model, session.tokenizer
        block_size = config.block_size or default_block_size(session.max_positions)
        if block_size > session.max_positions:
            raise UserError(f"--block-size {block_size}: the model's context is {session.max_positions}")
        _reset_accelerate_state()
        accelerator = Accelerator(
            mixed_precision=mixed_precision(config.mixed_precision, str(model.device)),
            gradient_accumulation_steps=config.grad_accum, cpu=str(model.device) == "cpu")
        emit = on_event if accelerator.is_main_process else (lambda e: None)

        data = prepare_data(tokenizer, config, block_size,
                            progress=lambda done, total: emit(Tokenizing(done, total)),
                            cancelled=(control or TrainControl()).stopping)
        emit(Stats(**data.stats))
        if "dialogue" in data.stats:   # the checkpoint carries the template it was trained with
            tokenizer.chat_template = template_for(tokenizer, config.template).source
        if not len(data.train_rows):
            raise UserError(f"{config.train}: no training samples after tokenization")
        if model.dtype != torch.float32 and not config.lora:
            # fp32 master weights; mixed precision (bf16 autocast) keeps the speed. A LoRA
            # base stays as it is: only the adapter (fp32) trains.
            with session.lock:
                model.float()
            emit(Notice("weights upcast to float32 for training"))

        torch.manual_seed(config.seed)  # training's RNG (dropout, a new adapter's init)
        params = trainable_parameters(session, config, emit)
        set_gradient_checkpointing(model, config.gradient_checkpointing)
        plan_memory(session, config, emit)
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                      fused=model.device.type == "cuda")
        plan = plan_steps(len(data.train_rows), config, accelerator.num_processes)
        # The scheduler stays out of prepare(): stepped once per optimizer step, it gives the
        # same schedule on one process and on many.
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(config.schedule, plan.warmup_steps, plan.total_steps))
        if config.compile:
            model = compiled(model, emit)
        model, optimizer = accelerator.prepare(model, optimizer)
        if config.lora:   # the checkpoint holds the adapter alone, never the base weights
            accelerator.register_save_state_pre_hook(lambda models, weights, folder: weights.clear())
            accelerator.register_load_state_pre_hook(lambda models, folder: models.clear())
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        collate_fn = collate(pad_id)
        chunked = uses_chunked_loss(session.model, config)
        vocab = session.model.get_output_embeddings().weight.shape[0]
        test_loader = accelerator.prepare(DataLoader(
            Subset(data.test_rows, data.eval_rows), collate_fn=collate_fn,
            batch_size=eval_batch_rows(config.batch_size, block_size, None if chunked else vocab),
            generator=private_generator()))
        run = cls(session, config, emit, accelerator, model, optimizer, scheduler, data, plan,
                  block_size, collate_fn, test_loader, chunked_loss=chunked)
        if config.resume:
            run.resume_from(config.resume)
        return run

    def resume_from(self, folder: str) -> None:
        state = read_trainer_state(folder)   # checked whole by check_paths
        if self.config.lora:
            from core.lora import load_adapter_weights

            with self.session.lock:
                load_adapter_weights(self.session.adapter, folder)
                self.session.weights_version += 1
        try:
            self.accelerator.load_state(f"{folder}/{STATE_DIR}")
        except Exception as exc:
            raise UserError(f"--resume {folder}: cannot load {STATE_DIR}/: {one_line(exc)}") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_step = state["step"]
        self.start_position = Position(state["epoch"], state["batch_in_epoch"])
        self.emit(Notice(f"resumed from {folder} at step {self.start_step}"))

    def emit(self, event: TrainEvent) -> None:
        self.on_event(event)

    def agreed_signals(self, control: TrainControl) -> tuple[bool, bool]:
        """(stop, save now), the same on every process: a signal reaches the ranks at slightly
        different moments, and a rank that stops or saves alone would leave the others
        waiting in a collective forever. Whether a stop saves is agreed alike."""
        stop, save_now = control.stopping(), control.save_now.is_set()
        no_save = stop and not control.save_on_stop
        if self.accelerator.num_processes > 1:
            flags = torch.tensor([stop, save_now, no_save], dtype=torch.float32,
                                 device=self.accelerator.device)
            stop, save_now, no_save = (v > 0 for v in
                                       self.accelerator.reduce(flags, reduction="sum").tolist())
        if save_now:
            control.save_now.clear()
        self.save_on_stop = not no_save
        return stop, save_now

    def eval_and_sample(self, step: int) -> float | None:
        eval_loss = evaluate(self.accelerator, self.model, self.test_loader, self.session.lock,
                             self.chunked_loss)
        if eval_loss is not None:
            self.emit(Eval(step, eval_loss, math.exp(min(eval_loss, 50))))
        if self.accelerator.is_main_process:
            self.emit(Sample(step, self.sample()))
        return eval_loss

    def sample(self) -> str:
        """The sample prompt continued by the weights as they are now, with the run's seed."""
        prompt = self.config.sample_prompt or default_prompt(self.session.tokenizer, self.data)
        view = replace(self.session, model=self.accelerator.unwrap_model(self.model))
        stops = template_for(self.session.tokenizer, self.config.template).stops \
            if "dialogue" in self.data.stats else ()
        settings = SamplingSettings(seed=self.config.seed, max_new_tokens=self.config.sample_tokens,
                                    stop=stops)
        text = ""
        for event in generate_stream(view, prompt, settings):
            if isinstance(event, GenerationDone):
                text = event.text
        return prompt + text

    def save(self, step: int, position: Position) -> bool:
        """A checkpoint of the run as it is now; a failed save is reported and the run goes
        on (or ends) without it — nothing is lost, the previous save is kept."""
        if not self.config.out:
            return False
        trainer_state = {"step": step, "epoch": position.epoch, "batch_in_epoch": position.batch,
                         "scheduler": self.scheduler.state_dict(), "config": asdict(self.config),
                         "total_steps": self.plan.total_steps}
        try:
            save_checkpoint(self.config.out, self.model, self.session.tokenizer, trainer_state,
                            self.accelerator, adapter=self.session.adapter)
        except SaveError as exc:
            self.save_error = str(exc)
            self.emit(Error(str(exc)))
            return False
        return True
