"""Inside the model: what each block predicts (the logit lens), where each head looks (its
attention), and what a head is for (knocking it out).

    lens = logit_lens(session, ids)                   # [layer 0…L][position] → top tokens
    weights = attention(session, ids)                 # [block][head] → (T, T) weights
    effect = head_knockouts(session, ids, target)     # [block][head] → Δ log p(target)

Definitions (SPEC, `inspect --json`): lens row 0 reads the embeddings, row l the residual
stream after block l, each through the model's final norm and its output head; the last row
is the model's own logits. A head knocked out has its output — its slice of the attention
result, before the output projection — set to zero at every position, in its block alone.
Everything runs under the session's lock, with no gradients; the weights are never changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from core.base.errors import UserError
from core.inference.generation import DAMAGED

if TYPE_CHECKING:
    from core.model.session import ModelSession


LENS_ROWS = 512   # rows read through the head at once: their (rows, V) logits are freed


@dataclass(frozen=True)
class Anatomy:
    """Where a decoder-only model keeps the parts the lens and the knock-outs read."""

    blocks: list[torch.nn.Module]          # the transformer blocks, first to last
    final_norm: torch.nn.Module            # applied to the last block's output
    head: torch.nn.Module                  # hidden state → logits
    out_projections: list[torch.nn.Module]   # per block: attention result → residual
    attentions: list[torch.nn.Module]        # per block: its attention (returns output, weights)
    heads: int
    head_dim: int


def anatomy(model) -> Anatomy:
    """GPT-2 (transformer.h, ln_f, attn.c_proj) and Llama-like models (model.layers, norm,
    self_attn.o_proj); anything else is one clear line."""
    base, config = model.base_model, model.config
    if hasattr(base, "h") and hasattr(base, "ln_f"):
        blocks, norm = list(base.h), base.ln_f
        attentions = [block.attn for block in blocks]
        projections = [attention.c_proj for attention in attentions]
    elif hasattr(base, "layers") and hasattr(base, "norm"):
        blocks, norm = list(base.layers), base.norm
        attentions = [block.self_attn for block in blocks]
        projections = [attention.o_proj for attention in attentions]
    else:
        raise UserError(f"{type(model).__name__}: inspecting its blocks needs a GPT-2 or "
                        "Llama-like layout")
    heads = int(getattr(config, "num_attention_heads", None) or config.n_head)
    hidden = int(getattr(config, "hidden_size", None) or config.n_embd)
    head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
    return Anatomy(blocks, norm, model.get_output_embeddings(), projections, attentions, heads,
                   head_dim)


def prompt_ids(session: ModelSession, prompt: str) -> list[int]:
    """The ids the model receives for `prompt`, special tokens included."""
    ids = session.tokenizer(prompt)["input_ids"]
    if not ids:
        raise UserError("the prompt has no tokens: type some text")
    if len(ids) > session.max_positions:
        raise UserError(f"the prompt has {len(ids):,} tokens; the model's context is "
                        f"{session.max_positions:,}")
    return ids


@dataclass(frozen=True)
class LensCell:
    """What one layer predicts after one position."""

    top: list[tuple[int, float]]    # the most probable next tokens (id, probability), best first
    final: tuple[int, float]        # (rank from 1, probability) of the model's own top token here
    actual: tuple[int, float] | None   # the same of the prompt's next token (None at the last)


def _cells(logits: torch.Tensor, k: int, final: torch.Tensor, actual: torch.Tensor) -> list[LensCell]:
    """`logits` (rows, V) → a cell per row; `final`/`actual` (rows,) the ids to rank (-1: none).
    Probabilities come from the log-sum-exp and ranks from the logits themselves: no (rows, V)
    softmax is made (the lens reads a whole vocabulary per layer and position)."""
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1, keepdim=True)              # (rows, 1)
    values, indices = logits.topk(min(k, logits.shape[-1]), dim=-1)  # (rows, k)
    top_p = (values - lse).exp()

    def rank(ids: torch.Tensor) -> list[tuple[int, float]]:
        chosen = logits.gather(1, ids.clamp(min=0)[:, None])         # (rows, 1)
        ranks = (logits > chosen).sum(dim=1, dtype=torch.int32) + 1  # (rows,); int32 sums twice as fast
        probs = (chosen - lse).exp()[:, 0]
        return [(int(r), float(q)) for r, q in zip(ranks.tolist(), probs.tolist())]

    return [LensCell([(int(i), float(v)) for i, v in zip(row_i, row_v)], f, a if following >= 0 else None)
            for row_i, row_v, f, a, following in zip(indices.tolist(), top_p.tolist(), rank(final),
                                                     rank(actual), actual.tolist())]


class StaleLens(UserError):
    """The weights changed since the lens's forward pass: read the prompt again."""


class LensReader:
    """The logit lens of one prompt, read a few positions at a time. One forward pass keeps
    the residual stream after each block; the final norm and the output head — a projection
    onto the whole vocabulary per layer and position, most of the lens's cost — then read
    only the positions asked for, each once (the Inside pane asks for what is on screen).
    The last row, the model's own logits, comes whole from that forward pass."""

    def __init__(self, session: ModelSession, ids: list[int], top: int = 5, weights=None) -> None:
        from core.model.weights import current_weights

        self.session, self.ids, self.top = session, ids, top
        self._weights = weights or current_weights   # a context giving the model read
        self.columns: dict[int, list[LensCell]] = {}   # position → rows 0…L-1, once read
        with self._weights(session) as model, session.lock, torch.no_grad():
            self.model, self.version = model, session.weights_version
            device = next(model.parameters()).device
            out = model(input_ids=torch.tensor([ids], device=device), output_hidden_states=True)
            if not torch.isfinite(out.logits).all():
                raise UserError(DAMAGED)
            # (L, T, H): the embeddings, then the stream after each block but the last
            self._states = torch.stack(out.hidden_states[:-1])[:, 0]
            self._final = out.logits[0].argmax(-1)                  # (T,) the model's own top tokens
            self._actual = torch.tensor(ids[1:] + [-1], device=device)   # (T,) what follows in the prompt
            self.model_row = [cell for a in range(0, len(ids), LENS_ROWS)
                              for cell in _cells(out.logits[0, a:a + LENS_ROWS], top,
                                                 self._final[a:a + LENS_ROWS], self._actual[a:a + LENS_ROWS])]

    def read(self, positions) -> dict[int, list[LensCell]]:
        """position → its cells in rows 0…L-1, for those of `positions` not read before (kept
        for later). StaleLens if the weights changed since the forward pass."""
        wanted = sorted({p for p in positions if 0 <= p < len(self.ids)} - self.columns.keys())
        if not wanted:
            return {}
        parts = anatomy(self.model)
        with self._weights(self.session) as model, self.session.lock, torch.no_grad():
            if self.session.weights_version != self.version or model is not self.model:
                raise StaleLens("the weights changed since the lens was read")
            at = torch.tensor(wanted, device=self._states.device)
            rows = self._states[:, at].reshape(-1, self._states.shape[-1])   # (L × P, H), layer-major
            finals, actuals = self._final[at].repeat(len(self._states)), self._actual[at].repeat(len(self._states))
            cells: list[LensCell] = []
            for a in range(0, len(rows), LENS_ROWS):   # (rows, V) logits at a time
                cut = slice(a, a + LENS_ROWS)
                cells += _cells(parts.head(parts.final_norm(rows[cut])), self.top, finals[cut], actuals[cut])
        fresh = {p: cells[i::len(wanted)] for i, p in enumerate(wanted)}
        self.columns.update(fresh)
        return fresh

    def rows(self) -> list[list[LensCell]]:
        """The whole lens: [layer 0…L][position], reading every position not read yet."""
        self.read(range(len(self.ids)))
        return [[self.columns[p][layer] for p in range(len(self.ids))] for layer in range(len(self._states))] \
            + [self.model_row]

    def known(self) -> list[list[LensCell | None]]:
        """The lens as read so far: [layer 0…L][position], None where not read yet."""
        return [[self.columns[p][layer] if p in self.columns else None for p in range(len(self.ids))]
                for layer in range(len(self._states))] + [list(self.model_row)]


def logit_lens(session: ModelSession, ids: list[int], top: int = 5) -> list[list[LensCell]]:
    """[layer 0…L][position] → what that layer predicts next there, read through the final
    norm and the output head after each block (row 0: the embeddings; the last row: the
    model's own logits)."""
    return LensReader(session, ids, top).rows()


@contextmanager
def _eager_attention(model) -> Iterator[None]:
    """The attention weights exist only in transformers' eager attention: switched to it
    for the call, and back (`config._attn_implementation` is the only way to read what the
    model used: tests/test_private_names.py)."""
    before = model.config._attn_implementation
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if before != "eager":
            model.set_attn_implementation(before)


def attention(session: ModelSession, ids: list[int]) -> list[list[torch.Tensor]]:
    """[block][head] → (T, T) float32 weights, row q over key positions 0…q (zeros after)."""
    blocks: list[list[torch.Tensor]] = []
    attention_by_block(session, ids, lambda block, weights: blocks.append(list(weights)))
    return blocks


def attention_by_block(session: ModelSession, ids: list[int], each) -> None:
    """`each(block, weights)` with a block's (heads, T, T) float32 weights on the CPU as soon
    as that block's attention returns them, first block to last: memory holds one block's
    weights at a time (at a long prompt, all of them together would not fit)."""
    model, parts = session.model, anatomy(session.model)

    def catcher(block: int):
        def caught(module, args, output) -> None:
            each(block, output[1][0].float().cpu())
        return caught

    with session.lock, torch.no_grad(), _eager_attention(model):
        handles = [a.register_forward_hook(catcher(b)) for b, a in enumerate(parts.attentions)]
        try:
            model(input_ids=torch.tensor([ids], device=next(model.parameters()).device))
        finally:
            for handle in handles:
                handle.remove()


@dataclass(frozen=True)
class HeadLook:
    """Where one head looks from one position."""

    most: int          # the earlier position it weighs most
    weight: float      # that weight
    entropy: float     # of its weights over positions 0…q, in bits: 0 = all on one token


def attention_glance(session: ModelSession, ids: list[int], position: int,
                     chosen: tuple[int, int] | None = None) -> tuple[list[list[HeadLook]], torch.Tensor | None]:
    """([block][head] → where it looks from `position`, the chosen (block, head)'s whole
    (T, T) pattern or None). Each block's weights are reduced as its attention returns them:
    memory holds one block's weights at a time, never all of them."""
    looks: list[list[HeadLook]] = []
    pattern: list[torch.Tensor] = []

    def reduce(block: int, weights: torch.Tensor) -> None:       # (heads, T, T)
        row = weights[:, position, :position + 1]                 # (heads, q + 1)
        values, most = row.max(dim=-1)
        entropy = -(row * torch.log2(row.clamp(min=1e-12))).sum(dim=-1)
        looks.append([HeadLook(int(m), float(v), float(e))
                      for m, v, e in zip(most.tolist(), values.tolist(), entropy.tolist())])
        if chosen is not None and chosen[0] == block:
            pattern.append(weights[chosen[1]])

    if not 0 <= position < len(ids):
        raise UserError(f"position {position}: the prompt has {len(ids)} tokens")
    attention_by_block(session, ids, reduce)
    return looks, (pattern[0] if pattern else None)


def _zeroing(parts: Anatomy, heads: tuple[int, ...]):
    """A pre-hook for an attention output projection: these heads' slices of its input, zero."""
    def zero(module, args):
        x = args[0].clone()                           # (B, T, heads × head_dim)
        for h in heads:
            x[..., h * parts.head_dim:(h + 1) * parts.head_dim] = 0
        return (x, *args[1:])
    return zero


def knock_out(session: ModelSession, heads: dict[int, tuple[int, ...]]) -> None:
    """Keep `heads` (block → heads, 0-based) out of every forward pass of the session —
    generation, chat, the lens — until called again; {} puts every head back. A KV cache made
    before is stale: the weights' version moves on."""
    parts = anatomy(session.model)
    for block, block_heads in heads.items():
        if not 0 <= block < len(parts.blocks) or any(not 0 <= h < parts.heads for h in block_heads):
            raise UserError(f"the model has {len(parts.blocks)} blocks of {parts.heads} heads")
    with session.lock:
        for handle in session.knockout_hooks:
            handle.remove()
        session.knockout_hooks = []
        kept = {block: tuple(sorted(set(h))) for block, h in heads.items() if h}
        for block, block_heads in kept.items():
            projection = parts.out_projections[block]
            session.knockout_hooks.append(projection.register_forward_pre_hook(_zeroing(parts, block_heads)))
        session.knocked_out = kept
        session.weights_version += 1


def parse_heads(text: str) -> dict[int, tuple[int, ...]]:
    """"1.3, 2.1" (block.head, both counted from 1, as the screen shows them) → {0: (2,), 1: (0,)}."""
    heads: dict[int, list[int]] = {}
    for part in text.replace(",", " ").split():
        block, dot, head = part.partition(".")
        if not (dot and block.isdigit() and head.isdigit() and int(block) > 0 and int(head) > 0):
            raise UserError(f"{part!r}: a head is block.head, both from 1 (e.g. 2.3)")
        heads.setdefault(int(block) - 1, []).append(int(head) - 1)
    return {block: tuple(h) for block, h in heads.items()}


def heads_text(heads: dict[int, tuple[int, ...]]) -> str:
    """The inverse of parse_heads: "1.3 2.1"."""
    return " ".join(f"{block + 1}.{h + 1}" for block in sorted(heads) for h in heads[block])


def head_knockouts(session: ModelSession, ids: list[int], target: int) -> tuple[float, list[list[float]]]:
    """(p(target) at the last position, [block][head] → log p(target) with that head knocked
    out minus log p(target) without). One forward pass per block: its heads side by side, a
    copy of the prompt each."""
    model, parts = session.model, anatomy(session.model)
    with session.lock, torch.no_grad():
        device = next(model.parameters()).device
        base = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1].float()
        base_logp = float(torch.log_softmax(base, -1)[target])
        batch = torch.tensor([ids] * parts.heads, device=device)   # (heads, T)
        deltas = []
        for projection in parts.out_projections:
            def zero_row_head(module, args):
                x = args[0].clone()                   # (heads, T, heads × head_dim)
                for h in range(parts.heads):          # copy h loses head h
                    x[h, :, h * parts.head_dim:(h + 1) * parts.head_dim] = 0
                return (x, *args[1:])
            handle = projection.register_forward_pre_hook(zero_row_head)
            try:
                logits = model(input_ids=batch).logits[:, -1].float()   # (heads, V)
            finally:
                handle.remove()
            logp = torch.log_softmax(logits, -1)[:, target]
            deltas.append([float(v) - base_logp for v in logp.tolist()])
    return float(torch.exp(torch.tensor(base_logp))), deltas


def target_id(session: ModelSession, prompt: str, text: str | None, lens_last: LensCell) -> int:
    """The token a knock-out is measured on: the model's top next token, or the first token
    of `text` as it follows the prompt."""
    if text is None:
        return lens_last.top[0][0]
    tokenizer = session.tokenizer
    whole = tokenizer(prompt + text)["input_ids"]
    alone = tokenizer(prompt)["input_ids"]
    if len(whole) <= len(alone) or whole[:len(alone)] != alone:   # text merges into the prompt
        following = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not following:
            raise UserError(f"--target {text!r}: no tokens")
        return following[0]
    return whole[len(alone)]
