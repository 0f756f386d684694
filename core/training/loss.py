"""The next-token loss without the whole logits tensor.

A model's own loss makes every position's logits at once: batch × block × vocabulary floats
(412 MB at batch 8 × block 256 with ruGPT-3's 50k vocabulary), keeps their log-softmax for the
backward pass and makes their gradient in it — more than the rest of the activations of a
LoRA run. Here the output layer and the cross-entropy run over a few hundred tokens at a
time, and each chunk's gradient is worked out while its logits exist:

    with hidden_states_out(model):                     # the head passes its input through
        hidden = wrapped(input_ids=…, attention_mask=…).logits          # (B, T, H)
    loss = next_token_loss(hidden, head, labels)                          # scalar, like HF's

The forward pass thus does the output layer's backward work too (no recomputation), and
keeps only the gradients for the hidden states (B, T, H) and, when the head trains, for its
weight (V, H). The model is still called through its (possibly DDP-wrapped) forward, so
several processes synchronise gradients as before.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

CHUNK_LOGITS_BYTES = 64 * 2**20   # one chunk's fp32 logits (50k vocabulary: ~330 tokens)
IGNORE = -100
# Families whose logits are exactly `lm_head(final hidden state)`: no scaling or soft-capping
# after the head, which the chunks would skip. Others keep the model's own loss.
PLAIN_HEAD_FAMILIES = frozenset({
    "gpt2", "gpt_neox", "gptj", "gpt_bigcode", "llama", "mistral", "qwen2", "qwen3", "phi",
    "phi3", "stablelm", "olmo", "olmo2", "bloom", "opt", "falcon"})


def supports_chunked_loss(model) -> bool:
    head = model.get_output_embeddings()
    return (getattr(model.config, "model_type", None) in PLAIN_HEAD_FAMILIES
            and isinstance(head, torch.nn.Linear))


def chunk_rows(vocab: int) -> int:
    return max(16, CHUNK_LOGITS_BYTES // (vocab * 4))


def _pass_through(hidden):
    return hidden


@contextmanager
def hidden_states_out(model):
    """Within it, the model's output layer returns its input: `.logits` are the final hidden
    states. Hold the session lock: generation must not run meanwhile.

    The layer stays in place — other threads that read `get_output_embeddings().weight`
    (the memory plan, the lesson's checks) still find it — and only its `forward` is
    shadowed by an instance attribute (a plain Python attribute of torch's public
    `nn.Module.forward`, no private name). Swapping the layer out with
    `set_output_embeddings` was tried: those readers then met a layer without a weight."""
    head = model.get_output_embeddings()
    head.forward = _pass_through
    try:
        yield head
    finally:
        del head.forward


def shifted_labels(labels: torch.Tensor) -> torch.Tensor:
    """Position t is scored on token t + 1; the last position of each row on nothing."""
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE)                     # (B, T)


class _ChunkedHeadLoss(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ weight.T (+ bias)` against `targets`, chunk by chunk.
    d loss / d logits = (softmax − one-hot) / n for each scored token; it is turned into the
    gradients of the hidden states and of the head right away, and the chunk's logits go."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, rows):
        # hidden (N, H) · weight (V, H) · bias (V,) or None · targets (N,), IGNORE = unscored
        scored = targets != IGNORE
        count = scored.sum().clamp_min(1)
        safe_targets = targets.clamp_min(0)
        want_hidden, want_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        want_bias = bias is not None and ctx.needs_input_grad[2]
        grad_hidden = torch.zeros_like(hidden) if want_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) \
            if want_weight else None
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) \
            if want_bias else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], rows):
            h = hidden[start:start + rows]                                    # (C, H)
            logits = F.linear(h, weight, bias).float()                        # (C, V)
            target = safe_targets[start:start + rows, None]                   # (C, 1)
            keep = scored[start:start + rows]                                 # (C,)
            log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)          # (C, 1)
            token_loss = log_norm - logits.gather(1, target)                  # (C, 1)
            total += token_loss.squeeze(1)[keep].sum()
            # the gradient of this chunk's share of the mean, in place of its logits
            grad = logits.sub_(log_norm).exp_()                               # softmax (C, V)
            grad.scatter_add_(1, target, torch.full_like(target, -1, dtype=grad.dtype))
            grad.mul_((keep / count).unsqueeze(1))
            if want_hidden:
                grad_hidden[start:start + rows] = (grad.to(weight.dtype) @ weight).to(hidden.dtype)
            if want_weight and torch.is_autocast_enabled(h.device.type):
                grad_weight.add_(grad.t() @ h)      # in the autocast precision, then summed
            elif want_weight:
                grad_weight.addmm_(grad.t(), h.to(grad_weight.dtype))   # no (V, H) temporary
            if want_bias:
                grad_bias.add_(grad.sum(0))
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.weight_dtype = weight.dtype
        return total / count

    @staticmethod
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return (None if grad_hidden is None else grad_hidden * grad_loss,
                None if grad_weight is None else (grad_weight * grad_loss).to(ctx.weight_dtype),
                None if grad_bias is None else grad_bias * grad_loss,
                None, None)


def next_token_loss(hidden: torch.Tensor, head: torch.nn.Linear, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the labels that are not IGNORE — what the model's
    own loss gives for `labels`, with its gradients, without (B, T, V) logits."""
    flat_hidden = hidden.flatten(0, 1)                                        # (B·T, H)
    targets = shifted_labels(labels).flatten()                                # (B·T,)
    return _ChunkedHeadLoss.apply(flat_hidden, head.weight, head.bias, targets,
                                  chunk_rows(head.weight.shape[0]))


@torch.no_grad()
def token_losses(hidden: torch.Tensor, head: torch.nn.Linear, labels: torch.Tensor) -> torch.Tensor:
    """Each position's next-token loss (0 where unscored), chunk by chunk, for evaluation."""
    targets = shifted_labels(labels)                                          # (B, T)
    losses = torch.zeros(targets.shape, dtype=torch.float32, device=hidden.device)
    flat_hidden, flat_targets, flat_losses = hidden.flatten(0, 1), targets.flatten(), losses.view(-1)
    rows = chunk_rows(head.weight.shape[0])
    for start in range(0, flat_hidden.shape[0], rows):
        # the head's own weights: inside hidden_states_out its forward passes through
        logits = F.linear(flat_hidden[start:start + rows], head.weight, head.bias).float()  # (C, V)
        flat_losses[start:start + rows] = F.cross_entropy(
            logits, flat_targets[start:start + rows], ignore_index=IGNORE, reduction="none")
    return losses                                                             # (B, T)
