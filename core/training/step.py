"""One training step and one evaluation: the loss of a batch (chunked where the model allows
it), the backward pass and the optimizer step under the session lock, and the token-weighted
held-out loss — the same under one process or several."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from core.training.loss import (
    IGNORE,
    hidden_states_out,
    next_token_loss,
    shifted_labels,
    supports_chunked_loss,
    token_losses,
)

if TYPE_CHECKING:
    from accelerate import Accelerator

    from core.training.config import TrainConfig
    from core.training.run import PreparedRun

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


def mixed_precision(choice: str, device: str) -> str:
    if choice != "auto":
        return choice
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


@dataclass
class Stopped:
    """Why a step ended the run."""
    reason: str                       # nan | oom
    message: str


def train_step(run: PreparedRun, batch: dict, step: int) -> float | Stopped:
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
                if acc.sync_gradients:   # the accumulation is complete: one optimizer step
                    if run.config.clip:
                        acc.clip_grad_norm_(model.parameters(), run.config.clip)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    run.session.weights_version += 1
    except RuntimeError as exc:   # torch.cuda.OutOfMemoryError is one too
        where = out_of_memory(exc)
        if where is None:
            raise
        optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return Stopped("oom", f"out of {where} memory at batch size {run.config.batch_size}, block "
                              f"size {run.block_size}: try a smaller --batch-size or --block-size "
                              "(or --grad-accum to keep the effective batch)")
    return float(loss.detach())


def out_of_memory(exc: RuntimeError) -> str | None:
    """Which allocator failed — "GPU" or "CPU" (torch has no type of its own for the CPU's,
    only its message) — or None for any other error."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "GPU"
    return "CPU" if "can't allocate memory" in str(exc) else None


def uses_chunked_loss(model, config: TrainConfig) -> bool:
    """`core.training.loss`'s chunks where the architecture allows them; a compiled model (GPU) keeps
    its own loss, which the compiler fuses."""
    return supports_chunked_loss(model) and not (config.compile and model.device.type == "cuda")


def batch_loss(model, unwrapped, batch: dict, chunked: bool) -> torch.Tensor:
    """The batch's mean next-token loss; with `chunked`, through `core.training.loss` (no (B, T, V)
    logits). `model` may be the DDP-wrapped `unwrapped`."""
    if not chunked:
        return model(**batch, use_cache=False).loss
    with hidden_states_out(unwrapped) as head:
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       use_cache=False).logits                                       # (B, T, H)
    return next_token_loss(hidden, head, batch["labels"])


def losses_per_position(model, unwrapped, batch: dict, chunked: bool) -> torch.Tensor:
    """Each position's next-token loss, 0 where unscored (B, T), for evaluation: from the
    final hidden states chunk by chunk (`token_losses`), or from the model's own logits."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "use_cache": False}
    if chunked:
        with hidden_states_out(unwrapped) as head:
            hidden = model(**inputs).logits                                          # (B, T, H)
        return token_losses(hidden, head, batch["labels"])
    logits = model(**inputs).logits                                                  # (B, T, V)
    targets = shifted_labels(batch["labels"])                                        # (B, T)
    return torch.nn.functional.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE,
        reduction="none").view_as(targets)                                           # (B, T)


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
                    token_loss = losses_per_position(model, unwrapped, batch, chunked)   # (B, T)
                labels = batch["labels"][:, 1:]                                      # (B, T-1)
                sample_sum, sample_count = accelerator.gather_for_metrics(
                    (token_loss.sum(1), (labels != -100).sum(1)))
                sums.append(sample_sum)
                counts.append(sample_count)
        if was_training:
            unwrapped.train()
    return float(torch.cat(sums).sum() / torch.cat(counts).sum().clamp_min(1))
