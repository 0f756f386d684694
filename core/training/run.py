"""A run set up: its data, the model prepared by Accelerate (LoRA, checkpointing, compile),
the optimizer and schedule, where it starts (a resumed checkpoint), and what it does between
steps — agree on stop and save across processes, evaluate and sample, save."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from core.base.errors import SaveError, UserError, one_line
from core.base.settings import default_block_size
from core.inference.generation import GenerationDone, generate_stream
from core.inference.sampling import SamplingSettings
from core.model.checkpoint import STATE_DIR, read_trainer_state, save_checkpoint
from core.model.device import Placement
from core.training.batches import (
    Position,
    PreparedData,
    StepPlan,
    default_prompt,
    plan_steps,
    prepare_data,
    private_generator,
)
from core.training.config import TrainConfig, TrainControl
from core.training.events import Error, Eval, Notice, Sample, Stats, Tokenizing, TrainEvent
from core.training.step import eval_batch_rows, evaluate, mixed_precision, uses_chunked_loss

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from core.model.session import ModelSession


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int):
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(1.0, max(0.0, progress))
        if schedule == "constant":
            return 1.0
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
    from core.model.lora import LoraSpec, adapter_spec, add_adapter, make_trainable

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


def plan_memory(session: ModelSession, config: TrainConfig, processes: int, rows: int,
                emit: Callable[[TrainEvent], None]) -> None:
    """Say what the run will need (a process's share, sharded); on a GPU, refuse one that
    cannot fit (with what would). A batch is never more than a process's share of the `rows`."""
    from core.training.memory import as_stacked, check_fits, free_cuda_memory, memory_plan

    config = as_stacked(config, rows, processes)
    plan = memory_plan(session, config, processes)
    emit(Notice(plan.line()))
    check_fits(plan, free_cuda_memory(session.model.device), config, session)


def set_gradient_checkpointing(model, on: bool) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them."""
    from core.training.memory import set_checkpointing

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


def sharded(model) -> tuple[torch.nn.Module, list]:
    """The model sharded over the run's processes (FSDP), and its shards that train; what each
    process holds is said after the first step (`PreparedRun.report_shards`)."""
    from core.training.sharding import require_processes, shard, trainable

    require_processes()
    model = shard(model)
    return model, trainable(model)


def _reset_accelerate_state() -> None:
    """Accelerate keeps process-wide state; a second run in the same process (the TUI, tests)
    may ask for another precision or accumulation, so start from a clean slate. `_reset_state`
    is private — Accelerate offers no public reset; its own test cases call it the same way
    (accelerate/test_utils/testing.py, AccelerateTestCase): tests/test_private_names.py."""
    from accelerate.state import AcceleratorState, GradientState

    if not torch.distributed.is_initialized():
        AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@dataclass
class PreparedRun:
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
    tokens_seen: int = 0              # tokens trained so far, a resumed run's included
    start_position: Position = Position()
    save_error: str | None = None
    save_on_stop: bool = True
    chunked_loss: bool = False

    @classmethod
    def start(cls, session: ModelSession, config: TrainConfig,
              on_event: Callable[[TrainEvent], None], control: TrainControl | None = None) -> PreparedRun:
        from accelerate import Accelerator
        from torch.utils.data import DataLoader, Subset

        from core.data.rows import collate

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
        if session.knocked_out:   # a run trains every head
            from core.inference.inside import knock_out

            knock_out(session, {})
            emit(Notice("knocked-out heads put back for training"))
        if data.corpus.template is not None:   # the checkpoint carries the template it was trained with
            tokenizer.chat_template = data.corpus.template.source
        if not len(data.train_rows):
            raise UserError(f"{config.train}: no training samples after tokenization")
        if model.dtype != torch.float32 and (not config.lora or session.placement.inference_only):
            # fp32 master weights; mixed precision (bf16 autocast) keeps the speed. A LoRA
            # base asked for in its dtype stays as it is: only the adapter (fp32) trains.
            with session.lock:
                model.float()
                session.placement = Placement(session.placement.device, "float32")
                session.info = replace(session.info, dtype="float32")
            emit(Notice("weights upcast to float32 for training"))

        torch.manual_seed(config.seed)  # training's RNG (dropout, a new adapter's init)
        params = trainable_parameters(session, config, emit)
        set_gradient_checkpointing(model, config.gradient_checkpointing)
        plan_memory(session, config, accelerator.num_processes, len(data.train_rows), emit)
        if config.fsdp:   # the optimizer is built on the shards, and keeps only theirs
            model, params = sharded(model)
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                      fused=model.device.type == "cuda")
        plan = plan_steps(len(data.train_rows), config, accelerator.num_processes)
        # The scheduler stays out of prepare(): stepped once per optimizer step, it gives the
        # same schedule on one process and on many.
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(config.schedule, plan.warmup_steps, plan.total_steps))
        if config.compile and config.fsdp:
            emit(Notice("compile: not with --fsdp (each block would need its own); training uncompiled"))
        elif config.compile:
            model = compiled(model, emit)
        if not config.fsdp:   # sharded, the model averages its own gradients
            model, optimizer = accelerator.prepare(model, optimizer)
        if config.lora:   # the checkpoint holds the adapter alone, never the base weights
            accelerator.register_save_state_pre_hook(lambda models, weights, folder: weights.clear())
            accelerator.register_load_state_pre_hook(lambda models, folder: models.clear())
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        collate_fn = collate(pad_id)
        chunked = uses_chunked_loss(session.model, config) and not config.fsdp   # the head is sharded
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
        if self.config.fsdp:   # weights and moments, each rank its shards
            from core.training.sharding import load_sharded

            with self.session.lock:
                load_sharded(Path(folder) / STATE_DIR, self.model, self.optimizer)
                self.session.weights_version += 1
        elif self.config.lora:
            from core.model.lora import load_adapter_weights

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
        self.tokens_seen = int(state.get("tokens_seen", 0))   # saved before it was kept: 0
        self.emit(Notice(f"resumed from {folder} at step {self.start_step}"))

    def emit(self, event: TrainEvent) -> None:
        self.on_event(event)

    def report_shards(self) -> None:
        """FSDP: what each process holds once a step has made gradients and moments — its
        shards, against a whole copy's bytes. A collective: every rank calls it."""
        import torch.distributed as dist

        from core.training.memory import size
        from core.training.sharding import held_bytes

        mine = held_bytes(self.model, self.optimizer)
        every = [None] * dist.get_world_size()
        dist.all_gather_object(every, mine)
        self.emit(Notice("FSDP: weights, gradients and optimizer state held by each process: "
                         + ", ".join(size(held) for held, _ in every)
                         + f" (a whole copy: {size(mine[1])})"))

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
        if self.config.fsdp or self.accelerator.is_main_process:
            text = self.sample()   # sharded: every rank runs the same forwards
            if self.accelerator.is_main_process:
                self.emit(Sample(step, text))
        return eval_loss

    def sample(self) -> str:
        """The sample prompt continued by the weights as they are now, with the run's seed."""
        prompt = self.config.sample_prompt or default_prompt(self.session.tokenizer, self.data)
        view = replace(self.session, model=self.accelerator.unwrap_model(self.model))
        template = self.data.corpus.template
        stops = template.stops if template is not None else ()
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
                         "total_steps": self.plan.total_steps, "tokens_seen": self.tokens_seen}
        full_weights, write_shards = None, None
        if self.config.fsdp:   # the whole model gathered on rank 0; every rank its shards
            from core.training.sharding import full_state_dict, named_from, save_sharded

            full_weights = full_state_dict(self.model)
            if full_weights and self.session.adapter is not None:
                full_weights = named_from(self.session.adapter, self.model, full_weights)
            write_shards = partial(save_sharded, model=self.model, optimizer=self.optimizer)
        try:
            save_checkpoint(self.config.out, self.model, self.session.tokenizer, trainer_state,
                            self.accelerator, adapter=self.session.adapter,
                            full_weights=full_weights, write_shards=write_shards)
        except SaveError as exc:
            self.save_error = str(exc)
            self.emit(Error(str(exc)))
            return False
        return True
