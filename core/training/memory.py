"""How much memory a training run needs, before it starts.

    plan = memory_plan(session, config)      # weights, gradients, optimizer, activations
    plan.line()  →  "memory ≈ 2.31 GB: weights 0.50 · gradients 0.50 · optimizer 1.00 · …"

Weights, gradients and optimizer state follow from the parameter counts and precisions. The
activations are not guessed from a formula per architecture: one forward pass at batch 1 over
a full block records every tensor autograd keeps for the backward pass (whatever attention
kernel, dropout, adapter or precision the run will use) and the batch scales it. On CUDA the
plan is compared with the free memory and a run that cannot fit is refused with settings
that would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core.base.errors import UserError

if TYPE_CHECKING:
    from core.model.session import ModelSession
    from core.training.config import TrainConfig

GB = 1e9
ADAM_STATES = 2            # AdamW keeps two fp32 moments per trained weight
FIT_MARGIN = 0.9           # refuse a run whose plan exceeds 90 % of the free memory
# On the CPU a step's activations take ~1.75 × the bytes its tensors keep alive: glibc's heap
# keeps freed blocks for reuse, and the backward pass has temporaries (the whole plan within
# 10 % of the measured peak of a 14 M-parameter GPT-2, full and LoRA: tests/test_memory.py).
# CUDA's caching allocator reuses freed blocks.
CPU_HEAP_SLACK = 1.75
# With checkpointing, a step's tensors hold each layer's input and one recomputed layer (the
# plan's figure matches the resident peak where glibc maps every tensor of 1 MB or more on
# its own, MALLOC_MMAP_THRESHOLD_=1048576). With the heap as it is, freed recomputed layers
# stay in it: the resident peak is higher by about 0.4–0.9 of a whole step's activations
# (GPT-2s of 4 and 8 layers × 512, blocks 64 and 256, full and LoRA: tests/memory_worker.py;
# full runs at the low end at block 256).
CPU_CHECKPOINT_HEAP_SHARE = 0.6
# A no-grad forward frees each layer's intermediates as it goes: at its peak it holds at most
# about half of what a training forward saves for one layer (measured alone: 0.55 at ruGPT-3
# small's shape; less within a run on a small model, where the plan then reads high).
NO_GRAD_LAYER_SHARE = 0.5


@dataclass(frozen=True)
class MemoryPlan:
    weights: int             # bytes, every parameter as the run holds it
    gradients: int           # the trained parameters' gradients (fp32)
    optimizer: int           # AdamW state
    activations: int         # what the forward pass keeps for the backward, at batch × block
    logits: int              # the loss's buffers: the output layer's and its gradients
    evaluation: int          # the no-grad evaluation batch: a layer's intermediates, the loss's buffers
    batch: int
    block: int
    trainable: int
    total_parameters: int
    shards: int = 1          # FSDP: weights, gradients and optimizer state split over this many processes
    block_weights: int = 0   # the largest transformer block's weights (fp32), gathered whole while it runs

    def held(self, whole: int, gathered: int = 0) -> int:
        """What one process holds of a model-sized figure: all of it, or its shard plus the
        one block gathered at a time."""
        return whole if self.shards == 1 else -(-whole // self.shards) + gathered

    def sharded(self, processes: int) -> MemoryPlan:
        return replace(self, shards=processes)

    @property
    def step_peak(self) -> int:
        gathered_grads = self.block_weights if self.gradients else 0
        return (self.held(self.weights, self.block_weights) + self.held(self.gradients, gathered_grads)
                + self.held(self.optimizer) + self.activations + self.logits)

    @property
    def eval_peak(self) -> int:
        return self.held(self.weights, self.block_weights) + self.held(self.optimizer) + self.evaluation

    @property
    def total(self) -> int:
        return max(self.step_peak, self.eval_peak)

    def line(self) -> str:
        parts = [("weights", self.held(self.weights, self.block_weights)),
                 ("gradients", self.held(self.gradients, self.block_weights if self.gradients else 0)),
                 ("optimizer", self.held(self.optimizer)),
                 ("activations", self.activations + self.logits)]
        shown = " · ".join(f"{name} {size(value)}" for name, value in parts)
        tail = f" (batch {self.batch} × block {self.block})"
        if self.eval_peak > self.step_peak:
            tail += f"; evaluation {size(self.evaluation)}"
        each = f" a process, sharded over {self.shards}" if self.shards > 1 else ""
        return f"memory ≈ {size(self.total)}{each}: {shown}{tail}"


def size(n: int) -> str:
    """7.44 GB, 320 MB, 0.4 MB."""
    if n >= GB:
        return f"{n / GB:.2f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e6:.1f} MB"


def _bytes_of(params) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def saved_activation_bytes(model, block: int, vocab: int, autocast_dtype=None,
                           chunked_loss: bool = False, as_float32: bool = False) -> int:
    """Bytes autograd keeps from one forward pass at batch 1 over `block` tokens in training
    mode (weights, which it also keeps, excluded). With `chunked_loss` the pass stops at the
    final hidden states, as a run's does (`core.training.loss`); `as_float32` counts a
    half-precision model's saved floats as the float32 ones a run of its upcast weights
    keeps. The RNG is left as it was."""
    from contextlib import nullcontext

    import torch

    from core.model.kernels import fused_activations
    from core.training.loss import hidden_states_out

    seen: dict[tuple[int, int], int] = {}

    held: list = []   # alive until the pass ends, so no address is reused and counted once

    def note(tensor):
        storage = tensor.untyped_storage()
        widen = max(4 // tensor.element_size(), 1) if as_float32 and tensor.is_floating_point() else 1
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes() * widen
        held.append(tensor)
        # The graph gets nothing: a node saving its own output would hold it, and it the
        # node — a cycle nothing frees (every plan leaked a pass's activations). No backward.
        return None

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    checkpointing = checkpointing_on(model)
    if checkpointing:   # left on by an earlier run: probe what a full forward keeps
        set_checkpointing(model, False)
    ids = torch.randint(0, vocab, (1, block), device=model.device,
                        generator=torch.Generator(device=model.device).manual_seed(0))
    was_training = model.training
    devices = [model.device] if model.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), \
                torch.autograd.graph.saved_tensors_hooks(note, lambda _: None), \
                torch.autocast(model.device.type, dtype=autocast_dtype,
                               enabled=autocast_dtype is not None):
            model.train()
            with hidden_states_out(model) if chunked_loss else nullcontext(), \
                    fused_activations(model):   # as a run computes them
                out = model(input_ids=ids, labels=None if chunked_loss else ids, use_cache=False)
            del out
            held.clear()
    finally:
        model.train(was_training)
        if checkpointing:
            set_checkpointing(model, True)
    return sum(n for (ptr, _), n in seen.items() if ptr not in weights)


def checkpointing_on(model) -> bool:
    active = getattr(model, "is_activation_checkpointing", None)   # transformers ≥ 5.x
    return bool(model.is_gradient_checkpointing if active is None else active)


def set_checkpointing(model, on: bool) -> None:
    """Gradient (activation) checkpointing on or off, under either of transformers' names."""
    if on:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    elif checkpointing_on(model):
        getattr(model, "activation_checkpointing_disable", model.gradient_checkpointing_disable)()


def _layer_count(model) -> int:
    config = model.config
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(config, attr, None), int):
            return getattr(config, attr)
    return 1


def _hidden_size(model) -> int:
    config = model.config
    for attr in ("hidden_size", "n_embd", "d_model"):
        if isinstance(getattr(config, attr, None), int):
            return getattr(config, attr)
    return model.get_input_embeddings().weight.shape[1]


def largest_block_bytes(model) -> int:
    """The fp32 bytes of the model's biggest transformer block (0 when it names none)."""
    from core.training.sharding import blocks

    return max((sum(p.numel() for p in b.parameters()) * 4 for b in blocks(model)), default=0)


def memory_plan(session: ModelSession, config: TrainConfig, processes: int = 1) -> MemoryPlan:
    """The memory `config` needs on `session`'s model, measured and computed as the module
    docstring says; per process when `config.fsdp` shards over `processes`. Holds the session
    lock for the one probing forward pass."""
    import torch

    from core.base.settings import default_block_size
    from core.model.lora import LoraSpec, adapter_spec, count_trainable
    from core.training.loss import chunk_rows
    from core.training.step import eval_batch_rows, mixed_precision, uses_chunked_loss

    model = session.model
    block = min(config.block_size or default_block_size(session.max_positions), session.max_positions)
    vocab = int(model.get_output_embeddings().weight.shape[0])
    adapter_params = [p for n, p in model.named_parameters() if "lora_" in n]
    base_params = [p for n, p in model.named_parameters() if "lora_" not in n]
    # weights `auto` loaded in bfloat16 for inference train in float32 (core.training.run):
    # planned as the run will hold them
    upcast = model.dtype != torch.float32 and (not config.lora or session.placement.inference_only)
    if config.lora:
        spec = adapter_spec(session) or LoraSpec.of(config)
        trainable = (sum(p.numel() for p in adapter_params) if adapter_params
                     else count_trainable(model, spec))
        weights = sum(p.numel() for p in base_params) * 4 if upcast else _bytes_of(base_params)
        weights += trainable * 4
    else:
        trainable = sum(p.numel() for p in base_params)
        weights = trainable * 4   # a full run trains fp32 master weights
    precision = mixed_precision(config.mixed_precision, str(model.device))
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    chunked = uses_chunked_loss(model, config)
    with session.lock:
        per_sample = saved_activation_bytes(model, block, vocab, autocast, chunked,
                                            as_float32=upcast and autocast is None)
    if config.lora and not adapter_params:
        # The probe ran without the adapter: add what its layers keep per token — the
        # dropout's output and mask (fp32 and bool) and the r-wide projection.
        from core.model.lora import target_layers

        dropped = 5 if spec.dropout > 0 else 0
        layers = target_layers(model, spec).values()
        per_sample += sum(block * (dropped * fan_in + 4 * spec.r) for fan_in, _ in layers)
    tokens = config.batch_size * block
    on_cpu = model.device.type == "cpu"
    hidden, layers = _hidden_size(model), max(_layer_count(model), 1)
    one_layer = per_sample // layers
    kept = per_sample
    slack = CPU_HEAP_SLACK if on_cpu else 1.0
    if config.gradient_checkpointing:   # each layer's input stays; one layer is recomputed at a time
        kept = layers * block * hidden * 4 + one_layer
        if on_cpu:   # and what the heap keeps of the recomputed layers, measured as a share
            kept, slack = kept + int(CPU_CHECKPOINT_HEAP_SHARE * per_sample), 1.0
    eval_rows = eval_batch_rows(config.batch_size, block, None if chunked else vocab)
    if config.eval_tokens:   # a sample smaller than one evaluation batch
        eval_rows = min(eval_rows, -(-config.eval_tokens // block))
    eval_tokens = eval_rows * block
    if chunked:
        # the hidden states' gradient, made in the forward pass; a chunk's logits and its
        # matmul's output (the head's weight gradient is counted with the gradients)
        logits = tokens * hidden * 4 + 2 * min(chunk_rows(vocab), tokens) * vocab * 4
        # the final hidden states, the per-token losses and a chunk's logits
        evaluation = eval_tokens * (hidden + 1) * 4 + 2 * min(chunk_rows(vocab), eval_tokens) * vocab * 4
    else:
        # the logits stay alive beside the saved log-softmax; backward adds their gradients
        logits = 2 * tokens * vocab * 4
        # logits, their shifted copy and the per-token loss's log-softmax, all fp32
        evaluation = 3 * eval_tokens * vocab * 4
    return MemoryPlan(
        weights=weights,
        gradients=trainable * 4,
        optimizer=trainable * 4 * ADAM_STATES,
        activations=int(kept * config.batch_size * slack),
        logits=int(logits * slack),
        # measured as it is: the heap's slack is a backward pass's
        evaluation=int(evaluation + eval_rows * one_layer * NO_GRAD_LAYER_SHARE),
        batch=config.batch_size, block=block, trainable=trainable,
        total_parameters=sum(p.numel() for p in base_params) + (trainable if config.lora else 0),
        shards=processes if config.fsdp else 1, block_weights=largest_block_bytes(model))


def as_stacked(config: TrainConfig, rows: int, processes: int = 1) -> TrainConfig:
    """`config` with the batch a step will really stack: never more than a process's share of
    the data's `rows`."""
    return replace(config, batch_size=max(1, min(config.batch_size, -(-rows // processes))))


def free_cuda_memory(device) -> int | None:
    import torch

    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return free


def check_fits(plan: MemoryPlan, free: int | None, config: TrainConfig,
               session: ModelSession) -> None:
    """A run that cannot fit the free GPU memory is refused with settings that would fit."""
    if free is None or plan.total <= free * FIT_MARGIN:
        return
    suggestions = []
    batch = config.batch_size
    while batch > 1:
        batch //= 2
        if memory_plan(session, replace(config, batch_size=batch)).total <= free * FIT_MARGIN:
            suggestions.append(f"--batch-size {batch} (with --grad-accum "
                               f"{config.grad_accum * config.batch_size // batch} for the same step)")
            break
    if not config.gradient_checkpointing and memory_plan(
            session, replace(config, gradient_checkpointing=True)).total <= free * FIT_MARGIN:
        suggestions.append("--gradient-checkpointing")
    if not config.lora and memory_plan(session, replace(config, lora=True)).total <= free * FIT_MARGIN:
        suggestions.append("--lora")
    if plan.shards == 1:   # sharded over enough GPUs, weights, gradients and moments would fit
        n = next((n for n in (2, 4, 8, 16, 32, 64) if plan.sharded(n).total <= free * FIT_MARGIN), None)
        if n is not None:
            suggestions.append(f"--fsdp on {n} GPUs (torchrun --nproc_per_node {n}, or "
                               f"{n} processes in all over several machines)")
    fits = "; it would fit with " + " or ".join(suggestions) if suggestions else \
        "; try a smaller --block-size or a smaller model"
    raise UserError(f"this run needs about {plan.total / GB:.1f} GB but the GPU has "
                    f"{free / GB:.1f} GB free{fits}")
