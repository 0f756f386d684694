"""Faster kernels for the same functions while a model trains.

GPT-2's activation (`gelu_new`; ruGPT-3 has it too) is GELU's tanh approximation written as
seven tensor operations: each a pass over the MLP's (B, T, 4·H) activations, and several keep
their input for the backward pass. PyTorch computes the same formula in one kernel
(`F.gelu(approximate="tanh")`, transformers' `gelu_pytorch_tanh`), which keeps one tensor.
The two differ in the last bits only (rounding), so training uses the fused kernel, where
that cannot matter, and the model is otherwise left as loaded: inference gives exactly what
transformers gives.

    with fused_activations(model):       # every gelu_new / gelu_fast as one kernel
        loss = model(...).loss

Each such activation module is replaced by `FusedTanhGELU` for the run and put back after it.
Replacing the module rather than shadowing its `forward` is what survives transformers'
kernel hub, which resets a layer's `forward` whenever the model switches between train and
eval (for a model loaded with hub kernels on, the library's default; `load_session` turns them
off, but a script may hand `train()` a model of its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F


class FusedTanhGELU(torch.nn.Module):
    """GELU's tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in one kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


def _op_by_op_tanh_gelu(module) -> bool:
    from transformers.activations import FastGELUActivation, NewGELUActivation

    return isinstance(module, (NewGELUActivation, FastGELUActivation))


@contextmanager
def fused_activations(model) -> Iterator[int]:
    """Within it, the model's op-by-op tanh GELUs are `FusedTanhGELU`s; yields how many were
    replaced (none when an outer use already did)."""
    replaced = [(parent, name, child) for parent in list(model.modules())
                for name, child in parent.named_children() if _op_by_op_tanh_gelu(child)]
    for parent, name, _ in replaced:
        setattr(parent, name, FusedTanhGELU())
    try:
        yield len(replaced)
    finally:
        for parent, name, child in replaced:
            setattr(parent, name, child)
