"""The chunked next-token loss gives the model's own loss and the same gradients, on GPT-2
(tied head) and Llama (untied head), with padding, over several chunks."""

import pytest
import torch

import core.training.loss
from core.training.loss import (
    hidden_states_out,
    next_token_loss,
    supports_chunked_loss,
    token_losses,
)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 16 tokens: every test batch spans several."""
    monkeypatch.setattr(core.training.loss, "CHUNK_LOGITS_BYTES", 1)


def _padded_batch(session):
    """Two rows of different lengths; the shorter is padded and its padding unscored."""
    tok = session.tokenizer
    rows = [tok("Привет, как дела? Сегодня тёплый день, и мы идём гулять в парк.")["input_ids"],
            tok("Короткая строка.")["input_ids"]]
    width = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _loss_and_grads(model, loss_of):
    model.zero_grad(set_to_none=True)
    loss = loss_of()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


def test_chunked_loss_and_gradients_equal_the_models_own(fresh_family_session, small_chunks):
    model = fresh_family_session.model.train()
    assert supports_chunked_loss(model)
    batch = _padded_batch(fresh_family_session)
    assert (batch["labels"] == -100).any()
    assert batch["input_ids"].numel() > 2 * core.training.loss.chunk_rows(model.config.vocab_size)

    own, own_grads = _loss_and_grads(model, lambda: model(**batch).loss)

    def chunked():
        with hidden_states_out(model) as head:
            hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        assert hidden.shape[-1] == model.config.hidden_size
        return next_token_loss(hidden, head, batch["labels"])

    mine, my_grads = _loss_and_grads(model, chunked)
    torch.testing.assert_close(mine, own, atol=1e-5, rtol=1e-5)
    assert my_grads.keys() == own_grads.keys()
    assert "lm_head.weight" in my_grads or model.config.tie_word_embeddings
    for name in own_grads:
        torch.testing.assert_close(my_grads[name], own_grads[name], atol=1e-5, rtol=1e-4,
                                   msg=lambda m, name=name: f"{name}: {m}")
    # the head is itself again afterwards: the model gives logits
    assert model(input_ids=batch["input_ids"]).logits.shape[-1] == model.config.vocab_size


def test_a_frozen_head_gets_no_gradient_and_the_rest_the_same(fresh_family_session, small_chunks):
    model = fresh_family_session.model.train()
    head = model.get_output_embeddings()
    head.weight.requires_grad_(False)
    batch = _padded_batch(fresh_family_session)
    own, own_grads = _loss_and_grads(model, lambda: model(**batch).loss)
    with hidden_states_out(model):
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    loss = next_token_loss(hidden, head, batch["labels"])
    loss.backward()
    assert head.weight.grad is None
    for name, param in model.named_parameters():
        if name in own_grads:
            torch.testing.assert_close(param.grad, own_grads[name], atol=1e-5, rtol=1e-4)


def test_token_losses_are_each_positions_cross_entropy(family_session, small_chunks):
    model = family_session.model.eval()
    batch = _padded_batch(family_session)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        with hidden_states_out(model) as head:
            hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    losses = token_losses(hidden, head, batch["labels"])                     # (B, T)
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(), reduction="none",
        ignore_index=-100).view(2, -1)
    torch.testing.assert_close(losses[:, :-1], expected, atol=1e-5, rtol=1e-5)
    assert (losses[:, -1] == 0).all()
    assert (losses[1, :-1][batch["labels"][1, 1:] == -100] == 0).all()


def test_under_bf16_autocast_the_loss_and_gradients_follow_the_models_own(fresh_session, small_chunks):
    """The GPU's mixed precision, exercised on the CPU: the head runs in bf16 like the model's."""
    model = fresh_session.model.train()
    batch = _padded_batch(fresh_session)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        own, own_grads = _loss_and_grads(model, lambda: model(**batch).loss)

        def chunked():
            with hidden_states_out(model) as head:
                hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            return next_token_loss(hidden, head, batch["labels"])

        mine, my_grads = _loss_and_grads(model, chunked)
    torch.testing.assert_close(mine, own, atol=2e-2, rtol=1e-2)
    for name, grad in own_grads.items():
        assert my_grads[name].dtype == grad.dtype == torch.float32
        cosine = torch.nn.functional.cosine_similarity(my_grads[name].flatten(), grad.flatten(), dim=0)
        assert cosine > 0.99, name
