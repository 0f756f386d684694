"""FSDP: weights, gradients and optimizer state sharded over the processes of a run.

Under plain data parallelism every process keeps a whole copy of the weights, their
gradients and AdamW's two moments — 16 bytes a parameter in fp32 — so a model that does not
fit one device cannot be trained on any number of them. `fully_shard` (PyTorch's FSDP2) gives
each process 1/N of every tensor instead; a transformer block's weights are gathered just
before it runs and freed after, so a process holds its shards plus one block whole.

    model = shard(model)                         # each block, then the rest (embeddings, head)
    optimizer = AdamW(trainable(model), …)       # built on the shards
    full = full_state_dict(model)                # every rank calls it; rank 0 gets the tensors
    save_sharded(folder, model, optimizer)       # each rank writes its own shards (resume)

Every process must run the same forwards (a block's gather is a collective): evaluation and
samples run on all ranks alike."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from core.base.errors import UserError
from core.model.checkpoint import SHARDS_DIR

NOT_LAUNCHED = ("--fsdp shards over the processes of a torchrun / accelerate launch run: start "
                "it with `torchrun --nproc_per_node N -m tui.cli.main train …` (in the app: "
                "processes 2 or more)")


def check_launched(config) -> None:
    """Before the model or the data is loaded: a sharded run needs the processes a launcher
    starts."""
    if config.fsdp and int(os.environ.get("WORLD_SIZE", "1")) < 2:
        raise UserError(NOT_LAUNCHED)


def require_processes() -> int:
    """The number of processes to shard over; FSDP needs a process group (torchrun)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise UserError(NOT_LAUNCHED)
    return dist.get_world_size()


def blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's transformer blocks: the classes it names as not to be split across devices
    (`_no_split_modules`: GPT2Block, LlamaDecoderLayer, …; a private class attribute of
    transformers' models that Accelerate's device maps read too: tests/test_private_names.py).
    A PeftModel's are its base model's."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(base._no_split_modules or ())
    return [m for m in model.modules() if type(m).__name__ in names]


def shard(model: torch.nn.Module) -> torch.nn.Module:
    """Shard `model` in place over every process: each block on its own (gathered one at a
    time), the rest — embeddings, final norm, head — as one unit at the root."""
    from torch.distributed.fsdp import fully_shard

    found = blocks(model)
    if not found:
        raise UserError(f"--fsdp: {type(model).__name__} names no transformer blocks to shard by")
    for block in found:
        fully_shard(block)
    fully_shard(model)
    return model


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The sharded parameters that train (with LoRA, the adapter's)."""
    return [p for p in model.parameters() if p.requires_grad]


def held_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """(bytes this process holds, bytes of the whole) of the weights, their gradients and the
    optimizer's state — sharded tensors counted by their local part and by their full size."""
    def sizes(tensor) -> tuple[int, int]:
        local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
        return local.numel() * local.element_size(), tensor.numel() * tensor.element_size()

    tensors = list(model.parameters())
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [v for state in optimizer.state.values() for v in state.values()
                if isinstance(v, torch.Tensor) and v.dim() > 0]   # not the step counters
    held, whole = (sum(pair) for pair in zip(*map(sizes, tensors)))
    return held, whole


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights on rank 0's CPU (empty elsewhere). A collective: every rank
    calls it at the same point."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if weights and head is not None and head.weight is embeddings.weight:
        # tied: gathered, the head's copy is no longer the embeddings' own tensor; the model
        # file keeps one, as an unsharded model's does
        weights.pop(next(name for name, m in model.named_modules() if m is head) + ".weight", None)
    return weights


def named_from(outer: torch.nn.Module, inner: torch.nn.Module, weights: dict) -> dict:
    """`weights`, named from `inner`, as `outer` (which holds it: a LoRA adapter around the
    sharded model) names them."""
    path = next(name for name, module in outer.named_modules() if module is inner)
    return {f"{path}.{key}" if path else key: value for key, value in weights.items()}


def save_sharded(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Weights and optimizer state as they are sharded: each rank writes its part (a resume
    on the same number of processes reads them back exactly)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    weights, moments = get_state_dict(model, optimizer)
    dcp.save({"model": weights, "optimizer": moments}, checkpoint_id=str(folder / SHARDS_DIR))


def load_sharded(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    if not (folder / SHARDS_DIR).is_dir():
        raise UserError(f"--resume {folder.parent}: no sharded state ({SHARDS_DIR}/): that run "
                        "did not use --fsdp")
    weights, moments = get_state_dict(model, optimizer)
    state = {"model": weights, "optimizer": moments}
    dcp.load(state, checkpoint_id=str(folder / SHARDS_DIR))
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optimizer"])
