"""What a training run is asked to do (`TrainConfig`), how it can be steered while it runs
(`TrainControl`) and how it ended (`TrainResult`). Defaults and bounds come from
`core.base.settings`; data and output paths are checked here before anything heavy loads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from core.base.errors import UserError
from core.base.safe_write import check_output_folder
from core.base.settings import TRAIN_SETTINGS, by_name, check_all
from core.data.source import check_source
from core.model.checkpoint import check_resumable

_DEFAULT = {name: setting.default for name, setting in by_name(TRAIN_SETTINGS).items()}


@dataclass
class TrainConfig:
    train: str                       # data: a file, a folder or a hub dataset
    test: str | None = None          # held-out data (else `test_split` of `train`)
    out: str | None = None           # checkpoint folder
    resume: str | None = None        # a checkpoint folder to continue from
    test_split: float = _DEFAULT["test_split"]
    epochs: float = _DEFAULT["epochs"]
    lr: float = _DEFAULT["lr"]
    batch_size: int = _DEFAULT["batch_size"]
    block_size: int | None = _DEFAULT["block_size"]    # None: core.base.settings.default_block_size
    pack: bool = _DEFAULT["pack"]
    grad_accum: int = _DEFAULT["grad_accum"]
    warmup: float = _DEFAULT["warmup"]
    schedule: str = _DEFAULT["schedule"]
    weight_decay: float = _DEFAULT["weight_decay"]
    clip: float = _DEFAULT["clip"]
    eval_every: int = _DEFAULT["eval_every"]
    eval_tokens: int = _DEFAULT["eval_tokens"]
    mixed_precision: str = _DEFAULT["mixed_precision"]
    seed: int = _DEFAULT["seed"]
    template: str = _DEFAULT["template"]
    train_on_prompt: bool = _DEFAULT["train_on_prompt"]
    lora: bool = _DEFAULT["lora"]
    lora_r: int = _DEFAULT["lora_r"]
    lora_alpha: float = _DEFAULT["lora_alpha"]
    lora_dropout: float = _DEFAULT["lora_dropout"]
    lora_targets: str | None = _DEFAULT["lora_targets"]
    gradient_checkpointing: bool = _DEFAULT["gradient_checkpointing"]
    compile: bool = _DEFAULT["compile"]
    processes: int = _DEFAULT["processes"]   # > 1: the run goes to torchrun (core.training.processes)
    fsdp: bool = _DEFAULT["fsdp"]             # shard over those processes (core.training.sharding)
    sample_prompt: str | None = _DEFAULT["sample_prompt"]
    sample_tokens: int = _DEFAULT["sample_tokens"]
    max_steps: int | None = _DEFAULT["max_steps"]
    patience: int = _DEFAULT["patience"]     # evaluations without a better eval loss, then stop
    keep_best: bool = _DEFAULT["keep_best"]  # `out` holds the best evaluation's model

    def validate(self) -> TrainConfig:
        check_all(TRAIN_SETTINGS, self)
        return self


@dataclass
class TrainControl:
    """Asks a running `train` to stop or to save, from another thread (the UI, a signal)."""
    stop: threading.Event = field(default_factory=threading.Event)
    save_now: threading.Event = field(default_factory=threading.Event)
    save_on_stop: bool = True        # a stopped run saves its checkpoint (when it has `out`)
    cancelled: Callable[[], bool] = lambda: False   # e.g. the owning worker was cancelled

    def stopping(self) -> bool:
        return self.stop.is_set() or self.cancelled()


@dataclass
class TrainResult:
    steps: int
    eval_loss: float | None
    out: str | None
    stop_reason: str                 # done | cancel | nan | oom | patience
    save_error: str | None = None    # the last save failed (the previous one is kept)
    kept_step: int | None = None     # the step whose model `out` holds


def check_paths(config: TrainConfig) -> None:
    """Where the run will read and write, checked before any data is loaded or step taken:
    an output folder that could cost a user a file is refused now, not after an hour, and
    data that is not a file, a folder or a hub name (a device, a FIFO) is refused unopened."""
    if config.keep_best and not config.out:
        raise UserError("--keep-best: give --out, the folder that keeps the best model")
    if config.out:
        check_output_folder(config.out)
    check_source(config.train)
    if config.test:
        check_source(config.test)
    if config.resume:
        state = check_resumable(config.resume)
        if bool(state["config"].get("fsdp")) != config.fsdp:
            raise UserError(f"--resume {config.resume}: that run "
                            + ("was sharded: add --fsdp (on as many processes)" if not config.fsdp
                               else "was not sharded: leave out --fsdp"))
        if bool(state["config"].get("lora")) != config.lora:
            raise UserError(f"--resume {config.resume}: that run trained "
                            + ("a LoRA adapter: add --lora" if not config.lora
                               else "every weight: leave out --lora"))
